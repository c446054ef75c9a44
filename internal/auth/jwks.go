package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultJWKSMinRefresh is the least time between two fetches of a JWKS
// (setting jwks_min_refresh). Tokens naming an unknown kid trigger a fetch;
// without this bound anyone could make the server hammer the identity
// provider by sending tokens with made-up kids.
const DefaultJWKSMinRefresh = 10 * time.Second

// JWKSMaxAge is how long fetched keys are used before the next token
// verification fetches the set again, so a key the provider removed stops
// being accepted within this time.
const JWKSMaxAge = time.Hour

// jwksFetchTimeout bounds one fetch of the set.
const jwksFetchTimeout = 10 * time.Second

// maxJWKSBytes bounds the JWKS document read; real ones are a few KiB.
const maxJWKSBytes = 1 << 20

// JWKSOptions tune a JWKS.
type JWKSOptions struct {
	Client     *http.Client  // nil: http.Client with a 10 s timeout
	MinRefresh time.Duration // 0: DefaultJWKSMinRefresh
	MaxAge     time.Duration // 0: JWKSMaxAge
	// OnError, when set, hears about failed fetches (the server logs them):
	// clients only learn that the kid is unknown.
	OnError func(error)
	// Issuer and Audience, when set, must be the iss claim and among the
	// aud claim of every token verified by a key of this set: a provider's
	// keys sign tokens for all its applications, not only this one.
	Issuer   string
	Audience string
}

// JWKS is a JSON Web Key Set fetched from an identity provider's URL
// (Cognito, Auth0, Keycloak...), cached, and fetched again when a token
// names a kid it lacks (at most once per MinRefresh) or when it is older
// than JWKSMaxAge. Keys are pinned to their algorithm: the JWK's alg, or
// the only one Eddy accepts for its key type.
type JWKS struct {
	url  string
	opts JWKSOptions

	keys atomic.Pointer[jwksState]

	mu          sync.Mutex // one fetch at a time; guards lastAttempt
	lastAttempt time.Time
}

type jwksState struct {
	keys    map[string]Key
	fetched time.Time
}

// NewJWKS returns a key set fetched from url on first use.
func NewJWKS(url string, opts JWKSOptions) *JWKS {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: jwksFetchTimeout}
	}
	if opts.MinRefresh <= 0 {
		opts.MinRefresh = DefaultJWKSMinRefresh
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = JWKSMaxAge
	}
	return &JWKS{url: url, opts: opts}
}

// Refresh fetches the set now, whatever the rate bound (at startup).
func (j *JWKS) Refresh(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lastAttempt = time.Now()
	return j.fetch(ctx)
}

// Key returns the key kid names, fetching the set again if kid is unknown
// or the set is stale and the last fetch is at least MinRefresh ago.
func (j *JWKS) Key(kid string) (Key, error) {
	st := j.keys.Load()
	if st != nil && time.Since(st.fetched) < j.opts.MaxAge {
		if k, ok := st.keys[kid]; ok {
			return k, nil
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	// Another caller may have fetched while this one waited.
	if st2 := j.keys.Load(); st2 != st {
		st = st2
		if k, ok := st.keys[kid]; ok {
			return k, nil
		}
	}
	if time.Since(j.lastAttempt) >= j.opts.MinRefresh {
		j.lastAttempt = time.Now()
		// Bounded even with a client without a timeout: verifications of
		// unknown kids wait for this fetch.
		ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
		err := j.fetch(ctx)
		cancel()
		if err != nil && j.opts.OnError != nil {
			j.opts.OnError(err)
		}
		st = j.keys.Load()
	}
	// A stale set still serves its keys when the provider is unreachable.
	if st != nil {
		if k, ok := st.keys[kid]; ok {
			return k, nil
		}
	}
	return Key{}, errUnknownKey
}

// fetch replaces the cached set with the one at the URL; j.mu held.
func (j *JWKS) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", j.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks %s: status %s", j.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("jwks %s: read: %w", j.url, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("jwks %s: document over %d bytes", j.url, maxJWKSBytes)
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", j.url, err)
	}
	j.keys.Store(&jwksState{keys: keys, fetched: time.Now()})
	return nil
}

// checkClaims applies the issuer and audience the set requires.
func (j *JWKS) checkClaims(c *Claims) error {
	if j.opts.Issuer != "" && c.Issuer != j.opts.Issuer {
		return fmt.Errorf("token issuer %q is not the identity provider's %q", truncate(c.Issuer), j.opts.Issuer)
	}
	if j.opts.Audience != "" && !slices.Contains(c.Audience, j.opts.Audience) {
		return fmt.Errorf("token audience does not include %q", j.opts.Audience)
	}
	return nil
}

// jwk holds the members of a JSON Web Key (RFC 7517, 7518, 8037) Eddy reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS reads a JWKS document into keys by kid. Keys Eddy cannot use
// (encryption keys, other algorithms, no kid) are skipped, as providers
// publish such keys beside the signing ones; a set with no usable key is
// an error.
func ParseJWKS(data []byte) (map[string]Key, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("malformed JWKS: %w", err)
	}
	keys := map[string]Key{}
	var skipped []error
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		k, err := j.key()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		if _, dup := keys[k.ID]; dup {
			return nil, fmt.Errorf("kid %q appears twice", k.ID)
		}
		keys[k.ID] = k
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no usable signing key (%w)", errors.Join(skipped...))
	}
	return keys, nil
}

