package wire

import (
	"strconv"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Header is one header line with its raw name casing; order is kept by
// slices of it. Repeated names are allowed.
type Header struct{ Name, Value string }

// Chunk framing written by a chunked request body (RFC 9112 section 7.1).
const (
	// CRLF ends every chunk's data.
	CRLF = "\r\n"
	// LastChunk ends a chunked body that has no trailers.
	LastChunk = "0\r\n\r\n"
)

// ValidateHeaderName checks a request header name the way Node's
// validateHeaderName does (checkIsHttpToken: a non-empty RFC 9110 token).
// Error: ERR_INVALID_HTTP_TOKEN `Header name must be a valid HTTP token ["<name>"]`.
func ValidateHeaderName(name string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return nodeerr.New(nodeerr.ERR_INVALID_HTTP_TOKEN, `Header name must be a valid HTTP token ["`+name+`"]`)
	}
	return nil
}

// ValidateHeaderValue checks a request header value the way Node's
// validateHeaderValue does once the value is known to be present
// (checkInvalidHeaderChar: /[^\t\x20-\x7e\x80-\xff]/). An absent value
// (ERR_HTTP_INVALID_HEADER_VALUE) is the caller's check.
//
// value is text (UTF-8), as a JS string is: code points U+0080..U+00FF are
// allowed and are written as one latin1 byte each by AppendRequestHead,
// exactly as Node writes headers with the 'latin1' encoding. CR, LF, NUL,
// the other controls but HTAB, DEL, any code point above U+00FF and invalid
// UTF-8 are rejected with ERR_INVALID_CHAR
// `Invalid character in header content ["<name>"]`.
func ValidateHeaderValue(name, value string) error {
	if !validLatin1Text(value, func(r rune) bool { return r == '\t' || (r >= 0x20 && r != 0x7f) }) {
		return errInvalidHeaderChar(name)
	}
	return nil
}

func errInvalidHeaderChar(name string) error {
	return nodeerr.New(nodeerr.ERR_INVALID_CHAR, `Invalid character in header content ["`+name+`"]`)
}

// ValidateMethod checks a method the way ClientRequest's constructor does.
// Error: ERR_INVALID_HTTP_TOKEN `Method must be a valid HTTP token ["<m>"]`.
// Upper-casing the method is the caller's job, as in Node.
func ValidateMethod(method string) error {
	if !httpguts.ValidHeaderFieldName(method) {
		return nodeerr.New(nodeerr.ERR_INVALID_HTTP_TOKEN, `Method must be a valid HTTP token ["`+method+`"]`)
	}
	return nil
}

// ValidatePath checks a request path the way ClientRequest's constructor
// does with INVALID_PATH_REGEX (/[^\u0021-\u00ff]/): every code point must be
// in U+0021..U+00FF, so no spaces, no controls, nothing outside latin1.
// Error: ERR_UNESCAPED_CHARACTERS `Request path contains unescaped characters`.
func ValidatePath(path string) error {
	if !validLatin1Text(path, func(r rune) bool { return r >= 0x21 }) {
		return nodeerr.New(nodeerr.ERR_UNESCAPED_CHARACTERS, "Request path contains unescaped characters")
	}
	return nil
}

// validLatin1Text reports whether s is valid UTF-8 whose code points are all
// at most U+00FF and accepted by ok.
func validLatin1Text(s string, ok func(rune) bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !ok(rune(c)) {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r > 0xff || !ok(r) {
			return false
		}
		i += size
	}
	return true
}

