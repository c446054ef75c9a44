// Package auth verifies the JWTs that clients present (HS256 secrets, RS256,
// ES256 and EdDSA public keys, identity providers' JWKS, chosen by the
// token's kid), mints HS256 ones, and decides from their claims which
// channels a connection may use.
package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the token claims Eddy reads.
type Claims struct {
	Channels []string        `json:"channels,omitempty"`
	Publish  []string        `json:"publish,omitempty"`
	Info     json.RawMessage `json:"info,omitempty"`
	// Admin lets the connection subscribe to the status channel ($admin:status).
	Admin bool `json:"admin,omitempty"`
	// App names the app whose keys verify the token (docs/apps.md); empty: the default app.
	App string `json:"app,omitempty"`
	jwt.RegisteredClaims
}

// Identity is what a verified token grants a connection.
type Identity struct {
	User     string
	Expires  time.Time // zero: never
	Info     json.RawMessage
	Admin    bool // the admin claim: may subscribe to $admin:status
	channels []string
	publish  []string
}

// CanSubscribe reports whether the identity may subscribe to channel.
func (id *Identity) CanSubscribe(channel string) bool { return MatchAny(id.channels, channel) }

// CanPublish reports whether the identity may publish to channel.
func (id *Identity) CanPublish(channel string) bool { return MatchAny(id.publish, channel) }

// NewIdentity builds an identity directly, for callers that authenticate
// another way (tests, the demo token endpoint).
func NewIdentity(user string, channels, publish []string) *Identity {
	return &Identity{User: user, channels: channels, publish: publish}
}

// Verifier checks tokens against a set of keys chosen by the token's kid
// header: several keys at once let a key be rotated without downtime.
type Verifier struct {
	keys            map[string]Key // by kid; "" is the key for tokens without one
	jwks            *JWKS          // nil: static keys only
	defaultChannels []string
	parser          *jwt.Parser
}

// NewVerifier returns a verifier for one HS256 secret (tokens without a
// kid); tokens without a channels claim get defaultChannels.
func NewVerifier(secret []byte, defaultChannels []string) *Verifier {
	v, err := NewKeyVerifier([]Key{{Alg: AlgHS256, material: secret}}, nil, defaultChannels)
	if err != nil {
		panic(err) // one key cannot collide
	}
	return v
}

// NewKeyVerifier returns a verifier for keys (at most one per kid) and,
// when jwks is not nil, the keys of an identity provider: a kid found in
// keys wins.
func NewKeyVerifier(keys []Key, jwks *JWKS, defaultChannels []string) (*Verifier, error) {
	v := &Verifier{
		keys:            make(map[string]Key, len(keys)),
		jwks:            jwks,
		defaultChannels: defaultChannels,
		parser:          jwt.NewParser(jwt.WithValidMethods(Algorithms), jwt.WithLeeway(5*time.Second)),
	}
	for _, k := range keys {
		if k.material == nil {
			return nil, fmt.Errorf("key %q: no key material", k.ID)
		}
		if _, dup := v.keys[k.ID]; dup {
			return nil, fmt.Errorf("key %q: configured twice", k.ID)
		}
		v.keys[k.ID] = k
	}
	if len(v.keys) == 0 && jwks == nil {
		return nil, errors.New("no token keys: set secret, jwt_keys or jwks_url")
	}
	return v, nil
}

// maxKidInError bounds how much of a token's strings an error repeats.
const maxKidInError = 64

// keyFor picks the token's key by kid and refuses a token signed with an
// algorithm other than the key's own. fromJWKS reports a key of jwks.
func (v *Verifier) keyFor(t *jwt.Token) (material any, fromJWKS bool, err error) {
	kid := ""
	if raw, ok := t.Header["kid"]; ok {
		s, isString := raw.(string)
		if !isString {
			return nil, false, errors.New("kid header must be a string")
		}
		kid = s
	}
	k, ok := v.keys[kid]
	if !ok && kid != "" && v.jwks != nil {
		if k, err = v.jwks.Key(kid); err == nil {
			ok, fromJWKS = true, true
		}
	}
	if !ok {
		if kid == "" {
			return nil, false, errors.New("token has no kid header and no key without a kid is configured")
		}
		return nil, false, fmt.Errorf("%w %q", errUnknownKey, truncate(kid))
	}
	if alg := t.Method.Alg(); alg != k.Alg {
		return nil, false, fmt.Errorf("token is signed with %s but key %q is %s", alg, truncate(k.ID), k.Alg)
	}
	return k.material, fromJWKS, nil
}

// truncate bounds a token-supplied string repeated in an error.
func truncate(s string) string {
	if len(s) > maxKidInError {
		return s[:maxKidInError] + "..."
	}
	return s
}

// ErrNoSubject is returned for a token without a sub claim.
var ErrNoSubject = errors.New("token has no sub claim")

// Verify checks the token's signature and expiry and returns what it grants.
func (v *Verifier) Verify(token string) (*Identity, error) {
	var c Claims
	var fromJWKS bool
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		k, jw, err := v.keyFor(t)
		fromJWKS = jw
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if fromJWKS {
		if err := v.jwks.checkClaims(&c); err != nil {
			return nil, fmt.Errorf("verify token: %w", err)
		}
	}
	if c.Subject == "" {
		return nil, ErrNoSubject
	}
	for _, p := range append(append([]string(nil), c.Channels...), c.Publish...) {
		if err := ValidatePattern(p); err != nil {
			return nil, fmt.Errorf("verify token: %w", err)
		}
	}
	id := &Identity{User: c.Subject, Info: c.Info, Admin: c.Admin, channels: c.Channels, publish: c.Publish}
	if c.Channels == nil {
		id.channels = v.defaultChannels
	}
	if c.ExpiresAt != nil {
		id.Expires = c.ExpiresAt.Time
	}
	return id, nil
}

// TokenSpec describes a token to mint.
type TokenSpec struct {
	Subject  string
	TTL      time.Duration // 0: no expiry; negative: already expired (tests)
	Channels []string      // nil: the server's default_channels
	Publish  []string
	Info     json.RawMessage
	KeyID    string // the kid header: which of the server's keys signed it ("": none)
	Admin    bool   // the admin claim ($admin:status)
	App      string // the app claim: which app's keys verify it ("": the default app)
}

// Mint signs a token for spec with secret.
func Mint(secret []byte, spec TokenSpec) (string, error) {
	if spec.Subject == "" {
		return "", ErrNoSubject
	}
	now := time.Now()
	c := Claims{
		Channels: spec.Channels,
		Publish:  spec.Publish,
		Info:     spec.Info,
		Admin:    spec.Admin,
		App:      spec.App,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:  spec.Subject,
			IssuedAt: jwt.NewNumericDate(now),
		},
	}
	if spec.TTL != 0 {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(spec.TTL))
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	if spec.KeyID != "" {
		t.Header["kid"] = spec.KeyID
	}
	s, err := t.SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}
