package config

import (
	"fmt"
	"net/url"
	"strings"
)

// jwtAlgs are the algorithms a jwt_keys entry may name (internal/auth).
var jwtAlgs = map[string]bool{"HS256": true, "RS256": true, "ES256": true, "EdDSA": true}

// validateKeysAndTLS checks the token keys, API keys, TLS and ACME
// settings for shape; reading the files they name is the server's job.
func (c *Config) validateKeysAndTLS() error {
	kids := map[string]bool{}
	for i, k := range c.JWTKeys {
		where := fmt.Sprintf("jwt_keys[%d]", i)
		switch {
		case k.KID == "":
			return fmt.Errorf("%s: kid is missing (the key for tokens without a kid is secret)", where)
		case kids[k.KID]:
			return fmt.Errorf("%s: kid %q appears twice", where, k.KID)
		case !jwtAlgs[k.Alg]:
			return fmt.Errorf("%s (kid %q): alg must be HS256, RS256, ES256 or EdDSA, got %q", where, k.KID, k.Alg)
		case k.Alg == "HS256" && (k.Secret == "" || k.PublicKeyFile != ""):
			return fmt.Errorf("%s (kid %q): alg HS256 takes a secret and no public_key_file", where, k.KID)
		case k.Alg == "HS256" && len(k.Secret) < 32:
			return fmt.Errorf("%s (kid %q): secret is %d bytes long; it must be at least 32", where, k.KID, len(k.Secret))
		case k.Alg != "HS256" && (k.PublicKeyFile == "" || k.Secret != ""):
			return fmt.Errorf("%s (kid %q): alg %s takes a public_key_file and no secret", where, k.KID, k.Alg)
		}
		kids[k.KID] = true
	}
	for i, k := range c.APIKeys {
		if strings.TrimSpace(k) == "" {
			return fmt.Errorf("api_keys[%d]: empty key", i)
		}
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("jwks_url: must be an http(s) URL, got %q", c.JWKSURL)
		}
	}
	if c.JWKSURL == "" && (c.JWKSIssuer != "" || c.JWKSAudience != "") {
		return fmt.Errorf("jwks_issuer and jwks_audience need jwks_url")
	}
	if c.JWKSMinRefresh <= 0 {
		return fmt.Errorf("jwks_min_refresh: must be positive, got %s", c.JWKSMinRefresh)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("tls_cert and tls_key: set both or neither")
	}
	if c.TLSCert != "" && len(c.ACMEDomains) > 0 {
		return fmt.Errorf("tls_cert and acme_domains: choose one way to get certificates")
	}
	if len(c.ACMEDomains) == 0 && (c.ACMEEmail != "" || c.ACMECA != "" || c.ACMECARoot != "") {
		return fmt.Errorf("acme_email, acme_ca and acme_ca_root need acme_domains")
	}
	for i, d := range c.ACMEDomains {
		if d == "" || strings.ContainsAny(d, "/: *") {
			return fmt.Errorf("acme_domains[%d]: %q is not a domain name", i, d)
		}
	}
	if c.ACMECA != "" {
		u, err := url.Parse(c.ACMECA)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("acme_ca: must be an https directory URL, got %q", c.ACMECA)
		}
	}
	if len(c.ACMEDomains) > 0 && c.DataDir == "" {
		return fmt.Errorf("acme_domains: needs data_dir to keep certificates and the account key")
	}
	return nil
}
