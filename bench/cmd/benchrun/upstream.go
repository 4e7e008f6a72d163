package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The upstream serves the scenarios' paths:
//
//	/small   13 bytes ("Hello, world!")
//	/1m      1 MiB
//	/100m    100 MiB
//	/slow    13 bytes after ?ms= milliseconds (default 1000)
//	/upload  reads and discards the request body, answers its length
//
// The static paths come from nginx when it is installed (the realistic
// upstream), else from a Go server. /slow and /upload always come from the
// Go server (nginx cannot sleep or sink a body without extra modules). The
// Go server is a separate process (this binary's "upstream" subcommand) so
// its CPU is never charged to the client arms.

const smallBody = "Hello, world!"

// bodySizes are the generated files.
var bodySizes = map[string]int64{"small": int64(len(smallBody)), "1m": 1 << 20, "100m": 100 << 20}

// upstreams are the running upstream servers.
type upstreams struct {
	static  string // base URL of /small, /1m, /100m
	dynamic string // base URL of /slow and /upload (the Go server)
	kind    string // "nginx" or "go"
	procs   []proc
	dynPort int
}

// writeBodies writes the static files into dir/www.
func writeBodies(dir string) (string, error) {
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return "", err
	}
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = 'a' + byte(i%26)
	}
	for name, size := range bodySizes {
		f, err := os.Create(filepath.Join(www, name))
		if err != nil {
			return "", err
		}
		if name == "small" {
			_, err = io.WriteString(f, smallBody)
		} else {
			for left := size; left > 0 && err == nil; left -= int64(len(block)) {
				_, err = f.Write(block[:min(left, int64(len(block)))])
			}
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", err
		}
	}
	return www, nil
}

// startUpstreams starts the Go upstream and, when present, nginx.
func startUpstreams(ctx context.Context, dir, nginxBin string, logf io.Writer) (*upstreams, []string, error) {
	var notes []string
	www, err := writeBodies(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("writing bodies: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, self, "upstream", "-listen", "127.0.0.1:0", "-root", www)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	goUp, err := kids.start("go-upstream", cmd, logf)
	if err != nil {
		return nil, nil, err
	}
	addr, err := waitLine(out, logf, 15*time.Second, func(l string) (string, bool) {
		return strings.CutPrefix(l, "listening ")
	})
	if err != nil {
		return nil, nil, fmt.Errorf("go upstream: %w (%s)", err, goUp.tail)
	}
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	u := &upstreams{static: "http://" + addr, dynamic: "http://" + addr, kind: "go", dynPort: port,
		procs: []proc{{role: "upstream", pid: goUp.pid()}}}
	if nginxBin == "" {
		notes = append(notes, "nginx not installed: the Go upstream serves every path")
		return u, notes, nil
	}
	base, pid, err := startNginx(ctx, dir, www, nginxBin, logf)
	if err != nil {
		notes = append(notes, fmt.Sprintf("nginx failed (%v): the Go upstream serves every path", err))
		return u, notes, nil
	}
	u.static, u.kind = base, "nginx"
	u.procs = append(u.procs, proc{role: "nginx", pid: pid})
	return u, notes, nil
}

// nginxConf is one process (master_process off) with one event loop, so its
// CPU is one pid's, access logs off, files by sendfile.
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    default_type application/octet-stream;
    client_body_temp_path %[1]s/nginx-body;
    proxy_temp_path %[1]s/nginx-proxy;
    fastcgi_temp_path %[1]s/nginx-fastcgi;
    uwsgi_temp_path %[1]s/nginx-uwsgi;
    scgi_temp_path %[1]s/nginx-scgi;
    server {
        listen 127.0.0.1:%[2]d backlog=16384;
        root %[3]s;
        location / { }
    }
}
`

func startNginx(ctx context.Context, dir, www, bin string, logf io.Writer) (string, int, error) {
	var lastErr error
	for range 3 { // the free port may be taken before nginx binds it
		port, err := freePort()
		if err != nil {
			return "", 0, err
		}
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, port, www), 0o644); err != nil {
			return "", 0, err
		}
		cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "nginx-error.log"))
		ch, err := kids.start("nginx", cmd, logf)
		if err != nil {
			return "", 0, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if lastErr = waitTCP(ctx, addr, 10*time.Second); lastErr == nil && !ch.exited() {
			return "http://" + addr, ch.pid(), nil
		}
		ch.stop(time.Second)
		if lastErr == nil {
			lastErr = fmt.Errorf("nginx exited: %s", ch.tail)
		}
	}
	return "", 0, lastErr
}

// runUpstream is the "upstream" subcommand: the Go upstream server. It
// prints "listening ADDR" on stdout once it accepts connections and serves
// until killed.
func runUpstream(args []string) int {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	root := fs.String("root", "", "folder with the files small, 1m and 100m")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		return 1
	}
	mux := http.NewServeMux()
	for name := range bodySizes {
		path := filepath.Join(*root, name)
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, r *http.Request) {
			http.ServeFile(w, r, path)
		})
	}
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil {
			ms = 1000
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(smallBody)))
		_, _ = io.WriteString(w, smallBody)
	})
	sink := func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, strconv.FormatInt(n, 10))
	}
	mux.HandleFunc("PUT /upload", sink)
	mux.HandleFunc("POST /upload", sink)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 10 * time.Minute}
	fmt.Printf("listening %s\n", l.Addr())
	if err := srv.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		return 1
	}
	return 0
}
