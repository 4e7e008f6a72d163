package wire

import (
	"math"
	"strings"
	"time"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// fieldParser parses the header lines of a head or a trailer block the way
// llhttp's header_* states do. Lines end with LF (readBlock guarantees it);
// the error codes and reasons are llhttp's.
type fieldParser struct {
	insecure bool
	// limit and count implement Node's MaxHeaderSize accounting: the sum of
	// the status message, names and raw values must stay below limit.
	limit, count int
	// head is the head being parsed, nil for trailers: llhttp's special
	// headers (Content-Length, Transfer-Encoding, Connection, ...) only
	// frame the message in the head.
	head *ResponseHead

	lastRaw       string // untrimmed value of the last line, for obs-fold
	hasCL, hasTE  bool
	chunkedSeen   int
	connClose     bool
	connKeepAlive bool
	keepAliveSeen bool
}

func invalidToken(reason string) error {
	return parseError(nodeerr.HPE_INVALID_HEADER_TOKEN, reason)
}

// parse parses the lines of s (each ending with LF, the last one empty) and
// appends them to hs.
func (p *fieldParser) parse(s string, hs []Header) ([]Header, error) {
	first := true
	for len(s) > 0 {
		nl := strings.IndexByte(s, '\n')
		if nl < 0 {
			// readBlock never returns this; be safe for ParseResponseHead.
			return hs, parseError(nodeerr.HPE_INVALID_EOF_STATE, "Invalid EOF state")
		}
		line := s[:nl]
		s = s[nl+1:]
		crlf := len(line) > 0 && line[len(line)-1] == '\r'
		body := line
		if crlf {
			body = line[:len(line)-1]
		}
		if body == "" {
			if !crlf && !p.insecure { // LENIENT_OPTIONAL_CR_BEFORE_LF
				return hs, invalidToken("Invalid header field char")
			}
			return hs, nil
		}
		switch body[0] {
		case '\r':
			// headers_almost_done: a CR must be followed by LF. (llhttp's
			// LENIENT_OPTIONAL_LF_AFTER_CR would end the head here and make
			// the rest body; this parser refuses in both modes.)
			return hs, errStrict("Expected LF after headers")
		case ' ', '\t':
			switch {
			case first && p.head != nil && body[0] == ' ':
				// headers_start: one space after the status line.
				if !p.insecure { // LENIENT_HEADERS
					return hs, parseError(nodeerr.HPE_UNEXPECTED_SPACE, "Unexpected space after start line")
				}
				body = body[1:]
				if body == "" {
					return hs, nil
				}
			case first:
				return hs, invalidToken("Invalid header token")
			default:
				// obs-fold (RFC 9112 section 5.2). llhttp rejects it unless
				// LENIENT_HEADERS, which continues the previous value.
				if !p.insecure {
					if p.lastRaw == "" {
						return hs, invalidToken("Invalid header value char")
					}
					return hs, invalidToken("Unexpected whitespace after header value")
				}
				if strings.IndexByte(body, '\r') >= 0 {
					return hs, parseError(nodeerr.HPE_LF_EXPECTED, "Missing expected LF after header value")
				}
				p.count += len(body)
				if p.count >= p.limit {
					return hs, errHeaderOverflow()
				}
				p.lastRaw += body
				hs[len(hs)-1].Value = latin1ToUTF8(trimOWS(p.lastRaw))
				continue
			}
		}
		first = false

		// field-name: a token, then the colon.
		i := 0
		for i < len(body) && isToken(body[i]) {
			i++
		}
		if i == 0 {
			return hs, invalidToken("Invalid header token")
		}
		name := body[:i]
		if i < len(body) && body[i] == ' ' {
			// Whitespace before the colon (RFC 9112 section 5.1: MUST
			// reject). llhttp only tolerates it, under LENIENT_HEADERS, on
			// its special headers.
			if p.head == nil || !isSpecialName(name) {
				return hs, invalidToken("Invalid header token")
			}
			if !p.insecure {
				return hs, invalidToken("Invalid header field char")
			}
			for i < len(body) && body[i] == ' ' {
				i++
			}
		}
		if i >= len(body) || body[i] != ':' {
			return hs, invalidToken("Invalid header token")
		}
		i++
		for i < len(body) && isOWS(body[i]) {
			i++
		}
		raw := body[i:]
		p.count += len(name) + len(raw)
		if p.count >= p.limit {
			return hs, errHeaderOverflow()
		}

		var err error
		isCL := false
		if p.head != nil {
			if isCL, err = p.special(name, raw); err != nil {
				return hs, err
			}
		}
		high := false
		for k := 0; k < len(raw); k++ {
			c := raw[k]
			if byteClass[c]&classValue == 0 {
				if c == '\r' {
					return hs, parseError(nodeerr.HPE_LF_EXPECTED, "Missing expected LF after header value")
				}
				if !p.insecure && !isCL { // LENIENT_HEADERS; Content-Length was checked by special
					return hs, invalidToken("Invalid header value char")
				}
			} else if c >= 0x80 {
				high = true
			}
		}
		if !crlf && !p.insecure { // LENIENT_OPTIONAL_CR_BEFORE_LF
			if raw == "" {
				return hs, invalidToken("Invalid header value char")
			}
			return hs, parseError(nodeerr.HPE_CR_EXPECTED, "Missing expected CR after header value")
		}
		v := trimOWSRight(raw)
		if high {
			v = latin1ToUTF8(v)
		}
		hs = append(hs, Header{Name: name, Value: v})
		p.lastRaw = raw
	}
	return hs, parseError(nodeerr.HPE_INVALID_EOF_STATE, "Invalid EOF state")
}

// isSpecialName reports llhttp's SPECIAL_HEADERS.
func isSpecialName(name string) bool {
	switch len(name) {
	case 7:
		return equalFoldASCII(name, "upgrade")
	case 10:
		return equalFoldASCII(name, "connection")
	case 14:
		return equalFoldASCII(name, "content-length")
	case 16:
		return equalFoldASCII(name, "proxy-connection")
	case 17:
		return equalFoldASCII(name, "transfer-encoding")
	}
	return false
}

// special applies the framing headers of a head, with llhttp's checks in
// llhttp's order. It reports whether name is Content-Length, whose value it
// validated completely.
func (p *fieldParser) special(name, raw string) (isCL bool, err error) {
	h := p.head
	switch len(name) {
	case 7:
		if equalFoldASCII(name, "upgrade") {
			h.UpgradeHeader = true
		}
	case 10:
		if equalFoldASCII(name, "connection") {
			p.connection(raw)
		} else if equalFoldASCII(name, "keep-alive") && !p.keepAliveSeen {
			p.keepAliveSeen = true
			h.KeepAliveTimeout = keepAliveHint(trimOWSRight(raw))
		}
	case 14:
		if !equalFoldASCII(name, "content-length") {
			return false, nil
		}
		// RFC 9112 section 6.3: both present "ought to be handled as an
		// error"; llhttp 9 does, at the second header, unless
		// LENIENT_CHUNKED_LENGTH.
		if p.hasTE && !p.insecure {
			return true, parseError(nodeerr.HPE_INVALID_CONTENT_LENGTH, "Content-Length can't be present with Transfer-Encoding")
		}
		if raw == "" {
			return true, parseError(nodeerr.HPE_INVALID_CONTENT_LENGTH, "Empty Content-Length")
		}
		// llhttp refuses any second Content-Length line, equal or not, and
		// no lenient flag relaxes it.
		if p.hasCL {
			return true, parseError(nodeerr.HPE_UNEXPECTED_CONTENT_LENGTH, "Duplicate Content-Length")
		}
		var n int64
		k := 0
		for ; k < len(raw) && isDigit(raw[k]); k++ {
			d := int64(raw[k] - '0')
			if n > (math.MaxInt64-d)/10 {
				return true, parseError(nodeerr.HPE_INVALID_CONTENT_LENGTH, "Content-Length overflow")
			}
			n = n*10 + d
		}
		for k < len(raw) && isOWS(raw[k]) {
			k++
		}
		if k != len(raw) {
			if raw[k] == '\r' {
				return true, parseError(nodeerr.HPE_LF_EXPECTED, "Missing expected LF after header value")
			}
			return true, parseError(nodeerr.HPE_INVALID_CONTENT_LENGTH, "Invalid character in Content-Length")
		}
		p.hasCL = true
		h.ContentLength = n
		return true, nil
	case 16:
		if equalFoldASCII(name, "proxy-connection") {
			p.connection(raw)
		}
	case 17:
		if !equalFoldASCII(name, "transfer-encoding") {
			return false, nil
		}
		if p.hasCL && !p.insecure {
			return false, parseError(nodeerr.HPE_INVALID_TRANSFER_ENCODING, "Transfer-Encoding can't be present with Content-Length")
		}
		if raw == "" {
			return false, parseError(nodeerr.HPE_INVALID_TRANSFER_ENCODING, "Empty Transfer-Encoding")
		}
		p.hasTE = true
		h.TransferEncoding = true
		// Several Transfer-Encoding lines form one list (RFC 9110 section
		// 5.3); each new line restarts the "final coding is chunked" test,
		// as llhttp unsets F_CHUNKED at each.
		last := ""
		forEachToken(raw, func(tok string) {
			last = tok
			if equalFoldASCII(tok, "chunked") {
				p.chunkedSeen++
			}
		})
		h.Chunked = equalFoldASCII(last, "chunked")
		// RFC 9112 section 6.1: a sender MUST NOT apply chunked more than
		// once. llhttp lets a response do it; strict mode here does not.
		if p.chunkedSeen > 1 && !p.insecure {
			return false, parseError(nodeerr.HPE_INVALID_TRANSFER_ENCODING, "Invalid `Transfer-Encoding` header value")
		}
	}
	return false, nil
}

// connection records the tokens llhttp looks for in Connection and
// Proxy-Connection.
func (p *fieldParser) connection(raw string) {
	forEachToken(raw, func(tok string) {
		switch {
		case equalFoldASCII(tok, "close"):
			p.connClose = true
		case equalFoldASCII(tok, "keep-alive"):
			p.connKeepAlive = true
		case equalFoldASCII(tok, "upgrade"):
			p.head.Upgrade = true
		}
	})
}

// keepAliveHint reads the Keep-Alive header the way Node's Agent does:
// /^timeout=(\d+)/ on the value (the merged value starts with the first
// line's). Absurd values are capped so the Duration cannot overflow.
func keepAliveHint(v string) time.Duration {
	const prefix = "timeout="
	if !strings.HasPrefix(v, prefix) {
		return 0
	}
	var n int64
	k := len(prefix)
	for ; k < len(v) && isDigit(v[k]); k++ {
		if n < 1<<32 {
			n = n*10 + int64(v[k]-'0')
		}
	}
	if k == len(prefix) {
		return 0
	}
	return time.Duration(min(n, 1<<32)) * time.Second
}
