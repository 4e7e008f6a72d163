package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// squidConf is a forward proxy on loopback only: no cache, no access log,
// persistent connections both ways (squid's defaults), enough descriptors
// for slow_5k (two per request).
const squidConf = `http_port 127.0.0.1:%[2]d
acl localnet src 127.0.0.1/32
http_access allow localnet
http_access deny all
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log %[1]s/cache.log
pid_filename none
coredump_dir %[1]s
max_filedescriptors 20000
shutdown_lifetime 0 seconds
forwarded_for delete
via off
client_persistent_connections on
server_persistent_connections on
pconn_timeout 5 minutes
client_idle_pconn_timeout 5 minutes
read_timeout 5 minutes
request_timeout 1 minute
`

// startSquid starts squid in the foreground (-N: one process, no daemon)
// and returns its proxy address and process.
func startSquid(ctx context.Context, dir, bin string, logf io.Writer) (string, *child, error) {
	sdir := filepath.Join(dir, "squid")
	if err := os.MkdirAll(sdir, 0o777); err != nil {
		return "", nil, err
	}
	// Squid started as root drops to its own user; it must write its log.
	if err := os.Chmod(sdir, 0o777); err != nil {
		return "", nil, err
	}
	var lastErr error
	for range 3 { // the free port may be taken before squid binds it
		port, err := freePort()
		if err != nil {
			return "", nil, err
		}
		conf := filepath.Join(sdir, "squid.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, squidConf, sdir, port), 0o644); err != nil {
			return "", nil, err
		}
		cmd := exec.CommandContext(ctx, bin, "-N", "-f", conf)
		ch, err := kids.start("squid", cmd, logf)
		if err != nil {
			return "", nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if lastErr = waitTCP(ctx, addr, 20*time.Second); lastErr == nil && !ch.exited() {
			return addr, ch, nil
		}
		ch.stop(time.Second)
		log, _ := os.ReadFile(filepath.Join(sdir, "cache.log"))
		lastErr = fmt.Errorf("squid did not start: %v; %s %s", lastErr, ch.tail, lastLines(string(log), 5))
	}
	return "", nil, lastErr
}
