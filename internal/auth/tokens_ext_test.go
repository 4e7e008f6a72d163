package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/auth"
)

const (
	tokA = "aaaaaaaaaaaaaaaa-1"
	tokB = "bbbbbbbbbbbbbbbb-22"
)

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTokensFileReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	write(t, file, "# comment\n\n"+tokA+" alice ops\n")
	ts, err := auth.NewTokens(auth.TokensOptions{File: file, Inline: []string{tokB}, CheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := ts.Lookup(tokA); !ok || id != (auth.Identity{Name: "alice", Role: "ops", Method: auth.MethodToken}) {
		t.Errorf("Lookup(A) = %+v, %v", id, ok)
	}
	if id, ok := ts.Lookup(tokB); !ok || !strings.HasPrefix(id.Name, "token-") || strings.Contains(id.Name, tokB) {
		t.Errorf("bare inline token: %+v, %v; want a derived name", id, ok)
	}
	if _, ok := ts.Lookup("cccccccccccccccc"); ok {
		t.Error("unknown token accepted")
	}

	// Rotate: A is revoked, C added (a different size, so the change is
	// seen even within the file system's time granularity).
	const tokC = "cccccccccccccccccccc"
	write(t, file, tokC+" carol\n")
	if _, ok := ts.Lookup(tokA); ok {
		t.Error("revoked token still accepted after the file changed")
	}
	if id, ok := ts.Lookup(tokC); !ok || id.Name != "carol" {
		t.Errorf("new token: %+v, %v", id, ok)
	}

	// A broken file keeps the tokens in force.
	write(t, file, "short carol\nand more junk to change the size\n")
	if _, ok := ts.Lookup(tokC); !ok {
		t.Error("a broken reload dropped the tokens in force")
	}
}

func TestTokensFileErrorsDoNotEchoTokens(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"short", "shortsecret alice\n"},
		{"no identity", "longenoughsecret-123\n"},
		{"duplicate", "longenoughsecret-123 a\nlongenoughsecret-123 b\n"},
		{"too many fields", "longenoughsecret-123 a b c\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "tokens")
			write(t, file, tc.content)
			_, err := auth.NewTokens(auth.TokensOptions{File: file})
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error echoes the token: %v", err)
			}
		})
	}
}

// TestOneRolePerIdentity: an identity listed with two roles (two tokens,
// or a token and a client certificate's role) is refused at start, and a
// reload that would do it keeps the tokens in force; the same identity
// with one role on several tokens is fine.
func TestOneRolePerIdentity(t *testing.T) {
	const tokC = "cccccccccccccccccccc"
	for _, tc := range []struct {
		name      string
		file      string
		inline    []string
		certRoles map[string]string
		wantErr   bool
	}{
		{name: "two tokens, one role", file: tokA + " alice ops\n" + tokB + " alice ops\n"},
		{name: "two tokens, two roles", file: tokA + " alice ops\n" + tokB + " alice ci\n", wantErr: true},
		{name: "role and no role", file: tokA + " alice ops\n" + tokB + " alice\n", wantErr: true},
		{name: "inline and file disagree", file: tokA + " alice ops\n", inline: []string{tokB + " alice ci"}, wantErr: true},
		{name: "inline pair disagrees", inline: []string{tokA + " alice ops", tokB + " alice"}, wantErr: true},
		{name: "token agrees with certificate", file: tokA + " alice ops\n", certRoles: map[string]string{"alice": "ops"}},
		{name: "token disagrees with certificate", file: tokA + " alice ops\n", certRoles: map[string]string{"alice": "ci"}, wantErr: true},
		{name: "different identities", file: tokA + " alice ops\n" + tokB + " bob ci\n", certRoles: map[string]string{"carol": "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := auth.TokensOptions{Inline: tc.inline, CertRoles: tc.certRoles, CheckInterval: -1}
			if tc.file != "" {
				o.File = filepath.Join(t.TempDir(), "tokens")
				write(t, o.File, tc.file)
			}
			_, err := auth.NewTokens(o)
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewTokens: %v, want error %v", err, tc.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), tokA) || strings.Contains(err.Error(), tokB) || !strings.Contains(err.Error(), "two roles")) {
				t.Errorf("error %q: want the identity's two roles named, no token", err)
			}
		})
	}

	t.Run("reload", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "tokens")
		write(t, file, tokA+" alice ops\n")
		ts, err := auth.NewTokens(auth.TokensOptions{File: file, CheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		write(t, file, tokA+" alice ops\n"+tokC+" alice ci\n")
		if id, ok := ts.Lookup(tokA); !ok || id.Role != "ops" {
			t.Errorf("after a two-roles reload, A = %+v, %v; want the previous tokens in force", id, ok)
		}
		if _, ok := ts.Lookup(tokC); ok {
			t.Error("the two-roles file was put in force")
		}
	})
}
