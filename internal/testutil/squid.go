package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SquidPath is where Debian's squid package installs the proxy;
// squidNCSAAuth is its Basic-auth helper for htpasswd files.
const (
	SquidPath     = "/usr/sbin/squid"
	squidNCSAAuth = "/usr/lib/squid/basic_ncsa_auth"
)

// SquidOptions configure StartSquid.
type SquidOptions struct {
	// BasicAuth maps user names to passwords. When non-empty, squid
	// answers every request without valid Basic credentials with 407
	// (Proxy-Authenticate: Basic realm=Realm), CONNECT included.
	BasicAuth map[string]string
	// Realm is the Basic realm; default DefaultSquidRealm.
	Realm string
}

// DefaultSquidRealm is the realm of StartSquid's Basic auth.
const DefaultSquidRealm = "httpgateway test proxy"

// Squid is a squid forward proxy a test started.
type Squid struct {
	// URL is the proxy URL, "http://127.0.0.1:<port>", without credentials.
	URL  string
	Port int
	// Dir holds squid.conf, the logs and the password file.
	Dir string
}

// AccessLog returns squid's access log so far (one line per transaction:
// "... TCP_MISS/200 ... GET http://127.0.0.1:1234/ ...", "... CONNECT
// 127.0.0.1:1234 ..."). Squid writes a line when a transaction ends, so
// poll for what you expect.
func (s *Squid) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "access.log"))
	return string(b)
}

// StartSquid starts a real squid (Debian's package) on a free loopback
// port for the test and returns its URL; see StartSquidProxy.
func StartSquid(t testing.TB, opts SquidOptions) (proxyURL string) {
	t.Helper()
	return StartSquidProxy(t, opts).URL
}

// StartSquidProxy starts squid in the foreground (squid -N) with a
// minimal configuration written for the test: it listens on 127.0.0.1
// only, caches nothing, accepts clients from loopback only, forwards only
// to loopback destinations (127.0.0.0/8 and ::1, any port, CONNECT
// included) and resolves names from /etc/hosts alone (its DNS server is
// 127.0.0.1). With opts.BasicAuth it requires Basic credentials, checked
// by squid's basic_ncsa_auth against an apr1 htpasswd file.
//
// It skips the test when squid is not installed (.ci/install-deps
// installs it), waits until the port accepts connections (bounded), and
// at cleanup stops squid (SIGTERM, then SIGKILL after a bound) and waits
// for it to exit.
func StartSquidProxy(t testing.TB, opts SquidOptions) *Squid {
	t.Helper()
	if _, err := os.Stat(SquidPath); err != nil {
		t.Skipf("squid is not installed (%s missing): install Debian's squid package (.ci/install-deps does) to run the proxy tests", SquidPath)
	}
	if len(opts.BasicAuth) > 0 {
		if _, err := os.Stat(squidNCSAAuth); err != nil {
			t.Skipf("squid's Basic auth helper %s is missing: install Debian's squid package", squidNCSAAuth)
		}
	}
	dir := squidDir(t)
	var lastErr error
	// A free port is found by binding :0 and closing it; another process
	// may take it before squid binds, so a failed start is retried.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startSquidOnce(t, dir, opts)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("squid did not start: %v", lastErr)
	return nil
}

// squidDir makes a directory squid can write to. Started as root, squid
// drops to the unprivileged user of its build (Debian: "proxy"), which
// cannot enter t.TempDir() (mode 0700 under a 0700 parent), so the
// directory is made under os.TempDir() and handed to that user.
func squidDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "squid-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("proxy")
		if err != nil {
			t.Skipf("running as root and squid's user 'proxy' does not exist: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startSquidOnce(t testing.TB, dir string, opts SquidOptions) (*Squid, error) {
	t.Helper()
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	conf, err := writeSquidConf(dir, port, opts)
	if err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "squid.out"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(SquidPath, "-N", "-f", conf)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("start %s: %w", SquidPath, err)
	}
	exited := make(chan struct{})
	go func() { // ends when squid exits
		_ = cmd.Wait()
		_ = out.Close()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("squid exited during start-up:\n%s", squidLogs(dir))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("squid did not accept on %s within 20s:\n%s", addr, squidLogs(dir))
		}
		// Polling the port with a bounded deadline, not sleeping to
		// synchronise: squid gives no other readiness signal.
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(stop)
	return &Squid{URL: "http://" + addr, Port: port, Dir: dir}, nil
}

func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func writeSquidConf(dir string, port int, opts SquidOptions) (string, error) {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# written by internal/testutil.StartSquid")
	line("http_port 127.0.0.1:%d", port)
	line("visible_hostname squid-test")
	line("pid_filename %s", filepath.Join(dir, "squid.pid"))
	line("access_log stdio:%s", filepath.Join(dir, "access.log"))
	line("cache_log %s", filepath.Join(dir, "cache.log"))
	line("cache_store_log none")
	line("coredump_dir %s", dir)
	line("cache deny all")
	line("cache_mem 0 MB")
	line("pinger_enable off")
	line("icp_port 0")
	line("htcp_port 0")
	line("dns_nameservers 127.0.0.1")
	line("shutdown_lifetime 0 seconds")
	line("acl localsrc src 127.0.0.1/32 ::1")
	line("acl loopback_dst dst 127.0.0.0/8 ::1")
	line("acl SSL_ports port 1-65535")
	line("acl CONNECT method CONNECT")
	line("http_access deny !localsrc")
	line("http_access deny !loopback_dst")
	line("http_access deny CONNECT !SSL_ports")
	if len(opts.BasicAuth) > 0 {
		realm := opts.Realm
		if realm == "" {
			realm = DefaultSquidRealm
		}
		pw := filepath.Join(dir, "passwd")
		if err := writeHtpasswd(pw, opts.BasicAuth); err != nil {
			return "", err
		}
		line("auth_param basic program %s %s", squidNCSAAuth, pw)
		line("auth_param basic children 2 startup=1 idle=1")
		line("auth_param basic realm %s", realm)
		line("acl authed proxy_auth REQUIRED")
		line("http_access deny !authed")
	}
	line("http_access allow localsrc")
	line("http_access deny all")
	conf := filepath.Join(dir, "squid.conf")
	return conf, os.WriteFile(conf, []byte(b.String()), 0o644)
}

// writeHtpasswd writes user:apr1-hash lines, readable by squid's user.
func writeHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		if u == "" || strings.ContainsAny(u, ":\r\n") {
			return errors.New("squid basic auth: bad user name " + strconv.Quote(u))
		}
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		fmt.Fprintf(&b, "%s:%s\n", u, apr1(users[u], apr1Salt()))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func squidLogs(dir string) string {
	var b strings.Builder
	for _, f := range []string{"squid.out", "cache.log"} {
		data, _ := os.ReadFile(filepath.Join(dir, f))
		s := string(data)
		if len(s) > 4000 {
			s = s[len(s)-4000:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", f, s)
	}
	return b.String()
}
