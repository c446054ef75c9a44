package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// The signing algorithms Eddy accepts. Each key is pinned to one of them.
const (
	AlgHS256 = "HS256"
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// Algorithms lists every accepted algorithm, for the parser and for errors.
var Algorithms = []string{AlgHS256, AlgRS256, AlgES256, AlgEdDSA}

// MinSecretBytes is the shortest HS256 secret accepted.
const MinSecretBytes = 32

// minRSABits refuses RSA keys that can be factored today.
const minRSABits = 2048

// Key is one token verification key, pinned to its algorithm: a token
// signed with another algorithm is refused even if it names this key, so
// an RSA public key can never be used as an HMAC secret (key confusion).
type Key struct {
	ID  string // the kid tokens name; empty: the key for tokens without a kid
	Alg string
	// material is []byte for HS256, *rsa.PublicKey, *ecdsa.PublicKey (P-256)
	// or ed25519.PublicKey: what the jwt library verifies each algorithm with.
	material any
}

// NewHMACKey returns an HS256 key.
func NewHMACKey(id string, secret []byte) (Key, error) {
	if len(secret) < MinSecretBytes {
		return Key{}, fmt.Errorf("key %q: HS256 secret is %d bytes; it must be at least %d", id, len(secret), MinSecretBytes)
	}
	return Key{ID: id, Alg: AlgHS256, material: append([]byte(nil), secret...)}, nil
}

// NewPublicKey returns a key for alg, checking that pub is of its kind.
func NewPublicKey(id, alg string, pub crypto.PublicKey) (Key, error) {
	bad := func(format string, a ...any) (Key, error) {
		return Key{}, fmt.Errorf("key %q: "+format, append([]any{id}, a...)...)
	}
	switch alg {
	case AlgRS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return bad("alg RS256 needs an RSA public key, got %T", pub)
		}
		if k.N.BitLen() < minRSABits {
			return bad("RSA key has %d bits; at least %d are required", k.N.BitLen(), minRSABits)
		}
		return Key{ID: id, Alg: alg, material: k}, nil
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return bad("alg ES256 needs an ECDSA P-256 public key, got %T", pub)
		}
		if k.Curve != elliptic.P256() {
			return bad("alg ES256 needs a P-256 key, got curve %s", k.Curve.Params().Name)
		}
		return Key{ID: id, Alg: alg, material: k}, nil
	case AlgEdDSA:
		switch k := pub.(type) {
		case ed25519.PublicKey:
			return Key{ID: id, Alg: alg, material: k}, nil
		case *ed25519.PublicKey:
			return Key{ID: id, Alg: alg, material: *k}, nil
		}
		return bad("alg EdDSA needs an Ed25519 public key, got %T", pub)
	case AlgHS256:
		return bad("alg HS256 takes a secret, not a public key")
	}
	return bad("unsupported alg %q (use one of %v)", alg, Algorithms)
}

// ParsePublicKeyPEM reads a PEM public key ("PUBLIC KEY", "RSA PUBLIC KEY"
// or a "CERTIFICATE", whose key is used) for alg.
func ParsePublicKeyPEM(id, alg string, data []byte) (Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return Key{}, fmt.Errorf("key %q: no PEM block found", id)
	}
	var pub crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if len(block.Type) > 64 {
			block.Type = block.Type[:64]
		}
		err = fmt.Errorf("PEM block is %q; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never a private key)", block.Type)
	}
	if err != nil {
		return Key{}, fmt.Errorf("key %q: %w", id, err)
	}
	return NewPublicKey(id, alg, pub)
}

// errUnknownKey marks a kid no configured or fetched key has.
var errUnknownKey = errors.New("unknown key id")
