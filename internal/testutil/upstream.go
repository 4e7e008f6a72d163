package testutil

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Upstream is a scripted HTTP/1.1 server on loopback: each accepted
// connection is handed to the script, which reads and writes exact bytes.
type Upstream struct {
	ln   net.Listener
	Addr string
	Port int

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewUpstream starts a scripted server whose connections run script; the
// server and every connection close at test cleanup. script runs on its own
// goroutine per connection; it owns the connection until it returns, and the
// connection is closed after it returns.
func NewUpstream(t testing.TB, script func(c net.Conn)) *Upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{ln: ln, Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port, conns: map[net.Conn]struct{}{}}
	u.wg.Add(1)
	go func() { // ends when ln is closed
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = struct{}{}
			u.mu.Unlock()
			u.wg.Add(1)
			go func() { // ends when script returns
				defer u.wg.Done()
				defer func() {
					_ = c.Close()
					u.mu.Lock()
					delete(u.conns, c)
					u.mu.Unlock()
				}()
				script(c)
			}()
		}
	}()
	t.Cleanup(u.Close)
	return u
}

// Close stops the server, closes every open connection and waits for the
// scripts to return.
func (u *Upstream) Close() {
	_ = u.ln.Close()
	u.mu.Lock()
	for c := range u.conns {
		_ = c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// ReadHead reads one request head from br, up to and including its empty
// line, and returns its raw bytes: what a scripted upstream reads before
// it decides what to do with the body (wait, answer early, ignore it).
func ReadHead(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" {
			return sb.String(), nil
		}
	}
}

// ReadRequest reads one request head and its body (Content-Length or
// chunked) from br and returns the head's raw bytes and the body.
func ReadRequest(br *bufio.Reader) (head string, body []byte, err error) {
	if head, err = ReadHead(br); err != nil {
		return head, nil, err
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		return head, nil, err
	}
	switch {
	case len(req.TransferEncoding) > 0:
		body, err = io.ReadAll(newChunkedReader(br))
	case req.ContentLength > 0:
		body = make([]byte, req.ContentLength)
		_, err = io.ReadFull(br, body)
	}
	return head, body, err
}
