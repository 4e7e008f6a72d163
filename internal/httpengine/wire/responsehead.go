package wire

import (
	"bufio"
	"bytes"
	"strings"
	"time"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Node's defaults (http.maxHeaderSize, maxHeadersCount).
const (
	DefaultMaxHeaderSize   = 16 * 1024
	DefaultMaxHeadersCount = 2000
)

// ParseOptions configures response parsing. The zero value is Node's
// default, strict parser.
type ParseOptions struct {
	// MaxHeaderSize limits a head (and, separately, a trailer block) the way
	// Node does: the bytes of the status message plus every header name and
	// value (llhttp spans as counted by node_http_parser.cc TrackHeader; line
	// ends, colons and leading whitespace are not counted) must stay below
	// it, else HPE_HEADER_OVERFLOW. 0 (or negative) means Node's default
	// 16 KiB. As a backstop against padding Node would not count, the raw
	// block may not exceed 4*MaxHeaderSize+1024 bytes either.
	MaxHeaderSize int
	// MaxHeadersCount limits how many header lines feed Node's merged
	// headers view (ResponseHead.HeadersCount); lines beyond it are parsed
	// and validated but not merged. It is not an error. 0 means Node's
	// default 2000; a negative value means no limit (Node's 0).
	MaxHeadersCount int
	// Insecure is Node's insecureHTTPParser: it sets every llhttp lenient
	// flag Node's kLenientAll sets. What that relaxes here:
	//   - LENIENT_HEADERS: any byte but CR/LF in header values; obs-fold
	//     continuation lines (joined to the previous value); one space before
	//     the first header line; spaces between the name and the colon of
	//     Connection, Content-Length, Proxy-Connection, Transfer-Encoding
	//     and Upgrade (llhttp's special headers only).
	//   - LENIENT_CHUNKED_LENGTH: Transfer-Encoding with Content-Length
	//     (Transfer-Encoding wins).
	//   - LENIENT_VERSION: any one-digit major and minor version.
	//   - LENIENT_OPTIONAL_CR_BEFORE_LF: bare LF line ends everywhere.
	//   - LENIENT_OPTIONAL_LF_AFTER_CR: a lone CR ending a chunk-size line.
	//   - LENIENT_OPTIONAL_CRLF_AFTER_CHUNK: no CRLF after chunk data.
	//   - LENIENT_SPACES_AFTER_CHUNK_SIZE: SP/HTAB after the chunk size.
	//   - and, beyond llhttp, a repeated "chunked" coding (RFC 9112 forbids
	//     it; llhttp accepts it in responses, so the strict mode here is
	//     stricter than Node on that one point).
	// LENIENT_KEEP_ALIVE and LENIENT_DATA_AFTER_CLOSE concern the connection
	// after the message and are the engine's. LENIENT_TRANSFER_ENCODING only
	// affects requests.
	//
	// Known differences from llhttp in this mode, all on the side of
	// refusing: a lone CR (not followed by LF) never ends a status or header
	// line here (LENIENT_OPTIONAL_LF_AFTER_CR is honoured only on chunk-size
	// lines), and a folded continuation of Content-Length,
	// Transfer-Encoding or Connection is kept in the value but not
	// re-interpreted for framing.
	Insecure bool
}

func (o ParseOptions) maxHeaderSize() int {
	if o.MaxHeaderSize <= 0 {
		return DefaultMaxHeaderSize
	}
	return o.MaxHeaderSize
}

func (o ParseOptions) rawCap() int { return 4*o.maxHeaderSize() + 1024 }

// ResponseHead is one parsed status line and header block.
type ResponseHead struct {
	Major, Minor  int
	StatusCode    int
	StatusMessage string
	// RawHeaders holds every header line in wire order and casing, values
	// with leading and trailing whitespace removed (as Node's rawHeaders).
	// Names and values are sub-strings of one string holding the head, so
	// keeping one keeps the whole head alive. Bytes 0x80-0xFF are decoded as
	// latin1, as Node decodes them.
	//
	// Node keeps rawHeaders complete and applies maxHeadersCount only to the
	// merged headers view (IncomingMessage._addHeaderLines), so this slice
	// is not truncated either; HeadersCount says how many of its lines the
	// merged view takes (see Merged).
	RawHeaders []Header
	// HeadersCount is min(len(RawHeaders), MaxHeadersCount).
	HeadersCount int
	// ContentLength is the Content-Length value, -1 when absent.
	ContentLength int64
	// TransferEncoding reports that a Transfer-Encoding header was present;
	// Chunked that its final coding is chunked.
	TransferEncoding bool
	Chunked          bool
	// ConnectionClose is llhttp_should_keep_alive's header half: for
	// HTTP/1.1 (major>0 and minor>0) a "close" token in Connection or
	// Proxy-Connection; below that, the lack of a "keep-alive" token. A body
	// read until close also ends the connection: see KeepAlive.
	ConnectionClose bool
	// Upgrade reports an "upgrade" token in Connection; UpgradeHeader an
	// Upgrade header. llhttp's upgrade decision for a response is status 101
	// (with both present, or regardless for 101); that is the engine's.
	Upgrade       bool
	UpgradeHeader bool
	// KeepAliveTimeout is the server's hint from "Keep-Alive: timeout=N",
	// read as Node's agent reads it (/^timeout=(\d+)/ on the header), 0 if
	// none.
	KeepAliveTimeout time.Duration
}

// Merged returns Node's message.headers view of the head, limited to
// HeadersCount lines as Node limits it.
func (h *ResponseHead) Merged(joinDuplicates bool) []MergedHeader {
	return MergeHeaders(h.RawHeaders[:h.HeadersCount], joinDuplicates)
}

// KeepAlive reports whether the connection may carry another request after
// this response with framing f (llhttp_should_keep_alive).
func (h *ResponseHead) KeepAlive(f Framing) bool {
	return !h.ConnectionClose && f.Kind != FramingUntilClose
}

// ReadResponseHead reads one status line and header block from br. A 1xx
// head is returned like any other; the engine loops for the final one. Each
// call counts its own bytes against MaxHeaderSize, as Node counts each
// message's.
//
// A connection that ends before the head is complete gives ECONNRESET
// "socket hang up" wrapping io.EOF (nothing read) or io.ErrUnexpectedEOF.
// Other read errors are returned unchanged. Malformed input gives the
// HPE_* error llhttp reports, with Node's "Parse Error: <reason>" message.
func ReadResponseHead(br *bufio.Reader, opts ParseOptions) (*ResponseHead, error) {
	s, partial, err := readBlock(br, opts.rawCap(), false)
	if err != nil {
		return nil, hangUpErr(err, partial)
	}
	return parseResponseHead(s, opts)
}

// ParseResponseHead parses a complete head held in b (status line through
// the empty line; bytes after it are ignored). It is ReadResponseHead for
// callers that already hold the bytes.
func ParseResponseHead(b []byte, opts ParseOptions) (*ResponseHead, error) {
	br := bufio.NewReaderSize(bytes.NewReader(b), len(b)+16)
	return ReadResponseHead(br, opts)
}

func parseResponseHead(s string, opts ParseOptions) (*ResponseHead, error) {
	h := &ResponseHead{ContentLength: -1}
	nl := strings.IndexByte(s, '\n')
	if err := parseStatusLine(h, s[:nl], opts.Insecure); err != nil {
		return nil, err
	}
	p := fieldParser{
		insecure: opts.Insecure,
		limit:    opts.maxHeaderSize(),
		count:    len(h.StatusMessage),
		head:     h,
	}
	if p.count >= p.limit {
		return nil, errHeaderOverflow()
	}
	h.StatusMessage = latin1ToUTF8(h.StatusMessage)
	body := s[nl+1:]
	// Lines in the block minus the empty one: exact capacity, one allocation.
	if n := strings.Count(body, "\n") - 1; n > 0 {
		h.RawHeaders = make([]Header, 0, n)
	}
	var err error
	if h.RawHeaders, err = p.parse(body, h.RawHeaders); err != nil {
		return nil, err
	}
	h.HeadersCount = len(h.RawHeaders)
	if max := opts.MaxHeadersCount; max >= 0 {
		if max == 0 {
			max = DefaultMaxHeadersCount
		}
		h.HeadersCount = min(h.HeadersCount, max)
	}
	// llhttp_should_keep_alive: HTTP/1.1 unless "close"; HTTP/1.0 (and, as
	// llhttp's test is major>0 && minor>0, HTTP/2.0 and 0.9) only with
	// "keep-alive".
	if h.Major > 0 && h.Minor > 0 {
		h.ConnectionClose = p.connClose
	} else {
		h.ConnectionClose = !p.connKeepAlive
	}
	return h, nil
}

// parseStatusLine parses "HTTP/x.y NNN reason" (line without its LF) the way
// llhttp's res_* states do.
func parseStatusLine(h *ResponseHead, line string, insecure bool) error {
	crlf := len(line) > 0 && line[len(line)-1] == '\r'
	if crlf {
		line = line[:len(line)-1]
	}
	// llhttp accepts the HTTP, RTSP and ICE protocols on a response.
	var rest string
	switch {
	case strings.HasPrefix(line, "HTTP/"):
		rest = line[5:]
	case strings.HasPrefix(line, "RTSP/"):
		rest = line[5:]
	case strings.HasPrefix(line, "ICE/"):
		rest = line[4:]
	default:
		return parseError(nodeerr.HPE_INVALID_CONSTANT, "Expected HTTP/, RTSP/ or ICE/")
	}
	if len(rest) < 1 || !isDigit(rest[0]) {
		return parseError(nodeerr.HPE_INVALID_VERSION, "Invalid major version")
	}
	if len(rest) < 2 || rest[1] != '.' {
		return parseError(nodeerr.HPE_INVALID_VERSION, "Expected dot")
	}
	if len(rest) < 3 || !isDigit(rest[2]) {
		return parseError(nodeerr.HPE_INVALID_VERSION, "Invalid minor version")
	}
	h.Major, h.Minor = int(rest[0]-'0'), int(rest[2]-'0')
	if !insecure { // LENIENT_VERSION
		switch h.Major*10 + h.Minor {
		case 9, 10, 11, 20:
		default:
			return parseError(nodeerr.HPE_INVALID_VERSION, "Invalid HTTP version")
		}
	}
	rest = rest[3:]
	if len(rest) < 1 || rest[0] != ' ' {
		return parseError(nodeerr.HPE_INVALID_VERSION, "Expected space after version")
	}
	rest = rest[1:]
	code := 0
	for i := 0; i < 3; i++ {
		if i >= len(rest) || !isDigit(rest[i]) {
			return parseError(nodeerr.HPE_INVALID_STATUS, "Invalid status code")
		}
		code = code*10 + int(rest[i]-'0')
	}
	h.StatusCode = code
	rest = rest[3:]
	switch {
	case rest == "":
		if !crlf && !insecure {
			return parseError(nodeerr.HPE_INVALID_STATUS, "Invalid response status")
		}
		return nil
	case rest[0] != ' ':
		return parseError(nodeerr.HPE_INVALID_STATUS, "Invalid response status")
	}
	msg := rest[1:]
	// The reason phrase is not validated by llhttp: any byte up to CR/LF.
	if i := strings.IndexByte(msg, '\r'); i >= 0 {
		// A CR not followed by LF. llhttp's LENIENT_OPTIONAL_LF_AFTER_CR
		// would end the line there; this parser works on LF-terminated lines
		// and rejects it in both modes.
		return parseError(nodeerr.HPE_STRICT, "Expected LF after CR")
	}
	if !crlf && !insecure {
		return parseError(nodeerr.HPE_CR_EXPECTED, "Missing expected CR after response line")
	}
	h.StatusMessage = msg
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
