package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/httpgateway/httpgateway/internal/telemetry"
)

func TestRedactURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http://example.com/a?b=1", "http://example.com/a?b=1"},
		{"https://u:p@example.com/", "https://REDACTED:REDACTED@example.com/"},
		{"https://u@example.com/", "https://REDACTED:REDACTED@example.com/"},
		{"https://s3/x?X-Amz-Signature=abc&X-Amz-Date=1", "https://s3/x?X-Amz-Signature=REDACTED&X-Amz-Date=1"},
		{"https://x/?sig=a&Signature=b&AWSAccessKeyId=c&X-Goog-Signature=d", "https://x/?sig=REDACTED&Signature=REDACTED&AWSAccessKeyId=REDACTED&X-Goog-Signature=REDACTED"},
		{"https://x/?my_token=a&client_secret=b&q=token", "https://x/?my_token=REDACTED&client_secret=REDACTED&q=token"},
		{"https://x/p#frag", "https://x/p"},
		{"http://u:p@%zz/?token=1", "http://REDACTED:REDACTED@%zz/"},
	} {
		if got := telemetry.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSetupNothingConfigured(t *testing.T) {
	p, err := telemetry.Setup(context.Background(), telemetry.SetupOptions{LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	if p.TracerProvider != nil || p.MeterProvider != nil || len(p.Tracing)+len(p.Metrics) != 0 {
		t.Errorf("nothing configured, got traces %v metrics %v", p.Tracing, p.Metrics)
	}
	// OTLP settings for one signal do not turn on the other; the SDK
	// switch turns everything off.
	p2, err := telemetry.Setup(context.Background(), telemetry.SetupOptions{LookupEnv: env(map[string]string{
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"})})
	if err != nil {
		t.Fatal(err)
	}
	if p2.MeterProvider != nil {
		t.Error("OTEL_SDK_DISABLED=true still made a meter provider")
	}
}

func TestSetupConsoleAndPrometheus(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console") // autoexport reads the process environment
	p, err := telemetry.Setup(context.Background(), telemetry.SetupOptions{Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	if len(p.Tracing) != 1 || p.Tracing[0] != "console" || p.TracerProvider == nil {
		t.Errorf("traces %v", p.Tracing)
	}
	if p.MetricsHandler == nil || p.MeterProvider == nil {
		t.Error("no Prometheus handler")
	}
}

func TestLogHandlerAddsIDs(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil)))
	tid, _ := trace.TraceIDFromHex("0102030405060708090a0b0c0d0e0f10")
	sid, _ := trace.SpanIDFromHex("0102030405060708")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	l.InfoContext(ctx, "traced")
	l.Info("untraced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.Contains(lines[0], `"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708"`) {
		t.Errorf("traced line %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("untraced line %s", lines[1])
	}
}
