// Package auth verifies and mints the HS256 JWTs that clients present, and
// decides from their claims which channels a connection may use.
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
	jwt.RegisteredClaims
}

// Identity is what a verified token grants a connection.
type Identity struct {
	User     string
	Expires  time.Time // zero: never
	Info     json.RawMessage
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

// Verifier checks tokens signed with one application's secret.
type Verifier struct {
	secret          []byte
	defaultChannels []string
	parser          *jwt.Parser
}

// NewVerifier returns a verifier for secret; tokens without a channels claim
// get defaultChannels.
func NewVerifier(secret []byte, defaultChannels []string) *Verifier {
	return &Verifier{
		secret:          secret,
		defaultChannels: defaultChannels,
		parser:          jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithLeeway(5*time.Second)),
	}
}

// ErrNoSubject is returned for a token without a sub claim.
var ErrNoSubject = errors.New("token has no sub claim")

// Verify checks the token's signature and expiry and returns what it grants.
func (v *Verifier) Verify(token string) (*Identity, error) {
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.secret, nil })
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if c.Subject == "" {
		return nil, ErrNoSubject
	}
	for _, p := range append(append([]string(nil), c.Channels...), c.Publish...) {
		if err := ValidatePattern(p); err != nil {
			return nil, fmt.Errorf("verify token: %w", err)
		}
	}
	id := &Identity{User: c.Subject, Info: c.Info, channels: c.Channels, publish: c.Publish}
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
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:  spec.Subject,
			IssuedAt: jwt.NewNumericDate(now),
		},
	}
	if spec.TTL != 0 {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(spec.TTL))
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}
