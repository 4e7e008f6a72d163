package wire_test

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
)

// The engine's read loop: heads until the final one (1xx become
// 'information' events), then the body, zero-copy.
func Example() {
	conn := strings.NewReader("HTTP/1.1 100 Continue\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n" +
		"5\r\nhello\r\n0\r\nX-Done: yes\r\n\r\n")
	br := bufio.NewReader(conn)
	opts := wire.ParseOptions{}
	for {
		h, err := wire.ReadResponseHead(br, opts)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println("status", h.StatusCode)
		if h.StatusCode/100 == 1 && h.StatusCode != 101 {
			continue
		}
		for _, m := range h.Merged(false) {
			fmt.Printf("%s: %q\n", m.Name, m.Values)
		}
		body := wire.NewBodyReader(br, wire.BodyFraming("GET", h), opts)
		for {
			p, err := body.Next(0)
			if err == io.EOF {
				break
			}
			if err != nil {
				fmt.Println("error:", err)
				return
			}
			fmt.Printf("data %q\n", p)
		}
		fmt.Println("trailers", body.Trailers(), "keep-alive", h.KeepAlive(wire.BodyFraming("GET", h)))
		return
	}
	// Output:
	// status 100
	// status 200
	// transfer-encoding: ["chunked"]
	// set-cookie: ["a=1" "b=2"]
	// data "hello"
	// trailers [{X-Done yes}] keep-alive true
}
