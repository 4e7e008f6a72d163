package testutil

import (
	"bufio"
	"io"
	"net/http/httputil"
)

// newChunkedReader decodes a chunked body with the standard library's
// decoder, so that tests check the engine against an independent one.
func newChunkedReader(br *bufio.Reader) io.Reader { return httputil.NewChunkedReader(br) }
