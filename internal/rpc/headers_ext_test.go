package rpc_test

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestHeaderEdits edits headers through the RPCs before the head went out,
// checks what went on the wire, and that edits after FlushHeaders are
// refused with FAILED_PRECONDITION / ERR_HTTP_HEADERS_SENT. Get shows the
// properties along the way.
func TestHeaderEdits(t *testing.T) {
	testutil.CheckLeaks(t)
	heads := make(chan string, 1)
	up := testutil.NewUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, _, err := testutil.ReadRequest(br)
		if err != nil {
			return
		}
		heads <- head
		_, _ = c.Write([]byte(okHello))
		_, _ = br.ReadByte() // until the peer closes
	})
	// The finished handle lingers long enough for the calls after 'close'.
	g := startGateway(t, rpc.Options{FinishedLinger: 300 * time.Millisecond})
	ctx := testCtx(t)
	cr := request(t, g, &pb.RequestOptions{
		Url:     "http://127.0.0.1:" + strconv.Itoa(up.Port) + "/p?q=1",
		Method:  "post",
		Headers: []*pb.Header{{Name: "X-First", Value: "1"}, {Name: "x-multi", Value: "a"}},
	})
	id := cr.GetRequestId()
	if cr.GetMethod() != "POST" || cr.GetPath() != "/p?q=1" || cr.GetHost() != "127.0.0.1" || cr.GetProtocol() != "http:" || cr.GetAgent() != "global" {
		t.Fatalf("properties: %v", cr)
	}
	if _, err := g.req.SetHeader(ctx, &pb.SetHeaderRequest{RequestId: id, Name: "X-Set", Values: []string{"v1", "v2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.req.AppendHeader(ctx, &pb.AppendHeaderRequest{RequestId: id, Name: "X-Multi", Values: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.req.RemoveHeader(ctx, &pb.RemoveHeaderRequest{RequestId: id, Name: "x-first"}); err != nil {
		t.Fatal(err)
	}
	_, err := g.req.SetHeader(ctx, &pb.SetHeaderRequest{RequestId: id, Name: "Bad Name", Values: []string{"x"}})
	wantStatus(t, err, codes.InvalidArgument, "ERR_INVALID_HTTP_TOKEN")
	_, err = g.req.SetHeader(ctx, &pb.SetHeaderRequest{RequestId: id, Name: "X-Bad", Values: []string{"a\r\nb"}})
	wantStatus(t, err, codes.InvalidArgument, "ERR_INVALID_CHAR")

	gh, err := g.req.GetHeader(ctx, &pb.GetHeaderRequest{RequestId: id, Name: "x-set"})
	if err != nil || !gh.GetPresent() || gh.GetRawName() != "X-Set" || strings.Join(gh.GetValues(), ",") != "v1,v2" {
		t.Fatalf("GetHeader: %v %v", gh, err)
	}
	hh, err := g.req.HasHeader(ctx, &pb.HasHeaderRequest{RequestId: id, Name: "X-FIRST"})
	if err != nil || hh.GetPresent() {
		t.Fatalf("HasHeader after remove: %v %v", hh, err)
	}
	names, err := g.req.GetHeaderNames(ctx, &pb.GetHeaderNamesRequest{RequestId: id})
	if err != nil || strings.Join(names.GetNames(), ",") != "x-multi,host,x-set" {
		t.Fatalf("GetHeaderNames: %v %v", names, err)
	}
	raw, err := g.req.GetRawHeaderNames(ctx, &pb.GetRawHeaderNamesRequest{RequestId: id})
	if err != nil || strings.Join(raw.GetNames(), ",") != "x-multi,Host,X-Set" {
		t.Fatalf("GetRawHeaderNames: %v %v", raw, err)
	}
	all, err := g.req.GetHeaders(ctx, &pb.GetHeadersRequest{RequestId: id})
	if err != nil || len(all.GetHeaders()) != 3 || all.GetHeaders()[0].GetJoined() != "a, b" {
		t.Fatalf("GetHeaders: %v %v", all, err)
	}

	s := subscribe(t, g, id, 0)
	if _, err := g.req.FlushHeaders(ctx, &pb.FlushHeadersRequest{RequestId: id}); err != nil {
		t.Fatal(err)
	}
	// The head went out: every edit is refused, the request goes on.
	_, err = g.req.SetHeader(ctx, &pb.SetHeaderRequest{RequestId: id, Name: "X-Late", Values: []string{"1"}})
	wantStatus(t, err, codes.FailedPrecondition, "ERR_HTTP_HEADERS_SENT")
	_, err = g.req.AppendHeader(ctx, &pb.AppendHeaderRequest{RequestId: id, Name: "X-Late", Values: []string{"1"}})
	wantStatus(t, err, codes.FailedPrecondition, "ERR_HTTP_HEADERS_SENT")
	_, err = g.req.RemoveHeader(ctx, &pb.RemoveHeaderRequest{RequestId: id, Name: "X-Set"})
	wantStatus(t, err, codes.FailedPrecondition, "ERR_HTTP_HEADERS_SENT")

	got, err := g.req.Get(ctx, &pb.GetRequest{RequestId: id})
	if err != nil || !got.GetRequest().GetHeadersSent() || !got.GetRequest().GetChunkedEncoding() || got.GetRequest().GetFinished() {
		t.Fatalf("Get after flush: %v %v", got, err)
	}
	end(t, g, id, []byte("body"))
	_, err = g.req.End(ctx, &pb.EndRequest{RequestId: id, Data: []byte("more")})
	wantStatus(t, err, codes.FailedPrecondition, "ERR_STREAM_WRITE_AFTER_END")

	head := <-heads
	want := "POST /p?q=1 HTTP/1.1\r\nx-multi: a\r\nx-multi: b\r\nHost: 127.0.0.1:" + strconv.Itoa(up.Port) +
		"\r\nX-Set: v1\r\nX-Set: v2\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
	if head != want {
		t.Fatalf("head on the wire\n got: %q\nwant: %q", head, want)
	}
	s.until("req:response")
	got, err = g.req.Get(ctx, &pb.GetRequest{RequestId: id})
	if err != nil {
		t.Fatal(err)
	}
	p := got.GetRequest()
	if !p.GetWritableEnded() || !p.GetWritableFinished() || p.GetResponse().GetStatusCode() != 200 || p.GetSocket().GetRemotePort() != int32(up.Port) ||
		p.GetUploadProgress().GetCurrent() != 4 || p.GetLastSeq() < 3 {
		t.Fatalf("Get after response: %v", p)
	}
	up2, err := g.req.GetUploadProgress(ctx, &pb.GetUploadProgressRequest{RequestId: id})
	if err != nil || !up2.GetProgress().GetStarted() || up2.GetProgress().GetCurrent() != 4 {
		t.Fatalf("GetUploadProgress: %v %v", up2, err)
	}
	s.rest()

	// The handle is freed once every event was delivered and the linger
	// passed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = g.req.Get(ctx, &pb.GetRequest{RequestId: id})
		if status.Code(err) == codes.NotFound || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a bound
	}
	wantStatus(t, err, codes.NotFound, "ERR_GATEWAY_REQUEST_NOT_FOUND")
}

