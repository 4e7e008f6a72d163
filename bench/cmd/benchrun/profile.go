package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profiled is an arm whose process serves net/http/pprof (the gateway's
// admin listener).
type profiled interface{ AdminAddr() string }

// startProfile, with -profile, asks the gateway of a gateway arm for a CPU
// profile and an allocation profile (the allocations made during the
// round) as long as the round, and writes them to
// <dir>/<scenario>_<arm>_<round>_{cpu,allocs}.pprof; the returned stop
// waits for them, then saves the goroutine dump (…_goroutines.txt). Other arms, or no -profile, get a no-op.
func startProfile(ctx context.Context, e *env, sc scenario, a arm, round int) (stop func()) {
	p, ok := a.(profiled)
	if e.profileDir == "" || !ok || p.AdminAddr() == "" {
		return func() {}
	}
	secs := int(math.Ceil(e.duration.Seconds()))
	var wg sync.WaitGroup
	for _, kind := range []string{"cpu", "allocs"} {
		path := filepath.Join(e.profileDir, fmt.Sprintf("%s_%s_%d_%s.pprof", sc.name, a.Name(), round, kind))
		wg.Go(func() {
			if err := fetchProfile(ctx, p.AdminAddr(), kind, secs, path); err != nil {
				fmt.Fprintf(e.log, "  profile %s: %v\n", path, err)
			}
		})
	}
	return func() {
		wg.Wait()
		// The goroutines as the round left them (for idle_1k: what each
		// idle socket holds).
		path := filepath.Join(e.profileDir, fmt.Sprintf("%s_%s_%d_goroutines.txt", sc.name, a.Name(), round))
		if err := fetchProfile(ctx, p.AdminAddr(), "goroutines", 0, path); err != nil {
			fmt.Fprintf(e.log, "  profile %s: %v\n", path, err)
		}
	}
}

// fetchProfile gets kind (cpu: /debug/pprof/profile; allocs: the delta of
// /debug/pprof/allocs over the seconds; goroutines: the goroutine dump
// now) from the pprof endpoint at adminAddr.
func fetchProfile(ctx context.Context, adminAddr, kind string, secs int, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+10)*time.Second)
	defer cancel()
	var url string
	switch kind {
	case "cpu":
		url = fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", adminAddr, secs)
	case "allocs":
		url = fmt.Sprintf("http://%s/debug/pprof/allocs?seconds=%d", adminAddr, secs)
	default: // goroutines, grouped by stack
		url = fmt.Sprintf("http://%s/debug/pprof/goroutine?debug=1", adminAddr)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
