package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestParseJWKSKeepsOnlyUsableSigningKeys(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	eb, _ := ek.PublicKey.Bytes()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	dk, _, _ := ed25519.GenerateKey(rand.Reader)
	rsaJWK := func(kid string, k *rsa.PublicKey, extra string) string {
		return fmt.Sprintf(`{"kty":"RSA","kid":%q,"n":%q,"e":%q%s}`, kid, enc(k.N.Bytes()), enc(big.NewInt(int64(k.E)).Bytes()), extra)
	}
	offCurve := append([]byte(nil), eb...)
	offCurve[64] ^= 1
	doc := `{"keys":[` + strings.Join([]string{
		rsaJWK("rsa", &rk.PublicKey, `,"alg":"RS256","use":"sig"`),
		rsaJWK("rsa-enc", &rk.PublicKey, `,"use":"enc"`),
		rsaJWK("rsa-ps", &rk.PublicKey, `,"alg":"PS256"`),
		rsaJWK("rsa-1024", &small.PublicKey, ``),
		rsaJWK("", &rk.PublicKey, ``),
		fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":"ec","x":%q,"y":%q}`, enc(eb[1:33]), enc(eb[33:])),
		fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":"ec-off","x":%q,"y":%q}`, enc(offCurve[1:33]), enc(offCurve[33:])),
		fmt.Sprintf(`{"kty":"EC","crv":"P-384","kid":"ec-384","x":%q,"y":"AA"}`, enc(p384.X.Bytes())),
		fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":"ec-as-rs","alg":"RS256","x":%q,"y":%q}`, enc(eb[1:33]), enc(eb[33:])),
		fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","kid":"ed","alg":"EdDSA","x":%q}`, enc(dk)),
		`{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}`,
	}, ",") + `]}`
	keys, err := ParseJWKS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rsa": AlgRS256, "ec": AlgES256, "ed": AlgEdDSA}
	if len(keys) != len(want) {
		t.Fatalf("kept %d keys %v, want %v", len(keys), keys, want)
	}
	for kid, alg := range want {
		if keys[kid].Alg != alg {
			t.Fatalf("key %q: %+v, want alg %s", kid, keys[kid], alg)
		}
	}
	// A symmetric key in a JWKS is never used: that would let whoever
	// reads the (public) set sign tokens.
	if _, err := ParseJWKS([]byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`)); err == nil || !strings.Contains(err.Error(), "no usable signing key") {
		t.Fatalf("oct-only set: %v", err)
	}
	if _, err := ParseJWKS([]byte(`{"keys":[` + rsaJWK("a", &rk.PublicKey, "") + "," + rsaJWK("a", &rk.PublicKey, "") + `]}`)); err == nil || !strings.Contains(err.Error(), `kid "a" appears twice`) {
		t.Fatalf("duplicate kid: %v", err)
	}
}

// TestJWKSDropsKeysTheProviderRemoved: once the cached set is older than
// MaxAge, the next verification fetches it again, and a key the provider
// removed is refused; while the provider is down, the cached keys serve.
func TestJWKSDropsKeysTheProviderRemoved(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	x := base64.RawURLEncoding.EncodeToString(pub)
	var mu sync.Mutex
	body := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"old","x":%q},{"kty":"OKP","crv":"Ed25519","kid":"new","x":%q}]}`, x, x)
	up := true
	refusedFetches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			refusedFetches++
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	set := NewJWKS(srv.URL, JWKSOptions{MinRefresh: time.Millisecond, MaxAge: 20 * time.Millisecond})
	v, err := NewKeyVerifier(nil, set, []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "al"})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, kid := range []string{"old", "new"} {
		if _, err := v.Verify(sign(kid)); err != nil {
			t.Fatalf("kid %s: %v", kid, err)
		}
	}
	// The provider goes down: cached keys keep working, also once the set
	// is stale and a fetch has failed.
	mu.Lock()
	up = false
	mu.Unlock()
	for failed := 0; failed == 0; {
		if _, err := v.Verify(sign("old")); err != nil {
			t.Fatalf("cached key with the provider down: %v", err)
		}
		mu.Lock()
		failed = refusedFetches
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // polling for the stale-set fetch
	}
	// The provider returns without "old".
	mu.Lock()
	up = true
	body = fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"new","x":%q}]}`, x)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Verify(sign("old"))
		if err != nil {
			if !strings.Contains(err.Error(), `unknown key id "old"`) {
				t.Fatalf("removed key: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a key the provider removed is still accepted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := v.Verify(sign("new")); err != nil {
		t.Fatalf("kept key: %v", err)
	}
}
