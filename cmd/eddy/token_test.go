package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/auth"
)

func TestTokenKidSignsWithThatJWTKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eddy.yaml")
	body := `secret: "0123456789abcdef0123456789abcdef"
api_key: k
jwt_keys:
  - { kid: "2026-07", alg: HS256, secret: "fedcba9876543210fedcba9876543210" }
  - { kid: idp, alg: EdDSA, public_key_file: /nonexistent.pem }
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runRoot("token", "--config", path, "--sub", "carol", "--kid", "2026-07")
	if err != nil {
		t.Fatalf("token: %v %s", err, out)
	}
	// Only the server's key of that kid verifies it.
	k, _ := auth.NewHMACKey("2026-07", []byte("fedcba9876543210fedcba9876543210"))
	v, _ := auth.NewKeyVerifier([]auth.Key{k}, nil, []string{"*"})
	if id, err := v.Verify(strings.TrimSpace(out)); err != nil || id.User != "carol" {
		t.Fatalf("verify the minted token: %v", err)
	}
	if _, err := auth.NewVerifier([]byte("0123456789abcdef0123456789abcdef"), nil).Verify(strings.TrimSpace(out)); err == nil {
		t.Fatal("a token minted for kid 2026-07 verified with the secret")
	}
	for kid, want := range map[string]string{"nope": "no jwt_keys entry has this kid", "idp": "eddy mints only HS256 tokens"} {
		if _, err := runRoot("token", "--config", path, "--sub", "carol", "--kid", kid); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("--kid %s: %v, want %q", kid, err, want)
		}
	}
}
