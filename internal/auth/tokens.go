package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// MinTokenLength is the shortest token accepted: shorter ones are guessable.
const MinTokenLength = 16

// DefaultCheckInterval is how often, at most, the tokens file is looked at
// for changes.
const DefaultCheckInterval = time.Second

// TokensOptions configure a Tokens set.
//
// The tokens file holds one token per line:
//
//	# comment
//	<token> <identity> [<role>]
//
// fields separated by spaces or tabs; blank lines and lines starting with
// '#' are skipped. A token is at least MinTokenLength characters and
// appears once. Inline tokens (GATEWAY_AUTH_TOKENS) use the same syntax per
// item, except that the identity may be left out: a bare token's identity
// is "token-" and the first 12 hex digits of its SHA-256, stable and safe
// to log.
type TokensOptions struct {
	// File is the tokens file; "" for none. It is re-read when its
	// modification time or size changed, looked at no more than once per
	// CheckInterval, on the lookups themselves (no goroutine). A file that
	// fails to parse on reload is logged and the previous tokens stay in
	// force: an editor's half-written file neither opens nor locks out.
	File string
	// Inline are tokens from the configuration, fixed for the process.
	Inline []string
	// CheckInterval bounds how often File is stat'ed. Default 1s; negative
	// means on every lookup (tests).
	CheckInterval time.Duration
	// Logger receives reload events. Default slog.Default().
	Logger *slog.Logger
	// CertRoles are the roles of client-certificate identities
	// (Options.Roles). A token identity of the same name must have the
	// same role: see NewTokens.
	CertRoles map[string]string
}

// tokenEntry is one accepted token, kept as its SHA-256 so that lookups
// compare fixed-size digests in constant time.
type tokenEntry struct {
	sum [sha256.Size]byte
	id  Identity
}

// Tokens is a set of accepted bearer tokens. It is safe for concurrent use.
type Tokens struct {
	o      TokensOptions
	inline []tokenEntry

	mu        sync.Mutex // guards the fields below
	file      []tokenEntry
	modTime   time.Time
	size      int64
	lastCheck time.Time
}

// NewTokens loads the inline tokens and the file once. A bad file or inline
// token is an error (at start the operator should fix it, not run open).
// Error messages never contain a token.
//
// One identity has one role: an identity listed with two roles (two tokens
// of one name, say during a rotation, or a token and a client certificate
// of one name) is an error, at start as on reload. The gateway keeps each
// identity's agents under its role and retires them when the role changes;
// two live roles would have each call destroy the other role's agents.
func NewTokens(o TokensOptions) (*Tokens, error) {
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t := &Tokens{o: o}
	for i, s := range o.Inline {
		e, err := parseTokenLine(s, true)
		if err != nil {
			return nil, fmt.Errorf("auth-tokens: item %d: %w", i+1, err)
		}
		t.inline = append(t.inline, e)
	}
	if err := t.checkRoles(nil); err != nil {
		return nil, fmt.Errorf("auth-tokens: %w", err)
	}
	if o.File != "" {
		if err := t.reloadLocked(); err != nil {
			return nil, err
		}
		t.lastCheck = time.Now()
	}
	return t, nil
}

// Len returns the number of tokens in force.
func (t *Tokens) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.inline) + len(t.file)
}

// Lookup returns the identity of token. Every entry is compared, in
// constant time, whatever matches.
func (t *Tokens) Lookup(token string) (Identity, bool) {
	sum := sha256.Sum256([]byte(token))
	t.mu.Lock()
	t.maybeReloadLocked()
	file := t.file
	t.mu.Unlock()
	var (
		found Identity
		ok    int
	)
	for _, list := range [][]tokenEntry{t.inline, file} {
		for i := range list {
			if subtle.ConstantTimeCompare(sum[:], list[i].sum[:]) == 1 {
				found, ok = list[i].id, 1
			}
		}
	}
	return found, ok == 1
}

