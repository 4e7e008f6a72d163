package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// echoHandler answers every request: the method and body echoed, a
// duplicated header, and for /chunked a chunked body with trailers.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Add("X-Dup", "a")
	w.Header().Add("X-Dup", "b")
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-In", r.Header.Get("X-In"))
	switch r.URL.Path {
	case "/chunked":
		w.Header().Set("Trailer", "X-Sum")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("part1-"))
		w.(http.Flusher).Flush()
		_, _ = w.Write(b)
		w.Header().Set("X-Sum", strconv.Itoa(len(b)))
	case "/missing":
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "nope")
	default:
		w.Header().Set("Content-Length", strconv.Itoa(len(b)+5))
		_, _ = w.Write([]byte("echo:"))
		_, _ = w.Write(b)
	}
}

type fetchCase struct {
	name, method, path string
	body               []byte
	wantStatus         int32
	wantBody           string
	wantTrailer        string
}

var fetchCases = []fetchCase{
	{name: "GET", method: "GET", path: "/", wantStatus: 200, wantBody: "echo:"},
	{name: "POST", method: "POST", path: "/", body: []byte("hello"), wantStatus: 200, wantBody: "echo:hello"},
	{name: "HEAD", method: "HEAD", path: "/", wantStatus: 200, wantBody: ""},
	{name: "chunked with trailers", method: "POST", path: "/chunked", body: []byte("xyz"), wantStatus: 202, wantBody: "part1-xyz", wantTrailer: "3"},
	{name: "404 is a response", method: "GET", path: "/missing", wantStatus: 404, wantBody: "nope"},
	{name: "large POST", method: "POST", path: "/", body: bytes.Repeat([]byte("z"), 300<<10), wantStatus: 200, wantBody: "echo:" + strings.Repeat("z", 300<<10)},
}

func TestFetch(t *testing.T) {
	testutil.CheckLeaks(t)
	up := httptest.NewServer(http.HandlerFunc(echoHandler))
	t.Cleanup(up.Close)
	g := startGateway(t, rpc.Options{})
	for _, tt := range fetchCases {
		t.Run(tt.name, func(t *testing.T) {
			r, err := g.req.Fetch(testCtx(t), &pb.FetchRequest{
				Url: up.URL + tt.path, Method: tt.method, Body: tt.body,
				Headers: []*pb.Header{{Name: "X-In", Value: "in"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.GetStatusCode() != tt.wantStatus || string(r.GetBody()) != tt.wantBody || r.GetHttpVersion() != "1.1" {
				t.Fatalf("got %d %q (%s), want %d %q", r.GetStatusCode(), trunc(r.GetBody()), r.GetHttpVersion(), tt.wantStatus, trunc([]byte(tt.wantBody)))
			}
			checkHeaders(t, r.GetHeaders(), r.GetRawHeaders(), tt.method)
			if tt.wantTrailer != "" {
				if len(r.GetTrailers()) != 1 || r.GetTrailers()[0].GetName() != "x-sum" || r.GetTrailers()[0].GetJoined() != tt.wantTrailer ||
					len(r.GetRawTrailers()) != 1 || r.GetRawTrailers()[0].GetName() != "X-Sum" {
					t.Fatalf("trailers %v raw %v", r.GetTrailers(), r.GetRawTrailers())
				}
			}
			if r.GetSocket().GetRemotePort() == 0 || r.GetDuration().AsDuration() <= 0 {
				t.Fatalf("socket %v duration %v", r.GetSocket(), r.GetDuration())
			}
		})
	}
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// checkHeaders checks the merged and raw views of echoHandler's headers.
func checkHeaders(t *testing.T, merged []*pb.HeaderValues, raw []*pb.Header, method string) {
	t.Helper()
	m := map[string]*pb.HeaderValues{}
	for _, h := range merged {
		m[h.GetName()] = h
	}
	if d := m["x-dup"]; d.GetJoined() != "a, b" || len(d.GetValues()) != 2 {
		t.Fatalf("x-dup merged: %v", d)
	}
	if m["x-method"].GetJoined() != method || m["x-in"].GetJoined() != "in" {
		t.Fatalf("merged: %v", merged)
	}
	dups := 0
	for _, h := range raw {
		if h.GetName() == "X-Dup" {
			dups++
		}
	}
	if dups != 2 {
		t.Fatalf("raw headers: %v", raw)
	}
}

func TestExchange(t *testing.T) {
	testutil.CheckLeaks(t)
	up := httptest.NewServer(http.HandlerFunc(echoHandler))
	t.Cleanup(up.Close)
	g := startGateway(t, rpc.Options{})
	for _, tt := range fetchCases {
		t.Run(tt.name, func(t *testing.T) {
			st, send := openExchange(t, testCtx(t), g)
			send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Url: up.URL + tt.path, Method: tt.method}}})
			send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_SetHeader{SetHeader: &pb.HeaderOp{Name: "X-In", Values: []string{"in"}}}})
			if len(tt.body) > 0 {
				half := len(tt.body) / 2
				send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Write{Write: tt.body[:half]}})
				send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_SetHeader{SetHeader: &pb.HeaderOp{Name: "X-Late", Values: []string{"1"}}}}) // op 4: refused
				send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{Data: tt.body[half:]}}})
			} else {
				send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}})
			}
			if err := st.CloseSend(); err != nil {
				t.Fatal(err)
			}
			var (
				evs     []*pb.Event
				created *pb.ClientRequest
				refused []*pb.OpRefused
			)
			for {
				m, err := st.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("after %s: %v", names(evs), err)
				}
				switch k := m.GetKind().(type) {
				case *pb.ExchangeResponse_Created:
					created = k.Created
				case *pb.ExchangeResponse_Event:
					evs = append(evs, k.Event)
				case *pb.ExchangeResponse_OpRefused:
					refused = append(refused, k.OpRefused)
				}
			}
			if created.GetRequestId() == "" {
				t.Fatal("no created message")
			}
			want := "req:socket req:finish req:response res:data res:end res:close req:close"
			if tt.method == "HEAD" {
				want = "req:socket req:finish req:response res:end res:close req:close"
			}
			if got := names(evs); got != want {
				t.Fatalf("events\n got: %s\nwant: %s", got, want)
			}
			checkSeqs(t, evs)
			if got := string(body(evs)); got != tt.wantBody {
				t.Fatalf("body %q, want %q", trunc([]byte(got)), trunc([]byte(tt.wantBody)))
			}
			res := evs[2].GetResponse()
			if res.GetHead().GetStatusCode() != tt.wantStatus {
				t.Fatalf("status %d", res.GetHead().GetStatusCode())
			}
			checkHeaders(t, res.GetHead().GetHeaders(), res.GetHead().GetRawHeaders(), tt.method)
			if tt.wantTrailer != "" {
				end := evs[len(evs)-3].GetEnd()
				if len(end.GetTrailers()) != 1 || end.GetTrailers()[0].GetJoined() != tt.wantTrailer {
					t.Fatalf("end event %v", end)
				}
			}
			if len(tt.body) > 0 {
				if len(refused) != 1 || refused[0].GetOpIndex() != 3 || refused[0].GetError().GetCode() != "ERR_HTTP_HEADERS_SENT" {
					t.Fatalf("refused: %v", refused)
				}
			} else if len(refused) != 0 {
				t.Fatalf("refused: %v", refused)
			}
		})
	}
}

