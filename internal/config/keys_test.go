package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestKeySettingsLoadFromFileEnvAndFlags(t *testing.T) {
	path := writeConfig(t, `
secret: "0123456789abcdef0123456789abcdef"
api_key: old
api_keys: [new]
jwt_keys:
  - { kid: "2026-01", alg: HS256, secret: "k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1" }
  - { kid: idp, alg: RS256, public_key_file: /etc/eddy/idp.pem }
jwks_url: https://idp.example/.well-known/jwks.json
tls_cert: /etc/eddy/cert.pem
tls_key: /etc/eddy/key.pem
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []JWTKey{{KID: "2026-01", Alg: "HS256", Secret: "k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1"}, {KID: "idp", Alg: "RS256", PublicKeyFile: "/etc/eddy/idp.pem"}}
	if len(c.JWTKeys) != 2 || c.JWTKeys[0] != want[0] || c.JWTKeys[1] != want[1] {
		t.Fatalf("jwt_keys = %+v", c.JWTKeys)
	}
	if len(c.APIKeys) != 1 || c.APIKeys[0] != "new" || c.JWKSMinRefresh != 10*time.Second || !c.TLSEnabled() {
		t.Fatalf("config %+v", c)
	}

	// The variable and the flag take JSON; the flag wins.
	t.Setenv("EDDY_JWT_KEYS", `[{"kid":"env","alg":"EdDSA","public_key_file":"/k.pem"}]`)
	t.Setenv("EDDY_API_KEYS", "a, b")
	c, err = Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.JWTKeys) != 1 || c.JWTKeys[0].KID != "env" || len(c.APIKeys) != 2 || c.APIKeys[1] != "b" {
		t.Fatalf("from the environment: jwt_keys %+v, api_keys %q", c.JWTKeys, c.APIKeys)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{`--jwt-keys=[{"kid":"flag","alg":"ES256","public_key_file":"/e.pem"}]`}); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path, fs); err != nil || len(c.JWTKeys) != 1 || c.JWTKeys[0].KID != "flag" {
		t.Fatalf("from the flag: %+v, %v", c.JWTKeys, err)
	}
}

func TestKeyAndTLSSettingsRefusedByName(t *testing.T) {
	cases := []struct{ name, body, env, want string }{
		{"unknown member", "jwt_keys: [{kid: a, alg: HS256, secrte: x}]\n", "", `jwt_keys[0]: unknown member "secrte"`},
		{"not a list", "jwt_keys: {kid: a}\n", "", "jwt_keys: must be a list"},
		{"entry not an object", "jwt_keys: [a]\n", "", "jwt_keys[0]: must be an object"},
		{"number kid", "jwt_keys: [{kid: 7, alg: HS256}]\n", "", "jwt_keys[0].kid: must be a string"},
		{"duplicate kid", "jwt_keys: [{kid: a, alg: EdDSA, public_key_file: x}, {kid: a, alg: EdDSA, public_key_file: y}]\n", "", `jwt_keys[1]: kid "a" appears twice`},
		{"public key with secret", "jwt_keys: [{kid: a, alg: RS256, secret: x, public_key_file: y}]\n", "", "alg RS256 takes a public_key_file and no secret"},
		{"HS256 with file", "jwt_keys: [{kid: a, alg: HS256, public_key_file: y}]\n", "", "alg HS256 takes a secret"},
		{"bad JSON in the variable", "", "[{", "EDDY_JWT_KEYS: must be a JSON list of objects"},
		{"cert without key", "tls_cert: c.pem\n", "", "tls_cert and tls_key: set both or neither"},
		{"tls and acme", "tls_cert: c\ntls_key: k\nacme_domains: [a.example]\n", "", "choose one way"},
		{"acme email alone", "acme_email: a@b.c\n", "", "need acme_domains"},
		{"acme ca over http", "acme_domains: [a.example]\nacme_ca: http://ca/dir\n", "", "acme_ca: must be an https directory URL"},
		{"acme domain with port", "acme_domains: [\"a.example:443\"]\n", "", `acme_domains[0]: "a.example:443" is not a domain name`},
		{"jwks url", "jwks_url: ftp://x\n", "", "jwks_url: must be an http(s) URL"},
		{"jwks refresh", "jwks_min_refresh: 0s\n", "", "jwks_min_refresh: must be positive"},
		{"issuer without jwks", "jwks_issuer: https://idp\n", "", "jwks_issuer and jwks_audience need jwks_url"},
		{"empty api key", "api_keys: [\"\"]\n", "", "api_keys[0]: empty key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("EDDY_JWT_KEYS", c.env)
			}
			_, err := Load(writeConfig(t, c.body), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}
