package agentpool_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
)

// The idle-socket benchmark runs its upstream in a child process (this test
// binary re-executed), so the goroutines, heap and fds it measures are the
// client's alone.
const helperEnv = "AGENTPOOL_BENCH_UPSTREAM"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		runHelperUpstream()
		return
	}
	os.Exit(m.Run())
}

// runHelperUpstream serves keep-alive "ok" responses on 127.0.0.1 until
// stdin closes. A request for /hold/N is answered once N such requests
// wait, which forces a client to open N connections.
func runHelperUpstream() {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	var mu sync.Mutex
	waiting := 0
	release := make(chan struct{})
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(0)
		}
		go func() {
			defer c.Close()
			tp := textproto.NewReader(bufio.NewReader(c))
			for {
				line, err := tp.ReadLine()
				if err != nil {
					return
				}
				if _, err := tp.ReadMIMEHeader(); err != nil {
					return
				}
				if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "/hold/") {
					n, _ := strconv.Atoi(strings.TrimPrefix(f[1], "/hold/"))
					mu.Lock()
					waiting++
					ch := release
					if waiting >= n {
						close(release)
						release = make(chan struct{})
						waiting = 0
					}
					mu.Unlock()
					<-ch
				}
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"); err != nil {
					return
				}
			}
		}()
	}
}

func startHelperUpstream(b *testing.B) int {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("helper upstream: %v", err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		b.Fatalf("helper upstream said %q", line)
	}
	return port
}

type footprint struct{ goroutines, heap, stack float64 }

// measure returns the per-socket cost of what open leaves idle: goroutines,
// live heap and goroutine stack, after two GCs on each side.
func measure(b *testing.B, n int, open func() (settled func() bool, closeAll func())) footprint {
	b.Helper()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	settled, closeAll := open()
	if !pollUntil(30*time.Second, settled) {
		b.Fatal("idle sockets did not settle")
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	g1 := runtime.NumGoroutine()
	closeAll()
	return footprint{
		goroutines: float64(g1-g0) / float64(n),
		heap:       float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(n),
		stack:      float64(int64(m1.StackInuse)-int64(m0.StackInuse)) / float64(n),
	}
}

func report(b *testing.B, f footprint) {
	b.ReportMetric(f.goroutines, "goroutines/idle-socket")
	b.ReportMetric(f.heap, "heap-B/idle-socket")
	b.ReportMetric(f.stack, "stack-B/idle-socket")
	b.ReportMetric(f.heap+f.stack, "B/idle-socket")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleSockets holds 1,000 idle pooled connections to the same
// upstream, once in an agentpool.Agent and once in a net/http.Transport, and
// reports what each idle connection costs the client.
func BenchmarkIdleSockets(b *testing.B) {
	const n = 1000
	port := startHelperUpstream(b)
	path := "/hold/" + strconv.Itoa(n)

	b.Run("agentpool", func(b *testing.B) {
		var f footprint
		for i := 0; i < b.N; i++ {
			f = measure(b, n, func() (func() bool, func()) {
				// No idle timeout and room for n free sockets, like the
				// Transport below.
				o := keepAliveOptions()
				o.MaxFreeSockets = n
				a, err := agentpool.New("bench", o, agentpool.Deps{})
				if err != nil {
					b.Fatal(err)
				}
				done := make(chan struct{}, n)
				for j := 0; j < n; j++ {
					a.Acquire(target(port), &benchExchange{path: path, done: done})
				}
				for j := 0; j < n; j++ {
					<-done
				}
				return func() bool {
						s := a.Snapshot()
						return len(s.Names) == 1 && len(s.Names[0].FreeSockets) == n
					}, func() {
						a.Destroy()
					}
			})
		}
		report(b, f)
	})

	b.Run("nethttp", func(b *testing.B) {
		var f footprint
		for i := 0; i < b.N; i++ {
			f = measure(b, n, func() (func() bool, func()) {
				tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, DisableCompression: true}
				client := &http.Client{Transport: tr}
				url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
				g0 := runtime.NumGoroutine()
				var wg sync.WaitGroup
				for j := 0; j < n; j++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, err := client.Get(url)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}()
				}
				wg.Wait()
				// Each idle persistConn keeps a readLoop and a writeLoop.
				return func() bool { return runtime.NumGoroutine()-g0 >= 2*n }, tr.CloseIdleConnections
			})
		}
		report(b, f)
	})
}

// benchExchange writes one GET and reads the fixed "ok" response.
type benchExchange struct {
	path string
	done chan struct{}
	s    *agentpool.Socket
}

func (x *benchExchange) OnSocket(s *agentpool.Socket, err error) {
	x.s = s
	if err != nil {
		panic(err)
	}
}

func (x *benchExchange) OnConnect(err error) {
	if err != nil {
		panic(err)
	}
	_, _ = io.WriteString(x.s.Conn(), "GET "+x.path+" HTTP/1.1\r\nHost: b\r\n\r\n")
}

func (x *benchExchange) ReadResponse(br *bufio.Reader) {
	_, _, _, err := readResponse(br)
	x.s.Release(err == nil, 0)
	x.s = nil
	x.done <- struct{}{}
}

func (x *benchExchange) OnTimeout() {}
