package wire

import (
	"bufio"
	"io"
)

// Limits on chunk framing overhead.
const (
	// MaxChunkExtensionsSize is Node's per-chunk limit on extension bytes
	// (kMaxChunkExtensionsSize, 16 KiB, CVE-2024-22019); beyond it,
	// HPE_CHUNK_EXTENSIONS_OVERFLOW.
	MaxChunkExtensionsSize = 16 * 1024
	// maxChunkExcess bounds the framing overhead (size lines, extensions,
	// CRLFs) a chunked body may carry beyond what its data justifies, the
	// way Go's net/http/internal chunkedReader does since the
	// CVE-2023-39326 fix: each chunk adds its line length + 2 and takes
	// back 16 + 2*size; the balance may not exceed 16 KiB. This stops a
	// peer from making us parse megabytes of extensions on 1-byte chunks,
	// which the per-chunk limit alone allows.
	maxChunkExcess = 16 * 1024
)

type bodyState uint8

const (
	stData         bodyState = iota // Content-Length bytes or chunk data left in remaining
	stUntilClose                    // everything to EOF
	stChunkSize                     // reading a chunk-size line
	stChunkDataEnd                  // the CRLF after chunk data
	stTrailers                      // the trailer block after the last chunk
	stDone
)

// Chunk-size line states (llhttp's chunk_size_* and chunk_extension_*).
const (
	csStart uint8 = iota
	csDigits
	csSpaces
	csExtStart
	csExtName
	csExtValue
	csExtQuoted
	csExtQuotedPair
	csExtQuotedDone
	csAlmostDone // CR seen
)

// BodyReader reads one response body with a given framing. It returns
// io.EOF exactly at the body's clean end, and never for a body cut short:
// a connection that ends (or fails) before the Content-Length bytes or the
// last chunk gives ECONNRESET "aborted", as Node's IncomingMessage reports
// it. Malformed chunk framing gives llhttp's HPE_* error. Errors are
// sticky.
//
// A BodyReader is not safe for concurrent use. It never reads past the end
// of its body, so br is positioned at the next response after io.EOF (for
// FramingNone, FramingLength and FramingChunked).
type BodyReader struct {
	br       *bufio.Reader
	insecure bool
	chunked  bool
	maxHdr   int
	rawCap   int

	state     bodyState
	remaining int64 // bytes left in the body (FramingLength) or chunk
	err       error // sticky

	cs       uint8 // chunk-size line state
	size     int64 // chunk size being parsed
	lineLen  int64 // bytes of the current chunk-size line
	extBytes int   // extension bytes of the current chunk
	excess   int64

	trailers []Header
	received int64 // body bytes returned so far
}

// NewBodyReader returns a BodyReader for a body framed as f on br.
func NewBodyReader(br *bufio.Reader, f Framing, opts ParseOptions) *BodyReader {
	b := new(BodyReader)
	b.Reset(br, f, opts)
	return b
}

// Reset makes b read a new body, as NewBodyReader would, so that a caller
// can keep one BodyReader per connection (or embed one by value) and read
// every response without allocating. Trailers from the previous body are
// dropped.
func (b *BodyReader) Reset(br *bufio.Reader, f Framing, opts ParseOptions) {
	*b = BodyReader{br: br, insecure: opts.Insecure, maxHdr: opts.maxHeaderSize(), rawCap: opts.rawCap()}
	switch f.Kind {
	case FramingLength:
		b.remaining = f.Length
		if f.Length <= 0 {
			b.state = stDone
		}
	case FramingChunked:
		b.state = stChunkSize
		b.chunked = true
	case FramingUntilClose:
		b.state = stUntilClose
	default:
		b.state = stDone
	}
}

// Complete reports whether the whole body was read: its framing was
// satisfied (for FramingUntilClose: the connection ended cleanly).
func (b *BodyReader) Complete() bool { return b.state == stDone && b.err == nil }

// Trailers returns the raw trailer lines of a chunked body (wire order and
// casing, values trimmed), valid once Read or Next returned io.EOF.
func (b *BodyReader) Trailers() []Header { return b.trailers }

// Received returns how many body bytes were returned so far.
func (b *BodyReader) Received() int64 { return b.received }

// Read reads body bytes into p. Large reads on an empty buffer go straight
// from the connection into p (bufio.Reader.Read does that).
func (b *BodyReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, b.err
	}
	if err := b.advance(); err != nil {
		return 0, err
	}
	switch b.state {
	case stDone:
		return 0, io.EOF
	case stData:
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
	}
	n, err := b.br.Read(p)
	b.account(n)
	return n, b.afterRead(n, err)
}

// Next returns the next span of body bytes, at most max of them (max <= 0
// means whatever is buffered), without copying: the slice points into br's
// buffer and is valid only until the next call on b or on br. It returns
// (nil, io.EOF) at the body's end; a non-empty span always comes with a nil
// error.
func (b *BodyReader) Next(max int) ([]byte, error) {
	if err := b.advance(); err != nil {
		return nil, err
	}
	if b.state == stDone {
		return nil, io.EOF
	}
	if b.br.Buffered() == 0 {
		if _, err := b.br.Peek(1); err != nil {
			return nil, b.afterRead(0, err)
		}
	}
	n := b.br.Buffered()
	if max > 0 && n > max {
		n = max
	}
	if b.state == stData && int64(n) > b.remaining {
		n = int(b.remaining)
	}
	p, _ := b.br.Peek(n)
	_, _ = b.br.Discard(n)
	b.account(n)
	return p, nil
}

func (b *BodyReader) account(n int) {
	b.received += int64(n)
	if b.state == stData {
		b.remaining -= int64(n)
	}
}

// afterRead classifies a read's error: EOF ends an until-close body
// cleanly and cuts any other body short.
func (b *BodyReader) afterRead(n int, err error) error {
	if err == nil || n > 0 && err == io.EOF {
		return nil // report EOF on the next call
	}
	if b.state == stUntilClose && err == io.EOF {
		b.state = stDone
		return io.EOF
	}
	return b.fail(abortedErr(err))
}

func (b *BodyReader) fail(err error) error {
	b.err = err
	return err
}

// advance moves through the framing states until body bytes (or the end)
// are next.
func (b *BodyReader) advance() error {
	for b.err == nil {
		switch b.state {
		case stData:
			if b.remaining > 0 {
				return nil
			}
			if !b.chunked {
				b.state = stDone
				continue
			}
			b.state = stChunkDataEnd
		case stUntilClose, stDone:
			return nil
		case stChunkSize:
			if err := b.readChunkSize(); err != nil {
				return b.fail(err)
			}
		case stChunkDataEnd:
			if err := b.readChunkDataEnd(); err != nil {
				return b.fail(err)
			}
		case stTrailers:
			if err := b.readTrailers(); err != nil {
				return b.fail(err)
			}
		}
	}
	return b.err
}
