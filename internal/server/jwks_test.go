package server_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// jwksServer is a real identity provider's key endpoint on loopback: it
// serves the public keys it holds as a JWKS and counts the fetches.
type jwksServer struct {
	*httptest.Server
	mu       sync.Mutex
	keys     []map[string]string
	requests atomic.Int64
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.requests.Add(1)
		j.mu.Lock()
		body, _ := json.Marshal(map[string]any{"keys": j.keys})
		j.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(j.Close)
	return j
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// add publishes pub under kid (with alg in the JWK unless alg is empty).
func (j *jwksServer) add(kid, alg string, pub any) {
	m := map[string]string{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64u(k.N.Bytes()), b64u(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		b, _ := k.Bytes() // 0x04 || x || y
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64u(b[1:33]), b64u(b[33:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64u(k)
	default:
		panic(fmt.Sprintf("no JWK for %T", pub))
	}
	j.mu.Lock()
	j.keys = append(j.keys, m)
	j.mu.Unlock()
}

func TestJWKSKeysVerifyAndNewKidIsPickedUp(t *testing.T) {
	idp := newJWKSServer(t)
	pairs := newKeyPairs(t)
	idp.add("rsa-1", "RS256", pairs[0].pub)
	idp.add("ec-1", "", pairs[1].pub) // no alg: implied by the key type
	idp.add("ed-1", "EdDSA", pairs[2].pub)
	s := servertest.Start(t, func(c *config.Config) {
		c.JWKSURL = idp.URL + "/.well-known/jwks.json"
		c.JWKSMinRefresh = 50 * time.Millisecond
	})
	for i, kid := range []string{"rsa-1", "ec-1", "ed-1"} {
		p := pairs[i]
		expectAccepted(t, s.WSURL, signToken(t, p.method, p.priv, kid, "user-"+kid), "user-"+kid)
	}
	// Each key is pinned to its algorithm: an HS256 token whose secret is
	// the RSA modulus (public) naming the RSA key, and an ES256 token
	// naming the Ed25519 key.
	forged := signToken(t, jwt.SigningMethodHS256, pairs[0].pub.(*rsa.PublicKey).N.Bytes(), "rsa-1", "mallory")
	expectRefused(t, s.WSURL, forged, `signed with HS256 but key "rsa-1" is RS256`)
	expectRefused(t, s.WSURL, signToken(t, pairs[1].method, pairs[1].priv, "ed-1", "mallory"), `signed with ES256 but key "ed-1" is EdDSA`)
	// The server's secret still verifies tokens without a kid.
	expectAccepted(t, s.WSURL, servertest.Token(t, "plain", nil, nil), "plain")

	// The provider rotates: a new key appears; the server fetches the set
	// again on the first token naming it (at most once per 50 ms here).
	fresh := newKeyPairs(t)[0]
	tok := signToken(t, fresh.method, fresh.priv, "rsa-2", "rotated")
	idp.add("rsa-2", "RS256", fresh.pub)
	servertest.Eventually(t, "the new kid accepted", func() bool {
		f, _ := authReply(t, s.WSURL, tok)
		return f.Type() == "ready" && f.Str("user") == "rotated"
	})
}

func TestJWKSRefreshOnUnknownKidIsRateBounded(t *testing.T) {
	idp := newJWKSServer(t)
	p := newKeyPairs(t)[2]
	idp.add("ed-1", "EdDSA", p.pub)
	s := servertest.Start(t, func(c *config.Config) {
		c.JWKSURL = idp.URL
		c.JWKSMinRefresh = time.Hour
	})
	if n := idp.requests.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	// 100 tokens naming made-up kids: each refused by name, and together
	// they cause no fetch beyond the bound (one per hour here, and the
	// start's fetch was just now).
	for i := range 100 {
		kid := fmt.Sprintf("made-up-%d", i)
		expectRefused(t, s.WSURL, signToken(t, p.method, p.priv, kid, "x"), fmt.Sprintf("unknown key id %q", kid))
	}
	if n := idp.requests.Load(); n != 1 {
		t.Fatalf("%d fetches after 100 unknown kids, want still 1", n)
	}
	expectAccepted(t, s.WSURL, signToken(t, p.method, p.priv, "ed-1", "al"), "al")
}

func TestJWKSRefreshBoundWithShortInterval(t *testing.T) {
	// With a short interval, unknown kids do cause fetches, but never more
	// than one per interval: over 100 tokens sent faster than that, far
	// fewer fetches than tokens.
	idp := newJWKSServer(t)
	p := newKeyPairs(t)[2]
	idp.add("ed-1", "EdDSA", p.pub)
	s := servertest.Start(t, func(c *config.Config) {
		c.JWKSURL = idp.URL
		c.JWKSMinRefresh = 10 * time.Millisecond
	})
	start := time.Now()
	for i := range 100 {
		expectRefused(t, s.WSURL, signToken(t, p.method, p.priv, fmt.Sprintf("m-%d", i), "x"), "unknown key id")
	}
	elapsed := time.Since(start)
	// The bound: the start's fetch plus one per started interval.
	bound := 1 + int64(elapsed/(10*time.Millisecond)) + 1
	if n := idp.requests.Load(); n > bound || n < 2 {
		t.Fatalf("%d fetches in %s for 100 unknown kids, want 2..%d", n, elapsed, bound)
	}
}

func TestJWKSIssuerAndAudienceRequired(t *testing.T) {
	idp := newJWKSServer(t)
	p := newKeyPairs(t)[1]
	idp.add("ec-1", "ES256", p.pub)
	const iss, aud = "https://idp.example/pool-1", "eddy-app"
	s := servertest.Start(t, func(c *config.Config) {
		c.JWKSURL, c.JWKSIssuer, c.JWKSAudience = idp.URL, iss, aud
	})
	sign := func(claims jwt.MapClaims) string {
		claims["sub"] = "al"
		tok := jwt.NewWithClaims(p.method, claims)
		tok.Header["kid"] = "ec-1"
		signed, err := tok.SignedString(p.priv)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	expectAccepted(t, s.WSURL, sign(jwt.MapClaims{"iss": iss, "aud": aud}), "al")
	expectAccepted(t, s.WSURL, sign(jwt.MapClaims{"iss": iss, "aud": []string{"other-app", aud}}), "al")
	// The same provider's tokens for another application, or another pool.
	expectRefused(t, s.WSURL, sign(jwt.MapClaims{"iss": iss, "aud": "other-app"}), `token audience does not include "eddy-app"`)
	expectRefused(t, s.WSURL, sign(jwt.MapClaims{"iss": iss}), `token audience does not include "eddy-app"`)
	expectRefused(t, s.WSURL, sign(jwt.MapClaims{"iss": "https://idp.example/pool-2", "aud": aud}), `token issuer "https://idp.example/pool-2" is not`)
	// The server's own keys are not the provider's: no iss or aud needed.
	expectAccepted(t, s.WSURL, servertest.Token(t, "plain", nil, nil), "plain")
}