func TestFetchErrors(t *testing.T) {
	testutil.CheckLeaks(t)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			for range 10 {
				_, _ = w.Write(make([]byte, 1000))
				w.(http.Flusher).Flush()
			}
			return
		}
		if r.URL.Path == "/slow" {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Length", "10000")
		_, _ = w.Write(make([]byte, 10000))
	}))
	t.Cleanup(big.Close)
	g := startGateway(t, rpc.Options{})
	ctx := testCtx(t)

	_, err := g.req.Fetch(ctx, &pb.FetchRequest{Url: big.URL, MaxResponseBytes: 9999})
	wantStatus(t, err, codes.ResourceExhausted, "ERR_GATEWAY_RESPONSE_TOO_LARGE")
	_, err = g.req.Fetch(ctx, &pb.FetchRequest{Url: big.URL + "/chunked", MaxResponseBytes: 5000})
	wantStatus(t, err, codes.ResourceExhausted, "ERR_GATEWAY_RESPONSE_TOO_LARGE")
	r, err := g.req.Fetch(ctx, &pb.FetchRequest{Url: big.URL, MaxResponseBytes: 10000})
	if err != nil || len(r.GetBody()) != 10000 {
		t.Fatalf("at the cap: %v", err)
	}

	_, err = g.req.Fetch(ctx, &pb.FetchRequest{Url: "http://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/"})
	wantStatus(t, err, codes.Unavailable, "ECONNREFUSED")

	_, err = g.req.Fetch(ctx, &pb.FetchRequest{Url: big.URL, Options: &pb.RequestOptions{Method: "GET"}})
	wantStatus(t, err, codes.InvalidArgument, "ERR_GATEWAY_INVALID_ARGUMENT")

	// The deadline bounds the whole request.
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = g.req.Fetch(dctx, &pb.FetchRequest{Url: big.URL + "/slow"})
	wantStatus(t, err, codes.DeadlineExceeded, "")
}
