package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// fuzzVerifier has a key without kid, one by kid, and an Ed25519 key, so
// arbitrary headers reach every branch of key selection.
func fuzzVerifier(t testing.TB) *Verifier {
	t.Helper()
	hs, _ := NewHMACKey("", secret)
	hk, _ := NewHMACKey("hk", []byte("another-secret-another-secret-12"))
	pub, _, _ := ed25519.GenerateKey(nil)
	ek, err := NewPublicKey("ek", AlgEdDSA, pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewKeyVerifier([]Key{hs, hk, ek}, nil, []string{"public:*"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkIdentity holds for every identity a verifier grants.
func checkIdentity(t *testing.T, id *Identity) {
	t.Helper()
	if id.User == "" {
		t.Fatal("accepted a token without sub")
	}
	for _, p := range append(append([]string(nil), id.channels...), id.publish...) {
		if err := ValidatePattern(p); err != nil {
			t.Fatalf("accepted an invalid pattern: %v", err)
		}
	}
	if id.Info != nil && !json.Valid(id.Info) {
		t.Fatalf("info is not JSON: %q", id.Info)
	}
}

// FuzzVerify verifies arbitrary token strings: refused with an error or,
// when accepted, granting a well-formed identity; never a panic.
func FuzzVerify(f *testing.F) {
	v := fuzzVerifier(f)
	good, _ := Mint(secret, TokenSpec{Subject: "al", TTL: time.Hour, Channels: []string{"chat:*"}})
	kid, _ := Mint([]byte("another-secret-another-secret-12"), TokenSpec{Subject: "al", KeyID: "hk"})
	for _, s := range []string{good, kid, "", "a.b.c", "...", good + ".x",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "eyJhbGciOiJFZERTQSIsImtpZCI6ImVrIn0.eyJzdWIiOiJ4In0.AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(token)
		if err != nil {
			if id != nil {
				t.Fatal("identity returned with an error")
			}
			return
		}
		checkIdentity(t, id)
	})
}

// FuzzVerifyClaims signs arbitrary header and claims JSON with the right
// key, so the claims decoding and checks after the signature see anything.
func FuzzVerifyClaims(f *testing.F) {
	v := fuzzVerifier(f)
	f.Add(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"al","channels":["chat:*"],"publish":["chat:*"],"info":{"n":1}}`)
	f.Add(`{"alg":"HS256","kid":"hk"}`, `{"sub":"al","exp":1e300}`)
	f.Add(`{"alg":"HS256","kid":7}`, `{"sub":"al"}`)
	f.Add(`{"alg":"HS256"}`, `{"sub":"","channels":"*"}`)
	f.Add(`{"alg":"HS256"}`, `{"sub":"al","channels":[""],"nbf":-1,"iat":"x","aud":[1]}`)
	f.Add(`{"alg":"HS256"}`, `{"sub":"al","info":"\ud800"}`)
	f.Add(`{"alg":"HS256","crit":["x"]}`, `[]`)
	f.Fuzz(func(t *testing.T, header, claims string) {
		enc := base64.RawURLEncoding
		signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
		key := secret
		if strings.Contains(header, `"hk"`) {
			key = []byte("another-secret-another-secret-12")
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(signing))
		id, err := v.Verify(signing + "." + enc.EncodeToString(m.Sum(nil)))
		if err != nil {
			return
		}
		checkIdentity(t, id)
	})
}

// FuzzParseJWKS reads arbitrary JWKS documents (fetched from the network):
// keys or an error, never a panic, and every key pinned to a known alg.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","alg":"RS256","n":"AQAB","e":"AQAB"},{"kty":"oct","k":"x"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if kid == "" || k.ID != kid || k.material == nil {
				t.Fatalf("key %q: %+v", kid, k)
			}
			if k.Alg != AlgRS256 && k.Alg != AlgES256 && k.Alg != AlgEdDSA {
				t.Fatalf("key %q pinned to %q", kid, k.Alg)
			}
		}
	})
}
