package wire

import (
	"math"
	"strings"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

func errChunkSize(reason string) error { return parseError(nodeerr.HPE_INVALID_CHUNK_SIZE, reason) }
func errStrict(reason string) error    { return parseError(nodeerr.HPE_STRICT, reason) }

func unhex(c byte) (int64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int64(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return int64(c-'A') + 10, true
	}
	return 0, false
}

// readChunkSize consumes one chunk-size line (size, extensions, line end)
// straight from br's buffer, whatever its length, without copying it.
func (b *BodyReader) readChunkSize() error {
	for {
		if b.br.Buffered() == 0 {
			if _, err := b.br.Peek(1); err != nil {
				return abortedErr(err)
			}
		}
		buf, _ := b.br.Peek(b.br.Buffered())
		n, done, err := b.scanChunkSize(buf)
		_, _ = b.br.Discard(n)
		b.lineLen += int64(n)
		if err != nil {
			return err
		}
		if done {
			return b.chunkHeaderDone()
		}
	}
}

// chunkHeaderDone applies the overhead limit and moves to the chunk's data,
// or to the trailers after the last chunk.
func (b *BodyReader) chunkHeaderDone() error {
	b.excess += b.lineLen + 2
	if b.size >= maxChunkExcess {
		b.excess = 0
	} else {
		b.excess -= 16 + 2*b.size
	}
	b.excess = max(b.excess, 0)
	if b.excess > maxChunkExcess {
		return parseError(nodeerr.HPE_CHUNK_EXTENSIONS_OVERFLOW, "Chunk extensions overflow")
	}
	size := b.size
	b.cs, b.size, b.lineLen, b.extBytes = csStart, 0, 0, 0
	if size == 0 {
		b.state = stTrailers
		return nil
	}
	b.remaining = size
	b.state = stData
	return nil
}

// scanChunkSize runs llhttp's chunk_size and chunk_extension states over
// buf. It returns the bytes consumed and whether the line is complete.
func (b *BodyReader) scanChunkSize(buf []byte) (int, bool, error) {
	for i := 0; i < len(buf); i++ {
		c := buf[i]
		if b.cs >= csExtStart && b.cs <= csExtQuotedDone && c != '\r' && c != '\n' {
			// Node's on_chunk_extension accounting (per chunk).
			b.extBytes++
			if b.extBytes > MaxChunkExtensionsSize {
				return i, false, parseError(nodeerr.HPE_CHUNK_EXTENSIONS_OVERFLOW, "Chunk extensions overflow")
			}
		}
		switch b.cs {
		case csStart:
			d, ok := unhex(c)
			if !ok {
				return i, false, errChunkSize("Invalid character in chunk size")
			}
			b.size = d
			b.cs = csDigits
		case csDigits, csSpaces:
			if d, ok := unhex(c); ok && b.cs == csDigits {
				if b.size > (math.MaxInt64-d)/16 {
					return i, false, errChunkSize("Chunk size overflow")
				}
				b.size = b.size*16 + d
				continue
			}
			switch c {
			case ' ', '\t':
				if !b.insecure { // LENIENT_SPACES_AFTER_CHUNK_SIZE
					return i, false, errChunkSize("Invalid character in chunk size")
				}
				b.cs = csSpaces
			case '\r':
				b.cs = csAlmostDone
			case '\n':
				if !b.insecure { // LENIENT_OPTIONAL_CR_BEFORE_LF
					return i, false, parseError(nodeerr.HPE_CR_EXPECTED, "Missing expected CR after chunk size")
				}
				return i + 1, true, nil
			case ';':
				b.cs = csExtStart
			default:
				return i, false, errChunkSize("Invalid character in chunk size")
			}
		case csExtStart:
			// llhttp allows no whitespace around ';' (RFC 9112's BWS is
			// rejected), nor an empty extension before the line end.
			if c == ' ' || c == '\r' {
				return i, false, errStrict("Invalid character in chunk extensions")
			}
			b.cs = csExtName
			i-- // reprocess as part of the name
			b.extBytes--
		case csExtName:
			switch {
			case isToken(c):
			case c == '=':
				b.cs = csExtValue
			case c == ';':
				b.cs = csExtStart
			case c == '\r':
				b.cs = csAlmostDone
			case c == '\n':
				if !b.insecure {
					return i, false, parseError(nodeerr.HPE_CR_EXPECTED, "Missing expected CR after chunk extension name")
				}
				return i + 1, true, nil
			default:
				return i, false, errStrict("Invalid character in chunk extensions name")
			}
		case csExtValue:
			switch {
			case c == '"':
				b.cs = csExtQuoted
			case isToken(c):
			case c == ';':
				b.cs = csExtStart
			case c == '\r':
				b.cs = csAlmostDone
			case c == '\n':
				if !b.insecure {
					return i, false, parseError(nodeerr.HPE_CR_EXPECTED, "Missing expected CR after chunk extension value")
				}
				return i + 1, true, nil
			default:
				return i, false, errStrict("Invalid character in chunk extensions value")
			}
		case csExtQuoted:
			switch {
			case c == '"':
				b.cs = csExtQuotedDone
			case c == '\\':
				b.cs = csExtQuotedPair
			case byteClass[c]&classQDText != 0:
			default:
				return i, false, errStrict("Invalid character in chunk extensions quoted value")
			}
		case csExtQuotedPair:
			if byteClass[c]&classVChar == 0 {
				return i, false, errStrict("Invalid quoted-pair in chunk extensions quoted value")
			}
			b.cs = csExtQuoted
		case csExtQuotedDone:
			switch c {
			case ';':
				b.cs = csExtStart
			case '\r':
				b.cs = csAlmostDone
			case '\n':
				if !b.insecure {
					return i, false, parseError(nodeerr.HPE_CR_EXPECTED, "Missing expected CR after chunk extension value")
				}
				return i + 1, true, nil
			default:
				return i, false, errStrict("Invalid character in chunk extensions quote value")
			}
		case csAlmostDone:
			if c == '\n' {
				return i + 1, true, nil
			}
			if b.insecure { // LENIENT_OPTIONAL_LF_AFTER_CR: the CR ends the line
				return i, true, nil
			}
			return i, false, errStrict("Expected LF after chunk size")
		}
	}
	return len(buf), false, nil
}

// readChunkDataEnd consumes the CRLF after a chunk's data (llhttp's
// chunk_data_almost_done).
func (b *BodyReader) readChunkDataEnd() error {
	buf, err := b.br.Peek(1)
	if len(buf) == 0 {
		return abortedErr(err)
	}
	switch buf[0] {
	case '\n':
		if !b.insecure { // LENIENT_OPTIONAL_CR_BEFORE_LF
			return parseError(nodeerr.HPE_CR_EXPECTED, "Missing expected CR after chunk data")
		}
		_, _ = b.br.Discard(1)
	case '\r':
		buf, err = b.br.Peek(2)
		if len(buf) < 2 {
			return abortedErr(err)
		}
		if buf[1] == '\n' {
			_, _ = b.br.Discard(2)
		} else if !b.insecure { // LENIENT_OPTIONAL_CRLF_AFTER_CHUNK leaves the CR to the size line
			return errStrict("Expected LF after chunk data")
		}
	default:
		if !b.insecure { // LENIENT_OPTIONAL_CRLF_AFTER_CHUNK
			return errStrict("Expected LF after chunk data")
		}
	}
	b.state = stChunkSize
	return nil
}

// readTrailers reads the trailer section after the last chunk. Node counts
// it against maxHeaderSize afresh (header_nread_ is reset by
// on_chunk_header).
func (b *BodyReader) readTrailers() error {
	s, _, err := readBlock(b.br, b.rawCap, true)
	if err != nil {
		if nodeerr.As(err) != nil {
			return err // HPE_HEADER_OVERFLOW
		}
		return abortedErr(err)
	}
	p := fieldParser{insecure: b.insecure, limit: b.maxHdr}
	var hs []Header
	if n := strings.Count(s, "\n") - 1; n > 0 {
		hs = make([]Header, 0, n)
	}
	if b.trailers, err = p.parse(s, hs); err != nil {
		b.trailers = nil
		return err
	}
	b.state = stDone
	return nil
}
