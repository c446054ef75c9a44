package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

const (
	secretA = "key-A-secret-key-A-secret-key-A-secret"
	secretB = "key-B-secret-key-B-secret-key-B-secret"
)

// authReply dials url, sends an auth frame with token and returns the
// server's first frame; for a refusal, also the close code.
func authReply(t *testing.T, url, token string) (servertest.Frame, uint16) {
	t.Helper()
	ws := servertest.Dial(t, url)
	ws.Send(map[string]any{"type": "auth", "token": token})
	f := ws.Next()
	if f.Type() == "ready" {
		_ = ws.Conn.NetConn().Close()
		return f, 0
	}
	return f, ws.CloseCode()
}

// expectAccepted fails unless token authenticates as sub.
func expectAccepted(t *testing.T, url, token, sub string) {
	t.Helper()
	f, _ := authReply(t, url, token)
	if f.Type() != "ready" || f.Str("user") != sub {
		t.Fatalf("token refused: %v", f)
	}
}

// expectRefused fails unless token is refused with unauthorized, close 4001
// and a message containing want.
func expectRefused(t *testing.T, url, token, want string) {
	t.Helper()
	f, code := authReply(t, url, token)
	if f.Type() != "error" || f.Str("code") != "unauthorized" || !strings.Contains(f.Str("message"), want) || code != 4001 {
		t.Fatalf("got %v (close %d), want unauthorized containing %q and close 4001", f, code, want)
	}
}

func hsToken(t *testing.T, secret, kid, sub string) string {
	t.Helper()
	tok, err := auth.Mint([]byte(secret), auth.TokenSpec{Subject: sub, TTL: time.Hour, KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// restart stops s and starts a server with cfg on the same address, as an
// operator restarting with an edited config would.
func restart(t *testing.T, s *servertest.Server, cfg config.Config) *servertest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Listen = s.Addr().String()
	return servertest.Start(t, func(c *config.Config) { *c = cfg })
}

func TestJWTKeysChosenByKidAndRotated(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.JWTKeys = []config.JWTKey{{KID: "A", Alg: "HS256", Secret: secretA}, {KID: "B", Alg: "HS256", Secret: secretB}}
	})
	// Every key works at once: the secret for tokens without a kid, A and B by kid.
	expectAccepted(t, s.WSURL, servertest.Token(t, "plain", nil, nil), "plain")
	expectAccepted(t, s.WSURL, hsToken(t, secretA, "A", "alice"), "alice")
	expectAccepted(t, s.WSURL, hsToken(t, secretB, "B", "bob"), "bob")
	// A kid nobody configured is refused by name.
	expectRefused(t, s.WSURL, hsToken(t, secretA, "C", "carol"), `unknown key id "C"`)
	// The kid chooses the key: a token naming A but signed with B's secret fails.
	expectRefused(t, s.WSURL, hsToken(t, secretB, "A", "mallory"), "signature is invalid")
	// A kid header that is not a string.
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x"})
	tok.Header["kid"] = 7
	signed, _ := tok.SignedString([]byte(secretA))
	expectRefused(t, s.WSURL, signed, "kid header must be a string")

	// Rotation done: A removed from the config, the server restarted.
	cfg := s.Config
	cfg.JWTKeys = cfg.JWTKeys[1:]
	s = restart(t, s, cfg)
	expectRefused(t, s.WSURL, hsToken(t, secretA, "A", "alice"), `unknown key id "A"`)
	expectAccepted(t, s.WSURL, hsToken(t, secretB, "B", "bob"), "bob")
}

func TestServerWithoutSecretRefusesTokensWithoutKid(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Secret = ""
		c.JWTKeys = []config.JWTKey{{KID: "A", Alg: "HS256", Secret: secretA}}
	})
	expectAccepted(t, s.WSURL, hsToken(t, secretA, "A", "alice"), "alice")
	expectRefused(t, s.WSURL, hsToken(t, servertest.Secret, "", "plain"), "no kid header")
}