// AppendRequestHead appends "METHOD target HTTP/1.1\r\n", each header as
// "Name: value\r\n" in order, then "\r\n", as Node's ClientRequest writes
// them (_storeHeader). Text is written latin1, one byte per code point, like
// Node's 'latin1' encoding of the head.
//
// It expects input already checked with the Validate functions, but as a
// defence in depth it refuses anything that could split the head: CR, LF or
// NUL anywhere, a space in the method or target, an empty or non-token-safe
// name (colon, space, tab), or a code point above U+00FF. Then it returns
// dst unchanged and a *nodeerr.Error (ERR_INVALID_HTTP_TOKEN for the method,
// ERR_UNESCAPED_CHARACTERS for the target, ERR_INVALID_HTTP_TOKEN or
// ERR_INVALID_CHAR for a header).
func AppendRequestHead(dst []byte, method, target string, headers []Header) ([]byte, error) {
	orig := len(dst)
	if method == "" || !safeHeadText(method, true) {
		return dst[:orig], nodeerr.New(nodeerr.ERR_INVALID_HTTP_TOKEN, `Method must be a valid HTTP token ["`+method+`"]`)
	}
	if target == "" || !safeHeadText(target, true) {
		return dst[:orig], nodeerr.New(nodeerr.ERR_UNESCAPED_CHARACTERS, "Request path contains unescaped characters")
	}
	dst = appendLatin1(dst, method)
	dst = append(dst, ' ')
	dst = appendLatin1(dst, target)
	dst = append(dst, " HTTP/1.1\r\n"...)
	var err error
	if dst, err = appendHeaderLines(dst, headers); err != nil {
		return dst[:orig], err
	}
	return append(dst, CRLF...), nil
}

func appendHeaderLines(dst []byte, headers []Header) ([]byte, error) {
	for _, h := range headers {
		if h.Name == "" || !safeHeaderName(h.Name) {
			return dst, nodeerr.New(nodeerr.ERR_INVALID_HTTP_TOKEN, `Header name must be a valid HTTP token ["`+h.Name+`"]`)
		}
		if !safeHeadText(h.Value, false) {
			return dst, errInvalidHeaderChar(h.Name)
		}
		dst = appendLatin1(dst, h.Name)
		dst = append(dst, ':', ' ')
		dst = appendLatin1(dst, h.Value)
		dst = append(dst, CRLF...)
	}
	return dst, nil
}

// safeHeadText reports whether s can be written into a head line without
// breaking its framing: no CR, LF or NUL (nor a space when noSpace), valid
// UTF-8, no code point above U+00FF.
func safeHeadText(s string, noSpace bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == '\r' || c == '\n' || c == 0 || (noSpace && c == ' ') {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r > 0xff {
			return false
		}
		i += size
	}
	return true
}

func safeHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 || c >= utf8.RuneSelf:
			return false
		}
	}
	return true
}

// appendLatin1 appends s encoded as latin1; s was checked to hold only code
// points up to U+00FF.
func appendLatin1(dst []byte, s string) []byte {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	dst = append(dst, s[:i]...)
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		dst = append(dst, byte(r))
		i += size
	}
	return dst
}

// AppendChunkHeader appends the size line of a chunk of n bytes: lower-case
// hex and CRLF, as Node writes it (len.toString(16) + '\r\n'). The chunk's
// data follows, then CRLF. n must be positive: a zero size is the last chunk
// (AppendLastChunk).
func AppendChunkHeader(dst []byte, n int) []byte {
	dst = strconv.AppendUint(dst, uint64(n), 16)
	return append(dst, CRLF...)
}

// AppendLastChunk appends the last chunk "0\r\n", the trailer lines
// "Name: value\r\n" in order, and the final "\r\n" (Node's
// '0\r\n' + this._trailer + '\r\n'). With no trailers it appends LastChunk.
// Trailers get the same defensive checks as AppendRequestHead's headers;
// on error dst is returned unchanged.
func AppendLastChunk(dst []byte, trailers []Header) ([]byte, error) {
	orig := len(dst)
	dst = append(dst, '0', '\r', '\n')
	var err error
	if dst, err = appendHeaderLines(dst, trailers); err != nil {
		return dst[:orig], err
	}
	return append(dst, CRLF...), nil
}
