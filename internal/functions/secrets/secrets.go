// Package secrets keeps the secrets functions read as ctx.secrets.NAME:
// encrypted at rest with the server's secrets_key (AES-256-GCM, the name
// as additional data so a sealed value cannot be moved to another name),
// in the data dir on one node or in Redis in a cluster, decrypted only in
// memory. Values are never returned by the API; Vault.Redact hides them in
// what functions log and in their error messages.
//
// Scope: one set of secrets per app; every function of the app may read
// every secret (Eddy has one app, "default", for now).
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Bounds.
const (
	MaxSecrets    = 64
	MaxValueBytes = 4 << 10
	// MinValueBytes: a value shorter than this could not be redacted from
	// logs without mangling them (every "a" would become the mask).
	MinValueBytes = 8
)

// KeyPrefix starts every secrets_key, so it is not mistaken for another key.
const KeyPrefix = "esk_"

// Mask replaces a secret's value in logs and error messages.
func Mask(name string) string { return "[secret " + name + "]" }

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// ErrNoKey means secrets cannot be stored because the server has no
// secrets_key.
var ErrNoKey = errors.New("secrets_key is not set: the server refuses to store secrets it cannot encrypt")

// ErrLimit is wrapped by errors of a secret past a bound.
var ErrLimit = errors.New("secret_limit: secrets exceed their limits")

// ErrInvalid is wrapped by errors of a bad name or value.
var ErrInvalid = errors.New("invalid secret")

// ErrNotFound is wrapped by errors about a missing secret.
var ErrNotFound = errors.New("secret not found")

// NewKey returns a fresh secrets_key.
func NewKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseKey checks a secrets_key.
func ParseKey(s string) ([]byte, error) {
	raw, ok := strings.CutPrefix(s, KeyPrefix)
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if !ok || err != nil || len(b) != 32 {
		return nil, fmt.Errorf("secrets_key must be %q followed by 32 bytes in unpadded base64url (make one with 'eddy init')", KeyPrefix)
	}
	return b, nil
}

// Store persists sealed values by name. Implementations are safe for
// concurrent use; a cluster store makes a Put visible to every node's Load
// and tells the other nodes to reload.
type Store interface {
	Load(ctx context.Context) (map[string][]byte, error)
	Put(ctx context.Context, name string, sealed []byte) error
	Delete(ctx context.Context, name string) error
}

// Vault encrypts, stores and serves secrets. The zero value is unusable;
// a nil *Vault has no secrets and refuses to store any (ErrNoKey).
type Vault struct {
	aead  cipher.AEAD
	store Store
	mu    sync.Mutex // serializes changes
	cur   atomic.Pointer[map[string]string]
}

// New returns a vault over store with the given secrets_key, loaded. With
// a *SkippedError it also returns the vault, serving what decrypted.
func New(ctx context.Context, key string, store Store) (*Vault, error) {
	k, err := ParseKey(key)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	v := &Vault{aead: aead, store: store}
	empty := map[string]string{}
	v.cur.Store(&empty)
	if err := v.Reload(ctx); err != nil {
		var skipped *SkippedError
		if errors.As(err, &skipped) {
			return v, err // serve the rest; the caller logs which were skipped
		}
		return nil, err
	}
	return v, nil
}

// SkippedError names the stored secrets that did not decrypt (another
// secrets_key, or altered data); the vault serves the others.
type SkippedError struct{ Names []string }

func (e *SkippedError) Error() string {
	return "secrets that do not decrypt with this secrets_key (skipped): " + strings.Join(e.Names, ", ")
}

func (v *Vault) seal(name, value string) []byte {
	nonce := make([]byte, v.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return v.aead.Seal(nonce, nonce, []byte(value), []byte(name))
}

func (v *Vault) open(name string, sealed []byte) (string, error) {
	n := v.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed value is truncated")
	}
	out, err := v.aead.Open(nil, sealed[:n], sealed[n:], []byte(name))
	if err != nil {
		return "", errors.New("cannot decrypt (another secrets_key, or the stored value was altered)")
	}
	return string(out), nil
}

// Reload re-reads the store (after another node's change). Secrets that
// do not decrypt are left out and reported; the rest are served.
func (v *Vault) Reload(ctx context.Context) error {
	if v == nil {
		return nil
	}
	sealed, err := v.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load secrets: %w", err)
	}
	m := make(map[string]string, len(sealed))
	var bad []string
	for name, s := range sealed {
		val, err := v.open(name, s)
		if err != nil {
			bad = append(bad, name)
			continue
		}
		m[name] = val
	}
	v.cur.Store(&m)
	if bad != nil {
		slices.Sort(bad)
		return &SkippedError{Names: bad}
	}
	return nil
}

// Set stores value under name, encrypted.
func (v *Vault) Set(ctx context.Context, name, value string) error {
	if v == nil {
		return ErrNoKey
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q: use 1-64 letters, digits or _, not starting with a digit (it is read as ctx.secrets.NAME)", ErrInvalid, name)
	}
	if len(value) < MinValueBytes || len(value) > MaxValueBytes {
		return fmt.Errorf("%w: the value is %d bytes; a secret is %d to %d bytes (shorter ones could not be redacted from logs)", ErrInvalid, len(value), MinValueBytes, MaxValueBytes)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	cur := *v.cur.Load()
	if _, ok := cur[name]; !ok && len(cur) >= MaxSecrets {
		return fmt.Errorf("%w: there are %d secrets, the limit is %d", ErrLimit, len(cur), MaxSecrets)
	}
	if err := v.store.Put(ctx, name, v.seal(name, value)); err != nil {
		return fmt.Errorf("store secret %s: %w", name, err)
	}
	next := maps.Clone(cur)
	next[name] = value
	v.cur.Store(&next)
	return nil
}

// Delete removes a secret.
func (v *Vault) Delete(ctx context.Context, name string) error {
	if v == nil {
		return fmt.Errorf("secret %q: %w", name, ErrNotFound)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	cur := *v.cur.Load()
	if _, ok := cur[name]; !ok {
		return fmt.Errorf("secret %q: %w", name, ErrNotFound)
	}
	if err := v.store.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete secret %s: %w", name, err)
	}
	next := maps.Clone(cur)
	delete(next, name)
	v.cur.Store(&next)
	return nil
}

// Names lists the secrets, sorted: never their values.
func (v *Vault) Names() []string {
	if v == nil {
		return []string{}
	}
	return slices.Sorted(maps.Keys(*v.cur.Load()))
}

// Secret returns a secret's value.
func (v *Vault) Secret(name string) (string, bool) {
	if v == nil {
		return "", false
	}
	s, ok := (*v.cur.Load())[name]
	return s, ok
}

// Redact replaces every secret value in s by its Mask; longer values
// first, so that a value containing another is masked whole.
func (v *Vault) Redact(s string) string {
	if v == nil {
		return s
	}
	cur := *v.cur.Load()
	if len(cur) == 0 || s == "" {
		return s
	}
	names := slices.SortedFunc(maps.Keys(cur), func(a, b string) int { return len(cur[b]) - len(cur[a]) })
	for _, n := range names {
		if strings.Contains(s, cur[n]) {
			s = strings.ReplaceAll(s, cur[n], Mask(n))
		}
	}
	return s
}