func (j jwk) key() (Key, error) {
	if j.Kid == "" {
		return Key{}, errors.New("no kid")
	}
	if j.Use != "" && j.Use != "sig" {
		return Key{}, fmt.Errorf("use %q is not sig", j.Use)
	}
	// The algorithm each key type implies when the JWK has no alg.
	implied := map[string]string{"RSA": AlgRS256, "EC": AlgES256, "OKP": AlgEdDSA}[j.Kty]
	alg := j.Alg
	if alg == "Ed25519" { // RFC 9864's name for EdDSA with Ed25519
		alg = AlgEdDSA
	}
	if alg == "" {
		alg = implied
	}
	if implied == "" || alg != implied {
		return Key{}, fmt.Errorf("kty %q with alg %q is not supported", j.Kty, j.Alg)
	}
	switch j.Kty {
	case "RSA":
		n, err1 := b64(j.N)
		e, err2 := b64(j.E)
		if err := errors.Join(err1, err2); err != nil {
			return Key{}, fmt.Errorf("RSA key %q: %w", j.Kid, err)
		}
		if len(e) == 0 || len(e) > 4 {
			return Key{}, fmt.Errorf("RSA key %q: exponent of %d bytes", j.Kid, len(e))
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		if exp < 3 || exp%2 == 0 {
			return Key{}, fmt.Errorf("RSA key %q: invalid exponent %d", j.Kid, exp)
		}
		return NewPublicKey(j.Kid, alg, &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp})
	case "EC":
		if j.Crv != "P-256" {
			return Key{}, fmt.Errorf("EC key %q: curve %q is not supported (P-256 only)", j.Kid, j.Crv)
		}
		x, err1 := b64(j.X)
		y, err2 := b64(j.Y)
		if err := errors.Join(err1, err2); err != nil {
			return Key{}, fmt.Errorf("EC key %q: %w", j.Kid, err)
		}
		if len(x) != 32 || len(y) != 32 {
			return Key{}, fmt.Errorf("EC key %q: coordinates must be 32 bytes", j.Kid)
		}
		// Checks that the point is on the curve.
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return Key{}, fmt.Errorf("EC key %q: %w", j.Kid, err)
		}
		return NewPublicKey(j.Kid, alg, pub)
	default: // OKP
		if j.Crv != "Ed25519" {
			return Key{}, fmt.Errorf("OKP key %q: curve %q is not supported (Ed25519 only)", j.Kid, j.Crv)
		}
		x, err := b64(j.X)
		if err != nil {
			return Key{}, fmt.Errorf("OKP key %q: %w", j.Kid, err)
		}
		if len(x) != ed25519.PublicKeySize {
			return Key{}, fmt.Errorf("OKP key %q: x must be %d bytes", j.Kid, ed25519.PublicKeySize)
		}
		return NewPublicKey(j.Kid, alg, ed25519.PublicKey(x))
	}
}

func b64(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad base64url: %w", err)
	}
	return b, nil
}
