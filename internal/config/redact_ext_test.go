package config_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/config"
)

func TestRedacted(t *testing.T) {
	cfg := config.Default()
	cfg.AuthTokens = []string{"token-one-0123456789", "token-two-0123456789"}
	cfg.EgressAllow = []string{"example.com"}

	r := cfg.Redacted()
	if len(r.AuthTokens) != 2 || strings.Contains(strings.Join(r.AuthTokens, ","), "token-") {
		t.Errorf("Redacted().AuthTokens = %q, want two masked entries", r.AuthTokens)
	}
	if cfg.AuthTokens[0] != "token-one-0123456789" {
		t.Error("Redacted modified the original")
	}
	r.EgressAllow[0] = "changed"
	if cfg.EgressAllow[0] != "example.com" {
		t.Error("Redacted shares slices with the original")
	}

	// Logging the Config itself (not only the Redacted copy) must not leak.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", cfg)
	if strings.Contains(buf.String(), "token-") {
		t.Errorf("log line leaks a token: %s", buf.String())
	}
	var line struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"listen", "admin-listen", "egress-allow", "egress-deny", "shutdown-grace", "auth-tokens"} {
		if _, ok := line.Config[k]; !ok {
			t.Errorf("logged config lacks %q: %s", k, buf.String())
		}
	}
	if line.Config["shutdown-grace"] != "10s" || line.Config["max-send-msg-size"] != "16MiB" {
		t.Errorf("logged values not human-readable: %s", buf.String())
	}
}
