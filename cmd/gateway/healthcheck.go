package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/httpgateway/httpgateway/internal/config"
)

// runHealthcheck asks a gateway's grpc.health.v1 for a service's status:
// exit 0 when SERVING, 1 otherwise. It is the container HEALTHCHECK, so it
// needs no arguments: without --addr it dials the port the same environment
// (and config file) makes `gateway serve` listen on, on loopback. Against a
// gateway with server TLS it needs the connection flags (clientConn, also
// GATEWAY_CLIENT_* variables); health checks need no token, but a gateway
// that asks for client certificates needs one presented.
func runHealthcheck(ctx context.Context, io *stdio, args []string) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.stderr)
	addr := fs.String("addr", "", "gateway `host:port` (default: loopback and the port of GATEWAY_LISTEN / the config file, else 127.0.0.1:50051)")
	service := fs.String("service", "", "`name` of the service to check (default: the server as a whole)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this `duration`")
	var conn clientConn
	conn.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(io.stderr, "healthcheck: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if err := conn.applyEnv(fs, io.lookupEnv); err != nil {
		fmt.Fprintf(io.stderr, "healthcheck: %v\n", err)
		return exitUsage
	}
	target := *addr
	if target == "" {
		var err error
		if target, err = defaultHealthAddr(io.lookupEnv); err != nil {
			fmt.Fprintf(io.stderr, "healthcheck: %v\n", err)
			return exitFailure
		}
	}

	dopts, err := conn.dialOptions(target)
	if err != nil {
		fmt.Fprintf(io.stderr, "healthcheck: %v\n", err)
		return exitUsage
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st, err := checkHealth(ctx, target, *service, dopts)
	if err != nil {
		fmt.Fprintf(io.stderr, "healthcheck: %s: %v\n", target, err)
		return exitFailure
	}
	if st != healthpb.HealthCheckResponse_SERVING {
		fmt.Fprintf(io.stderr, "healthcheck: %s: service %q is %s\n", target, *service, st)
		return exitFailure
	}
	fmt.Fprintln(io.stdout, st)
	return exitOK
}

func checkHealth(ctx context.Context, target, service string, dopts []grpc.DialOption) (healthpb.HealthCheckResponse_ServingStatus, error) {
	cc, err := grpc.NewClient(target, dopts...)
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return 0, err
	}
	return resp.GetStatus(), nil
}

// defaultHealthAddr derives the address to check from the serving config:
// its port, on loopback when the server listens on all interfaces.
func defaultHealthAddr(lookupEnv func(string) (string, bool)) (string, error) {
	fs := flag.NewFlagSet("healthcheck-config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := config.Load(fs, nil, lookupEnv)
	if err != nil {
		return "", fmt.Errorf("reading the serving config (pass --addr to skip it): %w", err)
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	if port == "0" {
		return "", fmt.Errorf("listen %q has no fixed port; pass --addr", cfg.Listen)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if err == nil && ip.Is6() {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}
