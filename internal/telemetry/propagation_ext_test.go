package telemetry_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/telemetry"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestPropagationNothingExported: with no-op providers (nothing
// configured) no span is made, yet the caller's trace context still
// reaches the upstream, on every redirect hop, and the summary line
// carries the caller's ids.
func TestPropagationNothingExported(t *testing.T) {
	testutil.CheckLeaks(t)
	logs := &lockedBuffer{}
	tel, err := telemetry.New(telemetry.Options{Logger: slog.New(telemetry.LogHandler(slog.NewJSONHandler(logs, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	cc := startGateway(t, tel, nil)
	up, tps := startTraceparentUpstream(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/a" {
			http.Redirect(w, req, "/b", http.StatusFound)
			return
		}
		io.WriteString(w, "b")
	})

	const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx := metadata.AppendToOutgoingContext(testCtx(t), "traceparent", caller)
	res, err := pb.NewClientRequestServiceClient(cc).Fetch(ctx, &pb.FetchRequest{Url: up.URL + "/a",
		Options: &pb.RequestOptions{Redirect: pb.RedirectMode_REDIRECT_MODE_FOLLOW}})
	if err != nil || res.GetStatusCode() != 200 {
		t.Fatalf("Fetch: %v %v", res.GetStatusCode(), err)
	}
	if got := tps.seen(); len(got) != 2 || got[0] != caller || got[1] != caller {
		t.Errorf("upstream got traceparents %q, want the caller's %s on both hops", got, caller)
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err == nil && m["msg"] == "outbound request" {
			line = m
		}
	}
	if line["trace_id"] != "0af7651916cd43dd8448eb211c80319c" || line["span_id"] != "b7ad6b7169203331" {
		t.Errorf("summary line %v, want the caller's trace and span ids", line)
	}
}
