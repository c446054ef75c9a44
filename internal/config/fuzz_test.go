package config

import (
	"testing"

	"github.com/knadh/koanf/v2"
)

// FuzzLoad feeds arbitrary bytes to the loader as the config file (what
// Load does after reading it): it must give a config or an error, never
// panic, and a config it gives must validate.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("listen: \":8080\"\nsecret: \"0123456789abcdef0123456789abcdef\"\n"))
	f.Add([]byte("namespaces:\n  chat: { history_size: 100, history_ttl: 10m, presence: true, join_leave: true }\n"))
	f.Add([]byte("jwt_keys:\n  - { kid: a, alg: HS256, secret: \"0123456789abcdef0123456789abcdef\" }\n  - { kid: b, alg: RS256, public_key_file: k.pem }\n"))
	f.Add([]byte("api_keys: [a, b]\ntls_cert: c\ntls_key: k\njwks_url: https://x/jwks\n"))
	f.Add([]byte("acme_domains: [a.example]\nacme_ca: https://ca/dir\n"))
	f.Add([]byte("jwt_keys: [[1], {kid: {a: b}}]\nnamespaces: [1, 2]\nchannel_defaults: 5\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k := koanf.New(".")
		if err := mergeFile(k, data); err != nil {
			return
		}
		c, err := load(k, nil)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("the loader returned a config that does not validate: %v", err)
		}
	})
}