func TestAPIKeysRotated(t *testing.T) {
	const newKey = "the-new-api-key"
	s := servertest.Start(t, func(c *config.Config) { c.APIKeys = []string{newKey} })
	publish := func(key string) error {
		c := api.NewClient(s.APIBase(), key)
		// A fresh connection each time: a kept-alive one to the server
		// before the restart would answer EOF.
		c.HTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		_, err := c.Publish(context.Background(), "news", "e", "x")
		return err
	}
	// Old and new keys both publish while backends move to the new one.
	for _, k := range []string{servertest.APIKey, newKey} {
		if err := publish(k); err != nil {
			t.Fatalf("publish with %q: %v", k, err)
		}
	}
	if err := publish("neither-key"); !isStatus(err, 401) || !strings.Contains(err.Error(), "wrong API key") {
		t.Fatalf("publish with a wrong key: %v, want 401 wrong API key", err)
	}
	// Rotation done: the new key is the only one.
	cfg := s.Config
	cfg.APIKey, cfg.APIKeys = newKey, nil
	s = restart(t, s, cfg)
	if err := publish(servertest.APIKey); !isStatus(err, 401) {
		t.Fatalf("old key after rotation: %v, want 401", err)
	}
	if err := publish(newKey); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
}

// keyPair is a generated asymmetric key: its signer for tokens and its
// public key for the server.
type keyPair struct {
	alg    string
	method jwt.SigningMethod
	priv   any
	pub    any
}

func newKeyPairs(t *testing.T) []keyPair {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dpub, dpriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []keyPair{
		{"RS256", jwt.SigningMethodRS256, rk, &rk.PublicKey},
		{"ES256", jwt.SigningMethodES256, ek, &ek.PublicKey},
		{"EdDSA", jwt.SigningMethodEdDSA, dpriv, dpub},
	}
}

func signToken(t *testing.T, m jwt.SigningMethod, key any, kid, sub string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pemPublic(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestPublicKeyFilesVerifyTheirAlgorithmOnly(t *testing.T) {
	pairs := newKeyPairs(t)
	dir := t.TempDir()
	var keys []config.JWTKey
	for _, p := range pairs {
		path := filepath.Join(dir, p.alg+".pem")
		if err := os.WriteFile(path, pemPublic(t, p.pub), 0o600); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, config.JWTKey{KID: "k-" + p.alg, Alg: p.alg, PublicKeyFile: path})
	}
	s := servertest.Start(t, func(c *config.Config) { c.JWTKeys = keys })
	for _, p := range pairs {
		expectAccepted(t, s.WSURL, signToken(t, p.method, p.priv, "k-"+p.alg, "user-"+p.alg), "user-"+p.alg)
	}
	// Key confusion: an HS256 token whose HMAC secret is the RSA key's
	// public PEM (which an attacker has) naming the RSA key.
	forged := signToken(t, jwt.SigningMethodHS256, pemPublic(t, pairs[0].pub), "k-RS256", "mallory")
	expectRefused(t, s.WSURL, forged, `signed with HS256 but key "k-RS256" is RS256`)
	// A token of one asymmetric key naming another key's kid.
	expectRefused(t, s.WSURL, signToken(t, pairs[1].method, pairs[1].priv, "k-EdDSA", "mallory"), `signed with ES256 but key "k-EdDSA" is EdDSA`)
	// A token signed by the right algorithm but another key.
	other := newKeyPairs(t)[2]
	expectRefused(t, s.WSURL, signToken(t, other.method, other.priv, "k-EdDSA", "mallory"), "signature is invalid")
}

func TestBadKeyConfigRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	ecPEM := filepath.Join(dir, "ec.pem")
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := os.WriteFile(ecPEM, pemPublic(t, &ek.PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	privPEM := filepath.Join(dir, "priv.pem")
	der, _ := x509.MarshalPKCS8PrivateKey(ek)
	if err := os.WriteFile(privPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  config.JWTKey
		want string
	}{
		{"EC key declared RS256", config.JWTKey{KID: "x", Alg: "RS256", PublicKeyFile: ecPEM}, `jwt_keys[0]: key "x": alg RS256 needs an RSA public key`},
		{"private key file", config.JWTKey{KID: "x", Alg: "ES256", PublicKeyFile: privPEM}, "never a private key"},
		{"missing file", config.JWTKey{KID: "x", Alg: "ES256", PublicKeyFile: filepath.Join(dir, "none.pem")}, "no such file"},
		{"short secret", config.JWTKey{KID: "x", Alg: "HS256", Secret: "short"}, "at least 32"},
		{"unknown alg", config.JWTKey{KID: "x", Alg: "none", Secret: secretA}, `alg must be HS256, RS256, ES256 or EdDSA, got "none"`},
		{"no kid", config.JWTKey{Alg: "HS256", Secret: secretA}, "kid is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := servertest.Config()
			cfg.JWTKeys = []config.JWTKey{c.key}
			_, err := newServer(cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func newServer(cfg config.Config) (*server.Server, error) {
	return server.New(server.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
}