// TestRequestRefusals covers refused creations and unknown handles.
func TestRequestRefusals(t *testing.T) {
	testutil.CheckLeaks(t)
	g := startGateway(t, rpc.Options{})
	ctx := testCtx(t)
	tests := []struct {
		name   string
		o      *pb.RequestOptions
		code   codes.Code
		reason string
	}{
		{"bad method", &pb.RequestOptions{Url: "http://127.0.0.1:1/", Method: "BAD METHOD"}, codes.InvalidArgument, "ERR_INVALID_HTTP_TOKEN"},
		{"bad protocol", &pb.RequestOptions{Url: "ftp://127.0.0.1:1/"}, codes.InvalidArgument, "ERR_INVALID_PROTOCOL"},
		{"unescaped path", &pb.RequestOptions{Host: "127.0.0.1", Path: "/a b"}, codes.InvalidArgument, "ERR_UNESCAPED_CHARACTERS"},
		{"unknown agent", &pb.RequestOptions{Url: "http://127.0.0.1:1/", Agent: "nope"}, codes.NotFound, "ERR_GATEWAY_AGENT_NOT_FOUND"},
		{"negative max redirects", &pb.RequestOptions{Url: "http://127.0.0.1:1/", Redirect: pb.RedirectMode_REDIRECT_MODE_FOLLOW, MaxRedirects: -1}, codes.InvalidArgument, "ERR_GATEWAY_INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := g.req.Request(ctx, &pb.RequestRequest{Options: tt.o})
			wantStatus(t, err, tt.code, tt.reason)
		})
	}
	_, err := g.req.Get(ctx, &pb.GetRequest{RequestId: "r_doesnotexist"})
	wantStatus(t, err, codes.NotFound, "ERR_GATEWAY_REQUEST_NOT_FOUND")
	_, err = g.req.FollowRedirect(ctx, &pb.FollowRedirectRequest{RequestId: "r_x"})
	wantStatus(t, err, codes.NotFound, "ERR_GATEWAY_REQUEST_NOT_FOUND")
	_, err = g.req.Login(ctx, &pb.LoginRequest{RequestId: "r_x"})
	wantStatus(t, err, codes.NotFound, "ERR_GATEWAY_REQUEST_NOT_FOUND")
}
