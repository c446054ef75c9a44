package auth

import (
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// tokenCacheSize bounds the tokens a verifier remembers: at a few hundred
// bytes each, at most a few MiB.
const tokenCacheSize = 4096

// tokenCache remembers tokens a verifier accepted, so that the same token
// presented again (a reconnect, another tab, a token shared by a client's
// connections) skips the parse, the JSON decoding and the signature check,
// which were a fifth of the server's CPU and a third of its allocations
// per new connection.
//
// Only what cannot change is remembered: a verifier's static keys never
// change (a key rotation makes a new verifier, with an empty cache), and
// its token was checked against them byte for byte. What depends on the
// time, exp and nbf, is checked again at each use, by the parser's own
// validator. Tokens verified with a JWKS key are not remembered: the
// provider may withdraw the key. A refused token is never remembered, so
// errors are those of a full verification.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]*verifiedToken
}

type verifiedToken struct {
	claims *Claims
	id     Identity
}

// get returns a copy of what token granted when it was verified, if it is
// remembered and still valid now.
func (tc *tokenCache) get(token string, validator *jwt.Validator) (*Identity, bool) {
	tc.mu.Lock()
	e := tc.m[token]
	tc.mu.Unlock()
	if e == nil {
		return nil, false
	}
	if validator.Validate(e.claims) != nil {
		// Expired since: forget it; a full verification gives the error.
		tc.mu.Lock()
		if tc.m[token] == e {
			delete(tc.m, token)
		}
		tc.mu.Unlock()
		return nil, false
	}
	id := e.id
	return &id, true
}

// put remembers token, verified with claims, granting id. A full cache
// forgets one token (map order: an arbitrary one) first.
func (tc *tokenCache) put(token string, claims *Claims, id *Identity) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.m == nil {
		tc.m = make(map[string]*verifiedToken)
	}
	if _, ok := tc.m[token]; !ok && len(tc.m) >= tokenCacheSize {
		for k := range tc.m {
			delete(tc.m, k)
			break
		}
	}
	tc.m[token] = &verifiedToken{claims: claims, id: *id}
}
