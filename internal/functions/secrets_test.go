package functions_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/secrets"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newVault(t *testing.T, dir, key string) *secrets.Vault {
	t.Helper()
	fs, err := secrets.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := secrets.New(context.Background(), key, fs)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSecrets: ctx.secrets.NAME reads a secret set through the engine; the
// value is encrypted on disk, listed by name only, masked in what the
// function logs and in the reason of an error it throws with the value in
// its message, and separate from env.
func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	key := config.NewSecretsKey()
	var logs syncBuffer
	e := newEngine(t, functions.Options{Secrets: newVault(t, dir, key), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	const value = "sk_live_TOPSECRET_4242"
	if err := e.SetSecret(ctx, "API_KEY", value); err != nil {
		t.Fatal(err)
	}
	if err := e.PutFunction(ctx, functions.Function{Name: "leaky", Runtime: "js", Env: map[string]string{"MODE": "x"},
		Source: `function handle(m, ctx) {
  ctx.log("calling with", ctx.secrets.API_KEY, {k: ctx.secrets.API_KEY})
  if (m.data.throw) throw new Error("auth failed for key " + ctx.secrets.API_KEY)
  if (m.data.fail) ctx.publish("", "e", ctx.secrets.API_KEY)
  m.data = {len: ctx.secrets.API_KEY.length, env: ctx.env.API_KEY === undefined, names: Object.keys(ctx.secrets),
    missing: ctx.secrets.NOPE === undefined}
  ctx.secrets.API_KEY = "overwritten"
  return m
}`}); err != nil {
		t.Fatal(err)
	}
	if r := invoke(t, e, "leaky", `{}`); r.Action != "pass" ||
		string(r.Message.Data) != `{"len":22,"env":true,"names":["API_KEY"],"missing":true}` {
		t.Fatalf("read: %+v %s", r, r.Message.Data)
	}
	r := invoke(t, e, "leaky", `{"throw":true}`)
	if r.Action != "reject" || r.Reason != "auth failed for key [secret API_KEY]" {
		t.Fatalf("thrown with the secret: %+v", r)
	}
	if !strings.Contains(logs.String(), "calling with [secret API_KEY]") || strings.Contains(logs.String(), "TOPSECRET") {
		t.Fatalf("log not redacted:\n%s", logs.String())
	}
	// Assigning to ctx.secrets changes nothing.
	if r := invoke(t, e, "leaky", `{}`); !strings.Contains(string(r.Message.Data), `"len":22`) {
		t.Fatalf("after assignment: %s", r.Message.Data)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "secrets.json"))
	if err != nil || strings.Contains(string(raw), "TOPSECRET") || !strings.Contains(string(raw), "API_KEY") {
		t.Fatalf("at rest: %v %s", err, raw)
	}
	if got := e.SecretNames(); strings.Join(got, ",") != "API_KEY" {
		t.Fatalf("names: %v", got)
	}
	// Another node (another vault over the same dir) with the same key reads
	// it; with another key the secret is skipped, never served garbled.
	if v, _ := secrets.New(ctx, key, mustFileStore(t, dir)); v == nil {
		t.Fatal("reload with the same key failed")
	} else if s, ok := v.Secret("API_KEY"); !ok || s != value {
		t.Fatalf("reloaded: %q %v", s, ok)
	}
	v, err := secrets.New(ctx, config.NewSecretsKey(), mustFileStore(t, dir))
	var skipped *secrets.SkippedError
	if !errors.As(err, &skipped) || v == nil || len(v.Names()) != 0 || strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("another key: %v %v", v, err)
	}
	if err := e.DeleteSecret(ctx, "API_KEY"); err != nil {
		t.Fatal(err)
	}
	if r := invoke(t, e, "leaky", `{}`); r.Action != "reject" {
		t.Fatalf("after delete the function sees undefined: %+v", r)
	}
	if err := e.DeleteSecret(ctx, "API_KEY"); !errors.Is(err, functions.ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
}

func mustFileStore(t *testing.T, dir string) *secrets.FileStore {
	fs, err := secrets.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestSecretsBounds: names, value sizes and the count are bounded with
// errors that say which; without a secrets_key nothing is stored.
func TestSecretsBounds(t *testing.T) {
	ctx := context.Background()
	none := newEngine(t, functions.Options{})
	var br *functions.BadRequestError
	if err := none.SetSecret(ctx, "K", "0123456789"); !errors.As(err, &br) || !errors.Is(err, secrets.ErrNoKey) && !strings.Contains(err.Error(), "secrets_key is not set") {
		t.Fatalf("no key: %v", err)
	}
	e := newEngine(t, functions.Options{Secrets: newVault(t, t.TempDir(), config.NewSecretsKey())})
	for _, c := range []struct{ name, value, want string }{
		{"1ABC", "0123456789", "name"},
		{"a-b", "0123456789", "name"},
		{"SHORT", "1234567", "shorter ones could not be redacted"},
		{"HUGE", strings.Repeat("x", secrets.MaxValueBytes+1), "4096 bytes"},
	} {
		if err := e.SetSecret(ctx, c.name, c.value); !errors.As(err, &br) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a bad request containing %q", c.name, err, c.want)
		}
	}
	for i := range secrets.MaxSecrets {
		if err := e.SetSecret(ctx, "S"+strings.Repeat("x", i%3)+string(rune('A'+i%26))+string(rune('A'+i/26)), "0123456789"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.SetSecret(ctx, "ONE_MORE", "0123456789"); !errors.As(err, &br) || !strings.Contains(err.Error(), "secret_limit") {
		t.Fatalf("past the count: %v", err)
	}
	if err := e.SetSecret(ctx, "SAA", "replaced-value"); err != nil {
		t.Fatalf("replacing one at the count: %v", err)
	}
}
