// Package wire is the HTTP/1.1 wire layer of the engine: it writes request
// heads and chunk framing, and it parses response heads, bodies and trailers
// the way Node's parser (llhttp, as configured by node_http_parser.cc) does.
//
// It owns:
//   - request-side validation with Node's error codes and messages
//     (ValidateHeaderName, ValidateHeaderValue, ValidateMethod, ValidatePath);
//   - request-head and chunk encoding (AppendRequestHead, AppendChunkHeader,
//     AppendLastChunk);
//   - response-head parsing (ReadResponseHead) with llhttp's strictness, and
//     Node's insecureHTTPParser relaxations behind ParseOptions.Insecure;
//   - body framing (BodyFraming) and body reading (BodyReader), including
//     chunked bodies, chunk extensions and trailers;
//   - Node's merged message.headers view (MergeHeaders).
//
// The package is pure: no goroutines, no sockets, no timers. It works on a
// *bufio.Reader or byte slices supplied by the caller, who owns the
// connection and its deadlines. Every error it reports is, or wraps, a
// *nodeerr.Error carrying the code Node would report (HPE_* for parse
// errors, with Node's "Parse Error: <reason>" message).
//
// It must import nothing above it: not internal/httpengine, not
// internal/agentpool, not internal/rpc, no gRPC and no protobuf. Only the
// standard library, golang.org/x/net/http/httpguts and internal/nodeerr.
package wire
