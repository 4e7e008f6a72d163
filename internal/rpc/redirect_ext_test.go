package rpc_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

func redirectUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/from":
			http.Redirect(w, r, "/to", http.StatusFound)
		case "/to":
			_, _ = io.WriteString(w, "arrived")
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchRedirectModes(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := redirectUpstream(t)
	gw := startGateway(t, rpc.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("follow", func(t *testing.T) {
		res, err := gw.req.Fetch(ctx, &pb.FetchRequest{Url: srv.URL + "/from",
			Options: &pb.RequestOptions{Redirect: pb.RedirectMode_REDIRECT_MODE_FOLLOW}})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetStatusCode() != 200 || string(res.GetBody()) != "arrived" || len(res.GetRedirects()) != 1 {
			t.Fatalf("status %d body %q hops %v", res.GetStatusCode(), res.GetBody(), res.GetRedirects())
		}
		if hop := res.GetRedirects()[0]; hop.GetStatusCode() != 302 || hop.GetRedirectUrl() != srv.URL+"/to" {
			t.Fatalf("hop %v", hop)
		}
	})
	t.Run("manual returns the 302", func(t *testing.T) {
		res, err := gw.req.Fetch(ctx, &pb.FetchRequest{Url: srv.URL + "/from"})
		if err != nil || res.GetStatusCode() != 302 {
			t.Fatalf("status %d err %v", res.GetStatusCode(), err)
		}
	})
	t.Run("error mode", func(t *testing.T) {
		_, err := gw.req.Fetch(ctx, &pb.FetchRequest{Url: srv.URL + "/from",
			Options: &pb.RequestOptions{Redirect: pb.RedirectMode_REDIRECT_MODE_ERROR}})
		if status.Code(err) != codes.FailedPrecondition || reasonOf(err) != "ERR_GATEWAY_REDIRECT_REFUSED" {
			t.Fatalf("got %v (reason %q)", err, reasonOf(err))
		}
	})
}

// TestDeferredRedirectRPC drives Electron's manual mode over the handle
// RPCs: a redirect event that waits, then FollowRedirect.
func TestDeferredRedirectRPC(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := redirectUpstream(t)
	gw := startGateway(t, rpc.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	created, err := gw.req.Request(ctx, &pb.RequestRequest{Options: &pb.RequestOptions{Url: srv.URL + "/from",
		Redirect: pb.RedirectMode_REDIRECT_MODE_DEFERRED, RedirectDecisionTimeout: durationpb.New(time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetRequest().GetRequestId()
	if _, err := gw.req.FollowRedirect(ctx, &pb.FollowRedirectRequest{RequestId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("FollowRedirect before any redirect: %v", err)
	}
	if _, err := gw.req.End(ctx, &pb.EndRequest{RequestId: id}); err != nil {
		t.Fatal(err)
	}
	stream, err := gw.req.Events(ctx, &pb.EventsRequest{RequestId: id})
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	var sawRedirect bool
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch k := msg.GetEvent().GetKind().(type) {
		case *pb.Event_Redirect:
			sawRedirect = true
			if !k.Redirect.GetAwaitingDecision() || k.Redirect.GetStatusCode() != 302 || k.Redirect.GetRedirectUrl() != srv.URL+"/to" {
				t.Fatalf("redirect event %v", k.Redirect)
			}
			if _, err := gw.req.FollowRedirect(ctx, &pb.FollowRedirectRequest{RequestId: id}); err != nil {
				t.Fatal(err)
			}
		case *pb.Event_Data:
			body = append(body, k.Data.GetChunk()...)
		case *pb.Event_Error:
			t.Fatalf("error event %v", k.Error)
		}
	}
	if !sawRedirect || string(body) != "arrived" {
		t.Fatalf("redirect seen %v, body %q", sawRedirect, body)
	}
}
