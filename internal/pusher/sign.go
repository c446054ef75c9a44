// Package pusher holds what Eddy's Pusher Channels compatibility needs that
// is pure computation: the HMAC signatures of Pusher's HTTP API, channel
// authorisation and user sign-in, the channel name rules, and the event
// frames of protocol 7. The server (internal/server/pusher_*.go) does the
// I/O; everything here is testable without a socket.
package pusher

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxClockSkew is how far auth_timestamp may be from the server's clock,
// as Pusher allows.
const MaxClockSkew = 600 * time.Second

// HMAC returns the lower-case hex HMAC-SHA256 of msg under secret.
func HMAC(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// StringToSign is what an HTTP API request signs: "METHOD\npath\nquery",
// the query being every parameter but auth_signature, keys lower-cased and
// sorted, values as sent (unescaped), joined with & and =.
func StringToSign(method, path string, query url.Values) string {
	keys := make([]string, 0, len(query))
	lower := make(map[string]string, len(query))
	for k, v := range query {
		lk := strings.ToLower(k)
		if lk == "auth_signature" {
			continue
		}
		keys = append(keys, lk)
		if len(v) > 0 {
			lower[lk] = v[0]
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + lower[k]
	}
	return method + "\n" + path + "\n" + strings.Join(parts, "&")
}

// RequestError says which part of a request's signature failed; its text
// is safe to show to the caller (it names fields, never the secret).
type RequestError struct{ Reason string }

func (e *RequestError) Error() string { return e.Reason }

func reqErr(format string, args ...any) error {
	return &RequestError{Reason: fmt.Sprintf(format, args...)}
}

// Credentials finds the secret of an app key; ok false for an unknown key.
type Credentials func(key string) (secret string, ok bool)

// VerifyRequest checks a signed HTTP API request: auth_key known,
// auth_version 1.0, auth_timestamp within MaxClockSkew of now, body_md5
// matching a non-empty body, and auth_signature. It returns the key used.
func VerifyRequest(method, path string, query url.Values, body []byte, now time.Time, creds Credentials) (string, error) {
	key := query.Get("auth_key")
	if key == "" {
		return "", reqErr("auth_key is missing")
	}
	secret, ok := creds(key)
	if !ok {
		return "", reqErr("auth_key %q is not a key of this app", key)
	}
	if v := query.Get("auth_version"); v != "1.0" {
		return "", reqErr("auth_version must be 1.0, got %q", v)
	}
	tsText := query.Get("auth_timestamp")
	if tsText == "" {
		return "", reqErr("auth_timestamp is missing")
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return "", reqErr("auth_timestamp %q is not a number of seconds", tsText)
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > MaxClockSkew || skew < -MaxClockSkew {
		return "", reqErr("auth_timestamp %d is %s away from the server's time; at most %s is allowed", ts, skew.Round(time.Second).Abs(), MaxClockSkew)
	}
	if len(body) > 0 {
		sum := md5.Sum(body)
		want := hex.EncodeToString(sum[:])
		got := query.Get("body_md5")
		if got == "" {
			return "", reqErr("body_md5 is missing for a request with a body")
		}
		if !strings.EqualFold(got, want) {
			return "", reqErr("body_md5 does not match the body")
		}
	}
	sig := query.Get("auth_signature")
	if sig == "" {
		return "", reqErr("auth_signature is missing")
	}
	want := HMAC(secret, StringToSign(method, path, query))
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)) {
		return "", reqErr("auth_signature does not match: sign %q with the app secret", "METHOD\\npath\\nsorted query")
	}
	return key, nil
}

// SignRequest adds auth_key, auth_timestamp, auth_version, body_md5 (when
// body is not empty) and auth_signature to query, as Pusher's SDKs do. Eddy
// uses it in its tests and benchmark.
func SignRequest(key, secret, method, path string, query url.Values, body []byte, now time.Time) {
	query.Set("auth_key", key)
	query.Set("auth_timestamp", strconv.FormatInt(now.Unix(), 10))
	query.Set("auth_version", "1.0")
	if len(body) > 0 {
		sum := md5.Sum(body)
		query.Set("body_md5", hex.EncodeToString(sum[:]))
	}
	query.Set("auth_signature", HMAC(secret, StringToSign(method, path, query)))
}

// ChannelAuth is the auth a client presents for a private or presence
// channel: "key:HMAC(secret, socket_id:channel[:channel_data])".
func ChannelAuth(key, secret, socketID, channel, channelData string) string {
	msg := socketID + ":" + channel
	if channelData != "" {
		msg += ":" + channelData
	}
	return key + ":" + HMAC(secret, msg)
}

// UserAuth is the auth of pusher:signin: "key:HMAC(secret, socket_id::user::user_data)".
func UserAuth(key, secret, socketID, userData string) string {
	return key + ":" + HMAC(secret, socketID+"::user::"+userData)
}

// VerifyAuth checks an auth string against the one expected; the error
// says what differs without revealing the expected signature.
func VerifyAuth(got, want string) error {
	gk, gs, ok := strings.Cut(got, ":")
	if !ok || gs == "" {
		return fmt.Errorf("auth must be \"key:signature\"")
	}
	wk, ws, _ := strings.Cut(want, ":")
	if gk != wk {
		return fmt.Errorf("auth names key %q, not this app's key", gk)
	}
	if !hmac.Equal([]byte(strings.ToLower(gs)), []byte(ws)) {
		return fmt.Errorf("invalid signature")
	}
	return nil
}
