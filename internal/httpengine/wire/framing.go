package wire

import "strings"

// FramingKind says how a response body is delimited.
type FramingKind uint8

const (
	// FramingNone: the response has no body (HEAD, 1xx, 204, 304, a 2xx to
	// CONNECT).
	FramingNone FramingKind = iota
	// FramingLength: exactly Framing.Length bytes (Content-Length).
	FramingLength
	// FramingChunked: chunked transfer coding, then trailers.
	FramingChunked
	// FramingUntilClose: everything until the server closes the connection.
	FramingUntilClose
)

func (k FramingKind) String() string {
	switch k {
	case FramingNone:
		return "none"
	case FramingLength:
		return "length"
	case FramingChunked:
		return "chunked"
	case FramingUntilClose:
		return "until-close"
	}
	return "unknown"
}

// Framing is the body framing of one response.
type Framing struct {
	Kind FramingKind
	// Length is the body length for FramingLength, else 0.
	Length int64
}

// BodyFraming decides how the body of response h to a request with
// requestMethod is delimited, as llhttp (llhttp__after_headers_complete,
// llhttp_message_needs_eof) and Node's parserOnIncomingClient decide it
// (RFC 9112 section 6.3):
//
//  1. no body for a response to HEAD, for 1xx (101 included: what follows
//     is the new protocol), 204 and 304, and for a 2xx to CONNECT (what
//     follows is the tunnel);
//  2. chunked if Transfer-Encoding's final coding is chunked;
//  3. until close if Transfer-Encoding is present with another final coding
//     (a Content-Length beside it, allowed only by Insecure, is ignored);
//  4. Content-Length bytes if present (a Length of 0 is an empty body);
//  5. else until close.
//
// Node answers every CONNECT response, not only 2xx, without a body (it
// treats them all as the upgrade); the engine decides what a non-2xx
// CONNECT answer means, and gets its body framed by rules 2-5 here.
func BodyFraming(requestMethod string, h *ResponseHead) Framing {
	switch {
	case strings.EqualFold(requestMethod, "HEAD"),
		h.StatusCode/100 == 1, h.StatusCode == 204, h.StatusCode == 304,
		strings.EqualFold(requestMethod, "CONNECT") && h.StatusCode/100 == 2:
		return Framing{Kind: FramingNone}
	case h.Chunked:
		return Framing{Kind: FramingChunked}
	case h.TransferEncoding:
		return Framing{Kind: FramingUntilClose}
	case h.ContentLength >= 0:
		return Framing{Kind: FramingLength, Length: h.ContentLength}
	}
	return Framing{Kind: FramingUntilClose}
}
