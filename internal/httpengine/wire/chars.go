package wire

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// Byte classes, one table lookup per byte on the hot path.
const (
	classToken  = 1 << iota // RFC 9110 tchar (llhttp TOKEN)
	classValue              // llhttp HEADER_CHARS: HTAB, 0x20-0x7E, 0x80-0xFF
	classQDText             // llhttp QDTEXT (chunk extension quoted values)
	classVChar              // HTAB / SP / VCHAR / obs-text (quoted-pair)
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if c < utf8.RuneSelf && httpguts.IsTokenRune(rune(c)) {
			t[c] |= classToken
		}
		if c == '\t' || (c >= 0x20 && c != 0x7f) {
			t[c] |= classValue | classVChar
		}
		if c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80 {
			t[c] |= classQDText
		}
	}
	return t
}()

func isToken(c byte) bool { return byteClass[c]&classToken != 0 }

// isOWS reports SP or HTAB, the optional whitespace of RFC 9110.
func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWSRight drops trailing SP/HTAB. Node's parser does this to every
// header value (StringPtr::ToTrimmedString in node_http_parser.cc); llhttp
// itself already skips the leading whitespace.
func trimOWSRight(s string) string {
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	return trimOWSRight(s)
}

// latin1ToUTF8 decodes s as Node does its header bytes (latin1, one byte one
// code point) into a Go (UTF-8) string, so that obs-text survives as text a
// protobuf string field can carry. It allocates only when s has a byte
// >= 0x80.
func latin1ToUTF8(s string) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s) - i)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

// equalFoldASCII compares s with a lower-case ASCII literal, ignoring the
// case of s. It is what llhttp's toLower transform + match does.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasUpperASCII reports whether s has an ASCII upper-case letter.
func hasUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// forEachToken calls fn for each comma-separated element of a list header
// value, with OWS trimmed (RFC 9110 section 5.6.1). Empty elements are
// passed too: callers decide what they mean.
func forEachToken(v string, fn func(tok string)) {
	for {
		i := strings.IndexByte(v, ',')
		if i < 0 {
			fn(trimOWS(v))
			return
		}
		fn(trimOWS(v[:i]))
		v = v[i+1:]
	}
}
