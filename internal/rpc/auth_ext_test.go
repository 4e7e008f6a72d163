package rpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/auth"
	"github.com/httpgateway/httpgateway/internal/limits"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

const (
	tokenA = "token-a-0123456789abcdef"
	tokenB = "token-b-0123456789abcdef"
)

// startAuthGateway is startGateway behind the auth interceptors, with
// callers "a" (tokenA) and "b" (tokenB).
func startAuthGateway(t *testing.T, o rpc.Options) *gateway {
	t.Helper()
	tokens, err := auth.NewTokens(auth.TokensOptions{Inline: []string{tokenA + " a", tokenB + " b"}})
	if err != nil {
		t.Fatal(err)
	}
	authn := auth.New(auth.Options{Tokens: tokens})
	return startGateway(t, o, grpc.ChainUnaryInterceptor(authn.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(authn.StreamServerInterceptor()))
}

func as(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// finish destroys a request and reads its events to the end, so its handle
// is freed.
func finish(t *testing.T, g *gateway, ctx context.Context, id string) {
	t.Helper()
	if _, err := g.req.Destroy(ctx, &pb.DestroyRequest{RequestId: id}); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	ev, err := g.req.Events(ctx, &pb.EventsRequest{RequestId: id})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := ev.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("Events: %v", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.svc.LiveRequests() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling the reaper, bounded
	}
}

func TestCallerIsolation(t *testing.T) {
	testutil.CheckLeaks(t)
	g := startAuthGateway(t, rpc.Options{})
	ctx := testCtx(t)
	a, b := as(ctx, tokenA), as(ctx, tokenB)
	url := "http://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/"

	if _, err := g.agents.CreateAgent(a, &pb.CreateAgentRequest{Name: "pool"}); err != nil {
		t.Fatal(err)
	}
	r, err := g.req.Request(a, &pb.RequestRequest{Options: &pb.RequestOptions{Url: url, Agent: "pool"}})
	if err != nil {
		t.Fatal(err)
	}
	id := r.GetRequest().GetRequestId()

	// Caller b sees a's request and agent exactly as ids nobody uses.
	_, unknownErr := g.req.Get(b, &pb.GetRequest{RequestId: "r_unknown"})
	for name, call := range map[string]func(string) error{
		"Get": func(id string) error { _, err := g.req.Get(b, &pb.GetRequest{RequestId: id}); return err },
		"SetHeader": func(id string) error {
			_, err := g.req.SetHeader(b, &pb.SetHeaderRequest{RequestId: id, Name: "x", Values: []string{"y"}})
			return err
		},
		"Destroy": func(id string) error { _, err := g.req.Destroy(b, &pb.DestroyRequest{RequestId: id}); return err },
		"Events": func(id string) error {
			s, err := g.req.Events(b, &pb.EventsRequest{RequestId: id})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
		"Write": func(id string) error {
			s, err := g.req.Write(b)
			if err != nil {
				return err
			}
			if err := s.Send(&pb.WriteRequest{RequestId: id, Chunk: []byte("x")}); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			_, err = s.CloseAndRecv()
			return err
		},
		"Tunnel": func(id string) error {
			s, err := g.req.Tunnel(b)
			if err != nil {
				return err
			}
			if err := s.Send(&pb.TunnelRequest{Frame: &pb.TunnelRequest_RequestId{RequestId: id}}); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			_, err = s.Recv()
			return err
		},
	} {
		err := call(id)
		if status.Code(err) != codes.NotFound || reasonOf(err) != "ERR_GATEWAY_REQUEST_NOT_FOUND" {
			t.Errorf("%s of a's request as b: %v; want NOT_FOUND", name, err)
		}
		if name == "Get" && strings.ReplaceAll(status.Convert(err).Message(), id, "ID") != strings.ReplaceAll(status.Convert(unknownErr).Message(), "r_unknown", "ID") {
			t.Errorf("Get message %q differs in form from an unknown id's %q", status.Convert(err).Message(), status.Convert(unknownErr).Message())
		}
	}
	if _, err := g.agents.GetAgent(b, &pb.GetAgentRequest{Name: "pool"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetAgent of a's agent as b: %v; want NOT_FOUND", err)
	}
	if _, err := g.agents.DestroyAgent(b, &pb.DestroyAgentRequest{Name: "pool"}); status.Code(err) != codes.NotFound {
		t.Errorf("DestroyAgent of a's agent as b: %v; want NOT_FOUND", err)
	}
	if _, err := g.req.Request(b, &pb.RequestRequest{Options: &pb.RequestOptions{Url: url, Agent: "pool"}}); status.Code(err) != codes.NotFound {
		t.Errorf("Request through a's agent as b: %v; want NOT_FOUND", err)
	}
	list, err := g.agents.ListAgents(b, &pb.ListAgentsRequest{})
	if err != nil || len(list.GetAgents()) != 1 || list.GetAgents()[0].GetName() != "global" {
		t.Errorf("ListAgents as b: %v, %v; want only global", list, err)
	}
	// b may have its own "pool": names are per caller.
	if _, err := g.agents.CreateAgent(b, &pb.CreateAgentRequest{Name: "pool"}); err != nil {
		t.Errorf("CreateAgent pool as b: %v", err)
	}
	list, _ = g.agents.ListAgents(a, &pb.ListAgentsRequest{})
	if len(list.GetAgents()) != 2 {
		t.Errorf("ListAgents as a: %v; want global and a's pool", list)
	}
	// a still drives its own request.
	if _, err := g.req.Get(a, &pb.GetRequest{RequestId: id}); err != nil {
		t.Errorf("Get as a: %v", err)
	}
	finish(t, g, a, id)
}

func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

func TestCallerLimits(t *testing.T) {
	testutil.CheckLeaks(t)
	url := "http://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/"

	t.Run("handles", func(t *testing.T) {
		g := startAuthGateway(t, rpc.Options{Limits: limits.New(limits.Options{MaxHandles: 1})})
		ctx := testCtx(t)
		a, b := as(ctx, tokenA), as(ctx, tokenB)
		r, err := g.req.Request(a, &pb.RequestRequest{Options: &pb.RequestOptions{Url: url}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = g.req.Request(a, &pb.RequestRequest{Options: &pb.RequestOptions{Url: url}})
		if status.Code(err) != codes.ResourceExhausted || reasonOf(err) != limits.CodeTooManyLive || retryDelay(err) <= 0 {
			t.Errorf("second handle of a: %v; want RESOURCE_EXHAUSTED %s with RetryInfo", err, limits.CodeTooManyLive)
		}
		// Another caller is not affected.
		rb, err := g.req.Request(b, &pb.RequestRequest{Options: &pb.RequestOptions{Url: url}})
		if err != nil {
			t.Fatalf("b's handle: %v", err)
		}
		finish(t, g, a, r.GetRequest().GetRequestId())
		finish(t, g, b, rb.GetRequest().GetRequestId())
		// The slot came back with the handle.
		r, err = g.req.Request(a, &pb.RequestRequest{Options: &pb.RequestOptions{Url: url}})
		if err != nil {
			t.Fatalf("a's handle after the first was freed: %v", err)
		}
		finish(t, g, a, r.GetRequest().GetRequestId())
	})

	t.Run("a finished handle gives its slot back while it lingers", func(t *testing.T) {
		// The linger outlasts the three exchanges, and the reaper frees
		// the handles before the end-of-test check.
		g := startAuthGateway(t, rpc.Options{Limits: limits.New(limits.Options{MaxHandles: 1}), FinishedLinger: 2 * time.Second})
		a := as(testCtx(t), tokenA)
		for i := 0; i < 3; i++ {
			stream, err := g.req.Exchange(a)
			if err != nil {
				t.Fatal(err)
			}
			// The request to a closed port may fail and the stream end
			// before the second message is sent: Send then says io.EOF and
			// Recv has the events.
			if err := stream.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Url: url}}}); err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if err := stream.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}}); err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			_ = stream.CloseSend()
			for {
				if _, err := stream.Recv(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
			}
		}
		// All three handles are still lingering: each exchange was admitted
		// while the earlier ones were alive, which a slot held until free
		// would have refused.
		if n := g.svc.LiveRequests(); n != 3 {
			t.Fatalf("%d handles alive after three exchanges, want 3 lingering", n)
		}
	})

	t.Run("concurrent requests", func(t *testing.T) {
		g := startAuthGateway(t, rpc.Options{Limits: limits.New(limits.Options{MaxRequests: 1})})
		ctx := testCtx(t)
		a := as(ctx, tokenA)
		r, err := g.req.Request(a, &pb.RequestRequest{Options: &pb.RequestOptions{Url: url}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = g.req.Fetch(a, &pb.FetchRequest{Url: url})
		if status.Code(err) != codes.ResourceExhausted || reasonOf(err) != limits.CodeTooManyOpen || retryDelay(err) <= 0 {
			t.Errorf("Fetch while a's handle is alive: %v; want RESOURCE_EXHAUSTED %s with RetryInfo", err, limits.CodeTooManyOpen)
		}
		finish(t, g, a, r.GetRequest().GetRequestId())
		// Fetch's slot is given back when its RPC ends: two in a row pass.
		for range 2 {
			if _, err := g.req.Fetch(a, &pb.FetchRequest{Url: url}); status.Code(err) != codes.Unavailable {
				t.Errorf("Fetch to a closed port: %v; want UNAVAILABLE (ECONNREFUSED)", err)
			}
		}
	})

	t.Run("rate", func(t *testing.T) {
		g := startAuthGateway(t, rpc.Options{Limits: limits.New(limits.Options{Rate: 0.001})})
		ctx := testCtx(t)
		a, b := as(ctx, tokenA), as(ctx, tokenB)
		if _, err := g.req.Fetch(a, &pb.FetchRequest{Url: url}); status.Code(err) != codes.Unavailable {
			t.Fatalf("first Fetch: %v", err)
		}
		_, err := g.req.Fetch(a, &pb.FetchRequest{Url: url})
		if status.Code(err) != codes.ResourceExhausted || reasonOf(err) != limits.CodeRateLimited || retryDelay(err) <= time.Second {
			t.Errorf("second Fetch: %v; want RESOURCE_EXHAUSTED %s with RetryInfo", err, limits.CodeRateLimited)
		}
		if _, err := g.req.Fetch(b, &pb.FetchRequest{Url: url}); status.Code(err) != codes.Unavailable {
			t.Errorf("b's Fetch: %v; want its own budget", err)
		}
	})

	t.Run("duration", func(t *testing.T) {
		// A listener that accepts and never answers: only MaxRequestDuration ends the request.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan net.Conn, 1)
		go func() { // ends when ln closes
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		t.Cleanup(func() {
			ln.Close()
			select {
			case c := <-accepted:
				c.Close()
			default:
			}
		})
		g := startAuthGateway(t, rpc.Options{MaxRequestDuration: 100 * time.Millisecond})
		_, err = g.req.Fetch(as(testCtx(t), tokenA), &pb.FetchRequest{Url: "http://" + ln.Addr().String() + "/"})
		if reasonOf(err) != "ETIMEDOUT" {
			t.Errorf("Fetch past max-request-duration: %v; want ETIMEDOUT", err)
		}
	})
}
