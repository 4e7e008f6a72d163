package wire

import (
	"bufio"
	"bytes"
)

// readBlock reads one block of lines ending with an empty line ("\r\n", or a
// bare "\n" which the parser then accepts or rejects), and returns it as one
// string with the terminating line included. Callers slice names and values
// out of that one string, so a header block costs one allocation here.
//
// For a response head (trailer=false) the first line is never empty: leading
// CR and LF bytes are skipped, as llhttp's 'start' state skips them. For a
// trailer block (trailer=true) the block may be just the empty line.
//
// rawCap bounds the bytes buffered; a longer block fails with
// HPE_HEADER_OVERFLOW. With a read error, partial reports whether any byte
// of the block had been read (see hangUpErr and abortedErr at the call
// sites).
func readBlock(br *bufio.Reader, rawCap int, trailer bool) (s string, partial bool, err error) {
	if !trailer {
		for {
			b, err := br.Peek(1)
			if err != nil {
				return "", false, err
			}
			if b[0] != '\r' && b[0] != '\n' {
				break
			}
			// Not counted against the limit: llhttp discards them before
			// the message begins.
			_, _ = br.Discard(1)
		}
	}

	// Fast path: the whole block is already buffered. One copy, into the
	// string, and none of the line-by-line appends below.
	if buf, _ := br.Peek(br.Buffered()); len(buf) > 0 {
		if end := blockEnd(buf, rawCap, trailer); end > 0 {
			switch {
			case end == 2 && trailer:
				s = "\r\n" // no trailers: the common case costs nothing
			default:
				s = string(buf[:end])
			}
			_, _ = br.Discard(end)
			return s, true, nil
		} else if end < 0 {
			return "", true, errHeaderOverflow()
		}
	}

	// Slow path: the block arrives in pieces or is larger than br's buffer.
	var acc []byte
	lineStart := 0
	for {
		line, err := br.ReadSlice('\n')
		acc = append(acc, line...)
		if len(acc) > rawCap {
			return "", true, errHeaderOverflow()
		}
		switch err {
		case nil:
		case bufio.ErrBufferFull:
			continue
		default:
			return "", len(acc) > 0 || !trailer, err
		}
		l := acc[lineStart:]
		if len(l) == 1 || (len(l) == 2 && l[0] == '\r') {
			return string(acc), true, nil
		}
		lineStart = len(acc)
	}
}

// blockEnd returns the length of the block at the start of buf (through its
// empty line), 0 if buf does not hold all of it yet, or -1 if the block is
// already known to be longer than rawCap.
func blockEnd(buf []byte, rawCap int, trailer bool) int {
	if trailer {
		if buf[0] == '\n' {
			return 1
		}
		if len(buf) >= 2 && buf[0] == '\r' && buf[1] == '\n' {
			return 2
		}
	}
	for from := 0; ; {
		i := bytes.IndexByte(buf[from:], '\n')
		if i < 0 {
			if len(buf) > rawCap {
				return -1
			}
			return 0
		}
		p := from + i // a line ends at p; is the next one empty?
		var end int
		switch {
		case p+1 < len(buf) && buf[p+1] == '\n':
			end = p + 2
		case p+2 < len(buf) && buf[p+1] == '\r' && buf[p+2] == '\n':
			end = p + 3
		case p+2 >= len(buf):
			// The next line is not (fully) buffered yet.
			if p+1 > rawCap {
				return -1
			}
			return 0
		}
		if end > 0 {
			if end > rawCap {
				return -1
			}
			return end
		}
		if p+1 > rawCap {
			return -1
		}
		from = p + 1
	}
}
