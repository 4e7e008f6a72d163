package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/httpgateway/httpgateway/internal/testutil"
)

// startSink serves a spanSink on loopback, over gRPC as the gateway's
// exporter reaches it and over HTTP as the harness asks for its stats,
// both stopped at cleanup.
func startSink(t *testing.T) (s *spanSink, client coltracepb.TraceServiceClient, statsAddr string) {
	t.Helper()
	s = &spanSink{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newSinkServer(s)
	served := make(chan struct{})
	go func() { // ends when Stop closes the listener
		_ = srv.Serve(l)
		close(served)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		adminClient.CloseIdleConnections()
	})
	return s, coltracepb.NewTraceServiceClient(cc), hs.Listener.Addr().String()
}

func spans(kinds ...tracepb.Span_SpanKind) []*tracepb.Span {
	out := make([]*tracepb.Span, len(kinds))
	for i, k := range kinds {
		out[i] = &tracepb.Span{Name: "s", Kind: k}
	}
	return out
}

func TestSinkCountsSpans(t *testing.T) {
	testutil.CheckLeaks(t)
	_, client, statsAddr := startSink(t)
	ctx := context.Background()

	st, err := fetchSinkStats(ctx, statsAddr)
	if err != nil || st != (sinkStats{}) {
		t.Fatalf("stats before any export = %+v, %v; want zeros", st, err)
	}

	// Two resources, three scopes: every span counts, by kind.
	srvKind, cliKind := tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_CLIENT
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{ScopeSpans: []*tracepb.ScopeSpans{
			{Spans: spans(srvKind, cliKind, cliKind)},
			{Spans: spans(tracepb.Span_SPAN_KIND_INTERNAL)},
		}},
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans(srvKind)}}},
	}}
	if _, err := client.Export(ctx, req); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if _, err := client.Export(ctx, &coltracepb.ExportTraceServiceRequest{}); err != nil {
		t.Fatalf("empty Export: %v", err)
	}

	st, err = fetchSinkStats(ctx, statsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if want := (sinkStats{Exports: 2, Spans: 5, Server: 2, Client: 2}); st != want {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
}

func TestSinkStatsErrors(t *testing.T) {
	testutil.CheckLeaks(t)
	_, _, statsAddr := startSink(t)
	ctx := context.Background()
	resp, err := http.Get("http://" + statsAddr + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other = %d, want 404", resp.StatusCode)
	}

	// Something that is not a sink answers /stats with a page.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>"))
	}))
	defer other.Close()
	defer adminClient.CloseIdleConnections()
	if _, err := fetchSinkStats(ctx, other.Listener.Addr().String()); err == nil {
		t.Error("fetchSinkStats accepted an HTML page")
	}
}

// TestSinkCountsHTTPExports: an OTLP/HTTP export (binary protobuf, POST
// /v1/traces) counts as the gRPC one does and is answered with an empty
// protobuf response; a body that is not one is refused and counts nothing.
func TestSinkCountsHTTPExports(t *testing.T) {
	testutil.CheckLeaks(t)
	_, _, statsAddr := startSink(t)
	ctx := context.Background()
	post := func(body []byte) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+statsAddr+otlpHTTPPath, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := adminClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	body, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans(tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_CLIENT)}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp := post(body)
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-protobuf" ||
		proto.Unmarshal(out, &coltracepb.ExportTraceServiceResponse{}) != nil {
		t.Errorf("export answered %s %q %q", resp.Status, resp.Header.Get("Content-Type"), out)
	}
	if resp := post([]byte("\xff\xff not protobuf")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad body answered %s, want 400", resp.Status)
	}
	st, err := fetchSinkStats(ctx, statsAddr)
	if want := (sinkStats{Exports: 1, Spans: 2, Server: 1, Client: 1}); err != nil || st != want {
		t.Errorf("stats %+v, %v; want %+v", st, err, want)
	}
}
