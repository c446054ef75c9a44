package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
)

// newApp builds the application's key sets from cfg: the token keys (secret
// for tokens without a kid, jwt_keys by kid, jwks_url's keys by kid) and
// every API key accepted, so keys rotate by adding the new one, rolling it
// out, then removing the old.
func newApp(cfg config.Config, log *slog.Logger) (*App, error) {
	var keys []auth.Key
	if cfg.Secret != "" {
		k, err := auth.NewHMACKey("", []byte(cfg.Secret))
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		keys = append(keys, k)
	}
	for i, jk := range cfg.JWTKeys {
		var k auth.Key
		var err error
		if jk.Alg == auth.AlgHS256 {
			k, err = auth.NewHMACKey(jk.KID, []byte(jk.Secret))
		} else {
			var pemBytes []byte
			if pemBytes, err = os.ReadFile(jk.PublicKeyFile); err == nil {
				k, err = auth.ParsePublicKeyPEM(jk.KID, jk.Alg, pemBytes)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("jwt_keys[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	var jwks *auth.JWKS
	if cfg.JWKSURL != "" {
		jwks = auth.NewJWKS(cfg.JWKSURL, auth.JWKSOptions{
			MinRefresh: cfg.JWKSMinRefresh,
			Issuer:     cfg.JWKSIssuer,
			Audience:   cfg.JWKSAudience,
			OnError:    func(err error) { log.Warn("fetching the identity provider's keys failed", "err", err) },
		})
	}
	v, err := auth.NewKeyVerifier(keys, jwks, cfg.DefaultChannels)
	if err != nil {
		return nil, err
	}
	app := &App{
		Verifier: v,
		Secret:   []byte(cfg.Secret),
		APIKey:   cfg.APIKey,
		APIKeys:  append([]string{cfg.APIKey}, cfg.APIKeys...),
		AdminKey: cfg.AdminKey,
		jwks:     jwks,
	}
	return app, nil
}

// prefetchKeys fetches the identity provider's keys at start, so the first
// clients do not wait for it; a failure is logged, not fatal: the provider
// may come back, and every unknown kid retries (at the bounded rate).
func (a *App) prefetchKeys(ctx context.Context, log *slog.Logger) {
	if a.jwks == nil {
		return
	}
	if err := a.jwks.Refresh(ctx); err != nil {
		log.Warn("fetching the identity provider's keys at start failed; tokens are refused until a fetch succeeds", "err", err)
	}
}
