package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

func TestParseEgressRoles(t *testing.T) {
	testutil.CheckLeaks(t)
	tests := []struct {
		name    string
		items   []string
		want    []config.EgressRole
		wantErr string
	}{
		{name: "none", want: []config.EgressRole{}},
		{name: "every setting, roles sorted",
			items: []string{"web:deny:*.internal.example", "ci:allow:api.example.com:443", "ci:allow:[2001:db8::/32]:443",
				"ci:deny:10.0.0.0/8", "ci:mode:report-only", "ci:allow-list-only", "web:mode:enforce"},
			want: []config.EgressRole{
				{Name: "ci", Allow: []string{"api.example.com:443", "[2001:db8::/32]:443"}, Deny: []string{"10.0.0.0/8"},
					Mode: config.EgressModeReportOnly, AllowListOnly: true},
				{Name: "web", Deny: []string{"*.internal.example"}, Mode: config.EgressModeEnforce},
			}},
		{name: "a role with only a mode", items: []string{"batch:mode:enforce"},
			want: []config.EgressRole{{Name: "batch", Mode: config.EgressModeEnforce}}},
		{name: "no setting", items: []string{"ci"}, wantErr: "entry 1"},
		{name: "empty role", items: []string{":allow:example.com"}, wantErr: "<role>:<setting>"},
		{name: "bad role name", items: []string{"c i:allow:example.com"}, wantErr: "[A-Za-z0-9._-]"},
		{name: "bad rule", items: []string{"ci:allow:ex*ample.com"}, wantErr: "wildcard"},
		{name: "empty rule", items: []string{"ci:deny:"}, wantErr: "empty rule"},
		{name: "bad mode", items: []string{"ci:mode:audit"}, wantErr: `mode "audit"`},
		{name: "two modes", items: []string{"ci:mode:enforce", "ci:mode:report-only"}, wantErr: "entry 2"},
		{name: "allow-list-only takes no value", items: []string{"ci:allow-list-only:yes"}, wantErr: "unknown setting"},
		{name: "unknown setting", items: []string{"ci:permit:example.com"}, wantErr: `unknown setting "permit"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ParseEgressRoles(tt.items)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestLoadEgressRolesAndLimits: the per-role egress settings and the
// per-request limits load from every layer; a repeated flag accumulates
// role items, and the defaults are "enforce" and no bounds.
func TestLoadEgressRolesAndLimits(t *testing.T) {
	testutil.CheckLeaks(t)
	cfg, err := load(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EgressMode != config.EgressModeEnforce || len(cfg.EgressRoles) != 0 || cfg.MaxRequestBodyBytes != 0 ||
		cfg.MaxResponseBodyBytes != 0 || cfg.MaxRequestHeaderBytes != 0 || cfg.MaxTunnelDuration != 0 || cfg.MaxTunnelBytes != 0 {
		t.Fatalf("defaults: %+v", cfg)
	}

	const file = `egress-mode: report-only
egress-roles:
  - ci:allow:api.example.com:443
  - ci:allow-list-only
max-request-header-bytes: 8KiB
max-request-body-bytes: 3GiB
max-response-body-bytes: 1TiB
max-tunnel-duration: 1h
max-tunnel-bytes: 10MiB
`
	cfg, err = load(t, []string{"--egress-roles", "web:mode:report-only", "--egress-roles=web:deny:10.0.0.0/8"},
		env{"GATEWAY_EGRESS_MODE": "enforce"}, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EgressMode != config.EgressModeEnforce {
		t.Errorf("EgressMode %q: the environment should win over the file", cfg.EgressMode)
	}
	// The flag replaces the file's list (flags > env > file), its repeats accumulate.
	want := []config.EgressRole{{Name: "web", Deny: []string{"10.0.0.0/8"}, Mode: config.EgressModeReportOnly}}
	if got := cfg.EgressRoleList(); !reflect.DeepEqual(got, want) {
		t.Errorf("roles %+v, want %+v", got, want)
	}
	if cfg.MaxRequestHeaderBytes != 8<<10 || cfg.MaxRequestBodyBytes != 3<<30 || cfg.MaxResponseBodyBytes != 1<<40 ||
		cfg.MaxTunnelDuration != time.Hour || cfg.MaxTunnelBytes != 10<<20 {
		t.Errorf("limits not applied as written: %+v", cfg)
	}

	cfg, err = load(t, nil, nil, file)
	if err != nil {
		t.Fatal(err)
	}
	want = []config.EgressRole{{Name: "ci", Allow: []string{"api.example.com:443"}, AllowListOnly: true}}
	if got := cfg.EgressRoleList(); !reflect.DeepEqual(got, want) || cfg.EgressMode != config.EgressModeReportOnly {
		t.Errorf("file alone: roles %+v mode %q", got, cfg.EgressMode)
	}
	// The start-up log shows the sizes as written.
	if s := cfg.LogValue().String(); !strings.Contains(s, "max-request-body-bytes=3GiB") || !strings.Contains(s, "egress-roles=[ci:allow:api.example.com:443 ci:allow-list-only]") {
		t.Errorf("log value %s", s)
	}
}