// RoleOf returns the role the tokens in force give identity name, ok
// false when no token names it.
func (t *Tokens) RoleOf(name string) (role string, ok bool) {
	t.mu.Lock()
	t.maybeReloadLocked()
	file := t.file
	t.mu.Unlock()
	for _, list := range [][]tokenEntry{t.inline, file} {
		for _, e := range list {
			if e.id.Name == name {
				return e.id.Role, true
			}
		}
	}
	return "", false
}

// maybeReloadLocked re-reads the file if CheckInterval passed and the file
// changed.
func (t *Tokens) maybeReloadLocked() {
	if t.o.File == "" {
		return
	}
	now := time.Now()
	if t.o.CheckInterval > 0 && now.Sub(t.lastCheck) < t.o.CheckInterval {
		return
	}
	t.lastCheck = now
	st, err := os.Stat(t.o.File)
	if err != nil {
		t.o.Logger.Error("auth tokens file: cannot stat; keeping the tokens in force", "file", t.o.File, "err", err)
		return
	}
	if st.ModTime().Equal(t.modTime) && st.Size() == t.size {
		return
	}
	if err := t.reloadLocked(); err != nil {
		t.o.Logger.Error("auth tokens file: reload failed; keeping the tokens in force", "err", err)
		return
	}
	t.o.Logger.Info("auth tokens file reloaded", "file", t.o.File, "tokens", len(t.file))
}

// reloadLocked reads and parses the file, replacing the file's tokens only
// if the whole file is valid.
func (t *Tokens) reloadLocked() error {
	st, err := os.Stat(t.o.File)
	if err != nil {
		return fmt.Errorf("auth-tokens-file: %w", err)
	}
	data, err := os.ReadFile(t.o.File)
	if err != nil {
		return fmt.Errorf("auth-tokens-file: %w", err)
	}
	entries, err := parseTokens(data)
	if err == nil {
		err = t.checkRoles(entries)
	}
	if err != nil {
		return fmt.Errorf("auth-tokens-file %s: %w", t.o.File, err)
	}
	t.file, t.modTime, t.size = entries, st.ModTime(), st.Size()
	return nil
}

func parseTokens(data []byte) ([]tokenEntry, error) {
	var out []tokenEntry
	seen := map[[sha256.Size]byte]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseTokenLine(line, false)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if seen[e.sum] {
			return nil, fmt.Errorf("line %d: token listed twice", n)
		}
		seen[e.sum] = true
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseTokenLine parses "<token> <identity> [<role>]"; bareOK allows a
// token alone. Errors never quote the token.
func parseTokenLine(s string, bareOK bool) (tokenEntry, error) {
	f := strings.Fields(s)
	switch {
	case len(f) == 0:
		return tokenEntry{}, errors.New("empty")
	case len(f) > 3:
		return tokenEntry{}, errors.New("want: <token> <identity> [<role>]")
	case len(f) == 1 && !bareOK:
		return tokenEntry{}, errors.New("want: <token> <identity> [<role>] (identity missing)")
	case len(f[0]) < MinTokenLength:
		return tokenEntry{}, fmt.Errorf("token shorter than %d characters", MinTokenLength)
	}
	e := tokenEntry{sum: sha256.Sum256([]byte(f[0])), id: Identity{Method: MethodToken}}
	if len(f) >= 2 {
		e.id.Name = f[1]
	} else {
		e.id.Name = "token-" + hex.EncodeToString(e.sum[:6])
	}
	if len(f) == 3 {
		e.id.Role = f[2]
	}
	return e, nil
}

// checkRoles reports an identity given two roles by the inline tokens,
// file (the file's entries about to be put in force) and CertRoles.
func (t *Tokens) checkRoles(file []tokenEntry) error {
	roles := map[string]string{}
	for name, role := range t.o.CertRoles {
		roles[name] = role
	}
	for _, list := range [][]tokenEntry{t.inline, file} {
		for _, e := range list {
			if r, ok := roles[e.id.Name]; ok && r != e.id.Role {
				return fmt.Errorf("identity %q has two roles (%q and %q): an identity has one role", e.id.Name, r, e.id.Role)
			}
			roles[e.id.Name] = e.id.Role
		}
	}
	return nil
}
