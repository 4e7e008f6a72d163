package server

import (
	"log/slog"

	"github.com/httpgateway/httpgateway/internal/auth"
	"github.com/httpgateway/httpgateway/internal/config"
)

// newAuthenticator builds the authentication the configuration asks for.
// With no authentication configured at all (no tokens, no client CA) every
// call is anonymous, so `gateway serve` works with no setup; once any is
// configured, anonymous calls are refused unless allow-anonymous is set.
func newAuthenticator(cfg config.Config, log *slog.Logger) (*auth.Authenticator, error) {
	o := auth.Options{AllowAnonymous: cfg.AnonymousAllowed(), Roles: cfg.AuthRoleMap()}
	if cfg.AuthTokensFile != "" || len(cfg.AuthTokens) > 0 {
		tokens, err := auth.NewTokens(auth.TokensOptions{File: cfg.AuthTokensFile, Inline: cfg.AuthTokens, Logger: log, CertRoles: o.Roles})
		if err != nil {
			return nil, err
		}
		o.Tokens = tokens
	}
	log.Info("authentication", "tokens", cfg.AuthTokensFile != "" || len(cfg.AuthTokens) > 0,
		"mtls", cfg.TLSClientCAFile != "", "anonymous", o.AllowAnonymous)
	return auth.New(o), nil
}
