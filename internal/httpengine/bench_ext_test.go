package httpengine_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
)

// benchServer serves /small (13 bytes) and /1m (1 MiB) with Content-Length.
func benchServer(b *testing.B) *httptest.Server {
	big := make([]byte, 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1m" {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = w.Write(big)
			return
		}
		w.Header().Set("Content-Length", "13")
		_, _ = io.WriteString(w, "hello, world\n")
	}))
	b.Cleanup(srv.Close)
	return srv
}

// engineGet does one request and drains its events, as a consumer would.
func engineGet(b *testing.B, a *agentpool.Agent, host string, port int, path string) int {
	// One reader that keeps nothing: the buffers are reused, as for Fetch.
	c, err := httpengine.Request(a, false, httpengine.Options{Host: host, Port: port, Path: path, ReuseBodyBuffers: true}, 0)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.End(ctx, nil); err != nil {
		b.Fatal(err)
	}
	n := 0
	for seq := uint64(1); ; seq++ {
		ev, err := c.Events().NextHeld(ctx, seq)
		if err == io.EOF {
			c.Events().DropDelivered()
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		switch ev.Kind {
		case httpengine.EventData:
			n += len(ev.Data)
		case httpengine.EventError:
			b.Fatal(ev.Err)
		}
		c.Events().Done(&ev)
	}
}

func netHTTPGet(b *testing.B, client *http.Client, url string) int {
	resp, err := client.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	return int(n)
}

// BenchmarkKeepAliveGet compares one small keep-alive GET through the engine
// with the same through net/http's client, against the same server.
//
//	go test -run '^$' -bench 'KeepAliveGet|Download1M' -benchmem ./internal/httpengine/
func BenchmarkKeepAliveGet(b *testing.B) {
	srv := benchServer(b)
	host, port := hostPortB(b, srv.URL)
	b.Run("engine", func(b *testing.B) {
		a, _ := agentpool.New("bench", agentpool.GlobalOptions(), agentpool.Deps{})
		defer a.Destroy()
		b.ReportAllocs()
		for b.Loop() {
			engineGet(b, a, host, port, "/small")
		}
	})
	b.Run("net-http", func(b *testing.B) {
		tr := &http.Transport{MaxIdleConnsPerHost: 16}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		b.ReportAllocs()
		for b.Loop() {
			netHTTPGet(b, client, srv.URL+"/small")
		}
	})
}

// BenchmarkDownload1M compares a 1 MiB download.
func BenchmarkDownload1M(b *testing.B) {
	srv := benchServer(b)
	host, port := hostPortB(b, srv.URL)
	b.Run("engine", func(b *testing.B) {
		a, _ := agentpool.New("bench", agentpool.GlobalOptions(), agentpool.Deps{})
		defer a.Destroy()
		b.ReportAllocs()
		b.SetBytes(1 << 20)
		for b.Loop() {
			if n := engineGet(b, a, host, port, "/1m"); n != 1<<20 {
				b.Fatalf("got %d bytes", n)
			}
		}
	})
	b.Run("net-http", func(b *testing.B) {
		tr := &http.Transport{MaxIdleConnsPerHost: 16}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		b.ReportAllocs()
		b.SetBytes(1 << 20)
		for b.Loop() {
			if n := netHTTPGet(b, client, srv.URL+"/1m"); n != 1<<20 {
				b.Fatalf("got %d bytes", n)
			}
		}
	})
}

func hostPortB(b *testing.B, raw string) (string, int) {
	b.Helper()
	h, p, _ := splitHostPort(raw)
	return h, p
}
