package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSettleSpans(t *testing.T) {
	t.Run("waits for the count to stop changing", func(t *testing.T) {
		// The count rises on each of the first 20 reads, then stays.
		var reads atomic.Int64
		count := func(context.Context) (int64, error) {
			return min(reads.Add(1), 20) * 512, nil
		}
		got, err := settleSpans(context.Background(), count, 20*time.Millisecond, time.Millisecond, 10*time.Second)
		if err != nil || got != 20*512 {
			t.Fatalf("settleSpans = %d, %v; want %d", got, err, 20*512)
		}
		if reads.Load() <= 20 {
			t.Fatalf("returned after %d reads, before seeing the count stay", reads.Load())
		}
	})
	t.Run("gives up at the limit", func(t *testing.T) {
		var reads atomic.Int64
		count := func(context.Context) (int64, error) { return reads.Add(1), nil }
		got, err := settleSpans(context.Background(), count, time.Hour, time.Millisecond, 30*time.Millisecond)
		if err == nil || got < 2 {
			t.Fatalf("settleSpans = %d, %v; want an error after a few reads", got, err)
		}
	})
	t.Run("reports a failed read", func(t *testing.T) {
		boom := errors.New("boom")
		count := func(context.Context) (int64, error) { return 0, boom }
		if _, err := settleSpans(context.Background(), count, time.Millisecond, time.Millisecond, time.Second); !errors.Is(err, boom) {
			t.Fatalf("settleSpans error = %v, want boom", err)
		}
	})
}

func TestTracedEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://elsewhere:4318")
	t.Setenv("OTEL_METRICS_EXPORTER", "otlp")
	env := map[string]string{}
	for _, kv := range tracedEnv("grpc", "http://127.0.0.1:4317") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	want := map[string]string{
		"OTEL_TRACES_EXPORTER":               "otlp",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317",
		"OTEL_BSP_SCHEDULE_DELAY":            "500",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	// The shell's OTEL_* settings reach no gateway: they would turn on
	// metrics export or send the spans elsewhere.
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_METRICS_EXPORTER"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s inherited", k)
		}
	}
	for _, kv := range gatewayEnv() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Errorf("gatewayEnv has %s", kv)
		}
	}
}
