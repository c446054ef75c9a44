package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// withClock makes v read the time from now, for its parser and the cache's
// checks alike.
func withClock(v *Verifier, now func() time.Time) {
	opts := parserOptions(jwt.WithTimeFunc(now))
	v.parser = jwt.NewParser(opts...)
	v.validator = jwt.NewValidator(opts...)
}

func TestVerifyRemembersAcceptedTokens(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	v := NewVerifier(secret, []string{"news:*"})
	tok, err := Mint(secret, TokenSpec{Subject: "al", TTL: time.Hour, Publish: []string{"chat:*"}, Info: []byte(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.verified.m[tok]; !ok {
		t.Fatal("an accepted token is not remembered")
	}
	again, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if again == first || !reflect.DeepEqual(again, first) {
		t.Fatalf("remembered token gave %+v (same pointer: %v), first verification %+v", again, again == first, first)
	}
	if !again.CanSubscribe("news:x") || again.CanSubscribe("chat:x") || !again.CanPublish("chat:x") {
		t.Fatalf("remembered token's grants changed: %+v", again)
	}
	// Refused tokens are not remembered, and still refused.
	bad := tok[:len(tok)-2] + "AA"
	for range 2 {
		if _, err := v.Verify(bad); err == nil {
			t.Fatal("token with a wrong signature accepted")
		}
	}
	if _, ok := v.verified.m[bad]; ok {
		t.Fatal("a refused token is remembered")
	}
	// Another verifier (a rotated secret) does not know the token.
	other := NewVerifier([]byte("another-secret-another-secret-xx"), nil)
	if _, err := other.Verify(tok); err == nil {
		t.Fatal("token accepted by a verifier with another secret")
	}
}

// TestVerifyRemembersTimeChecks: a remembered token is refused once it
// expires, or while it is not yet valid, with the error a verifier that
// never saw it gives.
func TestVerifyRemembersTimeChecks(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	v := NewVerifier(secret, nil)
	withClock(v, clock)
	fresh := func() *Verifier {
		f := NewVerifier(secret, nil)
		withClock(f, clock)
		return f
	}
	exp, err := Mint(secret, TokenSpec{Subject: "al", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	nbf := signClaims(t, secret, jwt.MapClaims{"sub": "al", "nbf": time.Now().Add(time.Minute).Unix()})
	if _, err := v.Verify(exp); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(2 * time.Minute))
	if _, err := v.Verify(nbf); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(exp)
	_, want := fresh().Verify(exp)
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("expired remembered token: %v; a fresh verifier says %v", err, want)
	}
	offset.Store(0)
	_, err = v.Verify(nbf)
	_, want = fresh().Verify(nbf)
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("remembered token before its nbf: %v; a fresh verifier says %v", err, want)
	}
}

func signClaims(t *testing.T, secret []byte, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVerifyDoesNotRememberJWKSTokens: tokens verified with a provider's key are
// verified each time (TestJWKSDropsKeysTheProviderRemoved shows why).
func TestVerifyDoesNotRememberJWKSTokens(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	body := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":%q}]}`, base64.RawURLEncoding.EncodeToString(pub))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }))
	defer srv.Close()
	v, err := NewKeyVerifier(nil, NewJWKS(srv.URL, JWKSOptions{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "al"})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(s); err != nil {
		t.Fatal(err)
	}
	if len(v.verified.m) != 0 {
		t.Fatal("a token verified with a JWKS key is remembered")
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	var tc tokenCache
	for i := range tokenCacheSize + 100 {
		tc.put(strconv.Itoa(i), &Claims{}, &Identity{User: "u"})
	}
	if n := len(tc.m); n != tokenCacheSize {
		t.Fatalf("cache holds %d tokens, want %d", n, tokenCacheSize)
	}
}
