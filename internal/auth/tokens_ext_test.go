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
