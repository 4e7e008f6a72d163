package httpengine_test

import (
	"bufio"
	"io"
	"net"

	"github.com/httpgateway/httpgateway/internal/testutil"
)

type netConn = net.Conn

// answerAndClose reads one request, writes resp and closes the connection.
func answerAndClose(c net.Conn, resp string) {
	if _, _, err := testutil.ReadRequest(bufio.NewReader(c)); err != nil {
		return
	}
	_, _ = io.WriteString(c, resp)
}

func splitHostPort(raw string) (string, int, error) {
	h, p, err := net.SplitHostPort(raw[len("http://"):])
	if err != nil {
		return "", 0, err
	}
	n := 0
	for _, ch := range p {
		n = n*10 + int(ch-'0')
	}
	return h, n, nil
}
