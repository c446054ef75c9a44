package functions

import (
	"context"
	"errors"
	"fmt"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/secrets"
)

// runtimeSecrets is what the runtimes read ctx.secrets through: nil
// without a vault, so they skip redaction entirely.
func (e *Engine) runtimeSecrets() fnrt.Secrets {
	if e.opts.Secrets == nil {
		return nil
	}
	return e.opts.Secrets
}

// reloadSecrets re-reads the vault (another node changed it); secrets that
// no longer decrypt are logged by name, never by value.
func (e *Engine) reloadSecrets(ctx context.Context) {
	if err := e.opts.Secrets.Reload(ctx); err != nil {
		e.log.Error("reload secrets", "err", err)
	}
}

// SetSecret stores a secret for the functions' ctx.secrets, encrypted.
// Bad names and values are *BadRequestError; without a secrets_key the
// error wraps secrets.ErrNoKey (also a bad request: the server's config,
// not the request, must change).
func (e *Engine) SetSecret(ctx context.Context, name, value string) error {
	err := e.opts.Secrets.Set(ctx, name, value)
	if errors.Is(err, secrets.ErrNoKey) || errors.Is(err, secrets.ErrInvalid) || errors.Is(err, secrets.ErrLimit) {
		return &BadRequestError{Message: err.Error()}
	}
	return err
}

// DeleteSecret removes a secret; a missing one wraps ErrNotFound.
func (e *Engine) DeleteSecret(ctx context.Context, name string) error {
	err := e.opts.Secrets.Delete(ctx, name)
	if errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("secret %q: %w", name, ErrNotFound)
	}
	return err
}

// SecretNames lists the secrets' names: values never leave the server.
func (e *Engine) SecretNames() []string { return e.opts.Secrets.Names() }
