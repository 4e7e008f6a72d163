package config_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/config"
)

// env is an injected environment, so tests never touch the process's own.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// load runs config.Load the way `gateway serve` does, with a config file
// written from fileYAML when it is not empty (and GATEWAY_CONFIG pointing at
// it unless the test already chose a path).
func load(t *testing.T, args []string, e env, fileYAML string) (config.Config, error) {
	t.Helper()
	if e == nil {
		e = env{}
	}
	if fileYAML != "" {
		path := filepath.Join(t.TempDir(), "gateway.yaml")
		if err := os.WriteFile(path, []byte(fileYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, ok := e["GATEWAY_CONFIG"]; !ok {
			e["GATEWAY_CONFIG"] = path
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return config.Load(fs, args, e.lookup)
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := load(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := config.Default(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load() with nothing set = %+v, want defaults %+v", cfg, want)
	}
	if cfg.Listen != ":50051" || cfg.AdminListen != "" || cfg.LogFormat != "json" || cfg.ShutdownGrace != 10*time.Second {
		t.Errorf("documented defaults changed: %+v", cfg)
	}
}

func TestLoadPrecedence(t *testing.T) {
	const file = "listen: 127.0.0.1:1001\nshutdown-grace: 1s\negress-allow: [file.example.com, 10.0.0.0/8]\n"
	tests := []struct {
		name      string
		args      []string
		env       env
		file      string
		wantAddr  string
		wantGrace time.Duration
		wantAllow []string
	}{
		{name: "defaults", wantAddr: ":50051", wantGrace: 10 * time.Second},
		{name: "file alone", file: file,
			wantAddr: "127.0.0.1:1001", wantGrace: time.Second, wantAllow: []string{"file.example.com", "10.0.0.0/8"}},
		{name: "env alone", env: env{"GATEWAY_LISTEN": "127.0.0.1:1002", "GATEWAY_EGRESS_ALLOW": "env.example.com, *.env.example.com:443"},
			wantAddr: "127.0.0.1:1002", wantGrace: 10 * time.Second, wantAllow: []string{"env.example.com", "*.env.example.com:443"}},
		{name: "flag alone", args: []string{"--listen", "127.0.0.1:1003", "--egress-allow", "a.example.com", "--egress-allow=b.example.com,192.0.2.1"},
			wantAddr: "127.0.0.1:1003", wantGrace: 10 * time.Second, wantAllow: []string{"a.example.com", "b.example.com", "192.0.2.1"}},
		{name: "env over file", file: file, env: env{"GATEWAY_LISTEN": "127.0.0.1:1002"},
			wantAddr: "127.0.0.1:1002", wantGrace: time.Second, wantAllow: []string{"file.example.com", "10.0.0.0/8"}},
		{name: "flag over file", file: file, args: []string{"--shutdown-grace=3s"},
			wantAddr: "127.0.0.1:1001", wantGrace: 3 * time.Second, wantAllow: []string{"file.example.com", "10.0.0.0/8"}},
		{name: "flag over env over file", file: file,
			env:      env{"GATEWAY_LISTEN": "127.0.0.1:1002", "GATEWAY_SHUTDOWN_GRACE": "2s", "GATEWAY_EGRESS_ALLOW": ""},
			args:     []string{"--listen", "127.0.0.1:1003"},
			wantAddr: "127.0.0.1:1003", wantGrace: 2 * time.Second, wantAllow: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.args, tt.env, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Listen != tt.wantAddr {
				t.Errorf("Listen = %q, want %q", cfg.Listen, tt.wantAddr)
			}
			if cfg.ShutdownGrace != tt.wantGrace {
				t.Errorf("ShutdownGrace = %v, want %v", cfg.ShutdownGrace, tt.wantGrace)
			}
			if !reflect.DeepEqual(cfg.EgressAllow, tt.wantAllow) {
				t.Errorf("EgressAllow = %q, want %q", cfg.EgressAllow, tt.wantAllow)
			}
		})
	}
}

func TestLoadConfigPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envFile := write("env.yaml", "listen: 127.0.0.1:2001\n")
	flagFile := write("flag.yaml", "listen: 127.0.0.1:2002\n")

	cfg, err := load(t, []string{"--config", flagFile}, env{"GATEWAY_CONFIG": envFile}, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:2002" || cfg.ConfigFile != flagFile {
		t.Errorf("--config should win over GATEWAY_CONFIG: got listen %q from %q", cfg.Listen, cfg.ConfigFile)
	}
	cfg, err = load(t, nil, env{"GATEWAY_CONFIG": envFile}, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:2001" {
		t.Errorf("GATEWAY_CONFIG not read: listen %q", cfg.Listen)
	}
}

func TestLoadFileForms(t *testing.T) {
	const yaml = `# every kind of value
listen: "127.0.0.1:0"
admin-listen: 127.0.0.1:0
egress-deny: "169.254.0.0/16, [fd00::/8]:443"
log-level: debug
log-format: text
max-recv-msg-size: 8MiB
max-send-msg-size: 1048576
max-concurrent-streams: 10
keepalive-permit-without-stream: false
auth-tokens: [aaaaaaaaaaaaaaaa-1, aaaaaaaaaaaaaaaa-2]
`
	cfg, err := load(t, nil, nil, yaml)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxRecvMsgSize != 8<<20 || cfg.MaxSendMsgSize != 1<<20 || cfg.MaxConcurrentStreams != 10 ||
		cfg.KeepalivePermitWithoutStream || cfg.LogFormat != "text" || cfg.LogLevel.String() != "DEBUG" ||
		len(cfg.EgressDeny) != 2 || len(cfg.AuthTokens) != 2 || cfg.AdminListen != "127.0.0.1:0" {
		t.Errorf("file not applied as written: %+v", cfg)
	}

	// JSON is YAML, so a JSON file works too; an empty file sets nothing.
	if cfg, err := load(t, nil, nil, `{"listen": "127.0.0.1:7", "egress-allow": ["x.example.com"]}`); err != nil || cfg.Listen != "127.0.0.1:7" {
		t.Errorf("JSON file: %v, listen %q", err, cfg.Listen)
	}
	if _, err := load(t, nil, nil, "# nothing\n"); err != nil {
		t.Errorf("comment-only file: %v", err)
	}
}

func TestLoadBoolFlag(t *testing.T) {
	cfg, err := load(t, []string{"--keepalive-permit-without-stream=false"}, nil, "")
	if err != nil || cfg.KeepalivePermitWithoutStream {
		t.Fatalf("=false: %v %v", err, cfg.KeepalivePermitWithoutStream)
	}
	cfg, err = load(t, []string{"--keepalive-permit-without-stream"}, env{"GATEWAY_KEEPALIVE_PERMIT_WITHOUT_STREAM": "false"}, "")
	if err != nil || !cfg.KeepalivePermitWithoutStream {
		t.Fatalf("bare bool flag should mean true and beat env: %v %v", err, cfg.KeepalivePermitWithoutStream)
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   env
		file  string
		want  []string // substrings of the error
		field string   // *FieldError.Field when validation caught it
	}{
		{name: "bad CIDR in egress-allow flag", args: []string{"--egress-allow", "10.0.0.0/33"},
			want: []string{"egress-allow", "10.0.0.0/33"}, field: "egress-allow"},
		{name: "CIDR with host bits in env", env: env{"GATEWAY_EGRESS_DENY": "ok.example.com,10.1.2.3/8"},
			want: []string{"egress-deny", "entry 2", "10.0.0.0/8"}, field: "egress-deny"},
		{name: "bad host pattern", args: []string{"--egress-allow=ex*ample.com"},
			want: []string{"egress-allow", "wildcard"}, field: "egress-allow"},
		{name: "listen without port", args: []string{"--listen", "localhost"},
			want: []string{"listen", "host:port"}, field: "listen"},
		{name: "listen with bad port in file", file: "listen: \":http\"\n",
			want: []string{"listen", "port"}, field: "listen"},
		{name: "admin-listen same as listen", args: []string{"--listen=127.0.0.1:9", "--admin-listen=127.0.0.1:9"},
			want: []string{"admin-listen"}, field: "admin-listen"},
		{name: "negative duration in env", env: env{"GATEWAY_SHUTDOWN_GRACE": "-1s"},
			want: []string{"shutdown-grace", "negative"}, field: "shutdown-grace"},
		{name: "negative duration in file", file: "drain-delay: -5s\n",
			want: []string{"drain-delay", "negative"}, field: "drain-delay"},
		{name: "keepalive-time below 1s", args: []string{"--keepalive-time=10ms"},
			want: []string{"keepalive-time", "at least 1s"}, field: "keepalive-time"},
		{name: "zero message size", args: []string{"--max-recv-msg-size=0"},
			want: []string{"max-recv-msg-size"}, field: "max-recv-msg-size"},
		{name: "bad log format", env: env{"GATEWAY_LOG_FORMAT": "xml"},
			want: []string{"log-format", "xml"}, field: "log-format"},
		{name: "key without cert", args: []string{"--tls-key-file=/nonexistent/key.pem"},
			want: []string{"tls-cert-file", "together", "tls-key-file", "no such file"}, field: "tls-cert-file"},
		{name: "unknown file key", file: "listen: :1\nlisten-adress: :2\n",
			want: []string{"line 2", `unknown key "listen-adress"`}},
		{name: "config key inside file", file: "config: other.yaml\n",
			want: []string{`unknown key "config"`}},
		{name: "list for a scalar in file", file: "listen: [a, b]\n",
			want: []string{"line 1", "listen", "not a list"}},
		{name: "key set twice in file", file: "listen: :1\nlisten: :2\n",
			want: []string{"line 2", "listen", "twice"}},
		{name: "unparsable file", file: "listen: [\n",
			want: []string{"config file"}},
		{name: "missing file", env: env{"GATEWAY_CONFIG": "/nonexistent/gateway.yaml"},
			want: []string{"config file", "/nonexistent/gateway.yaml"}},
		{name: "bad duration in env", env: env{"GATEWAY_DRAIN_DELAY": "soon"},
			want: []string{"GATEWAY_DRAIN_DELAY", "invalid duration"}},
		{name: "bad duration flag", args: []string{"--shutdown-grace", "soon"},
			want: []string{"shutdown-grace", "invalid duration"}},
		{name: "unknown flag", args: []string{"--lisen", ":1"},
			want: []string{"lisen"}},
		{name: "short token", env: env{"GATEWAY_AUTH_TOKENS": "s3cr3t"},
			want: []string{"auth-tokens", "token 1"}, field: "auth-tokens"},
		{name: "secrets are not flags", args: []string{"--auth-tokens", "abc"},
			want: []string{"auth-tokens"}},
		{name: "bad egress mode", args: []string{"--egress-mode", "audit"},
			want: []string{"egress-mode", "audit"}, field: "egress-mode"},
		{name: "bad role rule in env", env: env{"GATEWAY_EGRESS_ROLES": "ci:allow:10.0.0.1/8"},
			want: []string{"egress-roles", "entry 1", "10.0.0.0/8"}, field: "egress-roles"},
		{name: "negative body limit", args: []string{"--max-request-body-bytes=-1"},
			want: []string{"max-request-body-bytes", "negative"}, field: "max-request-body-bytes"},
		{name: "negative tunnel duration in file", file: "max-tunnel-duration: -1s\n",
			want: []string{"max-tunnel-duration", "negative"}, field: "max-tunnel-duration"},
		{name: "bad size suffix", env: env{"GATEWAY_MAX_TUNNEL_BYTES": "3 parsecs"},
			want: []string{"GATEWAY_MAX_TUNNEL_BYTES", "invalid size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.args, tt.env, tt.file)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q echoes a secret", err)
			}
			if tt.field != "" {
				var fe *config.FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Errorf("error %q: want a *config.FieldError for %q", err, tt.field)
				}
			}
		})
	}
}

func TestLoadReportsAllProblems(t *testing.T) {
	_, err := load(t, []string{"--listen=nope", "--max-live-requests=-1"}, env{"GATEWAY_SHUTDOWN_GRACE": "-1s"}, "")
	for _, w := range []string{"listen", "max-live-requests", "shutdown-grace"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
}

func TestLoadHelp(t *testing.T) {
	_, err := load(t, []string{"-h"}, nil, "")
	var ue *config.UsageError
	if !errors.As(err, &ue) || !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: got %v, want a UsageError wrapping flag.ErrHelp", err)
	}
}
