// Package protocol defines Eddy's WebSocket wire protocol v1: the frames a
// client sends, the frames the server sends, error codes and channel names.
// docs/protocol.md is the prose version of this file.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Frame types a client sends.
const (
	TypeAuth        = "auth"
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypePublish     = "publish"
	TypeRefresh     = "refresh"
	TypePing        = "ping"
	TypePresence    = "presence"
)

// Frame types the server sends.
const (
	TypeReady        = "ready"
	TypeSubscribed   = "subscribed"
	TypeUnsubscribed = "unsubscribed"
	TypeAck          = "ack"
	TypeRefreshed    = "refreshed"
	TypePong         = "pong"
	TypeMessage      = "message"
	TypeMembers      = "members"
	TypeError        = "error"
)

// Error codes are stable words that clients switch on.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeTooLarge     = "too_large"
	CodeRateLimited  = "rate_limited"
	CodeRejected     = "rejected"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// WebSocket close codes the server uses.
const (
	CloseGoingAway      = 1001
	CloseInvalidText    = 1007 // a text frame that is not valid UTF-8 (RFC 6455 8.1)
	CloseServiceRestart = 1012
	CloseUnauthorized   = 4001
	CloseTooManyErrors  = 4002
	CloseTokenExpired   = 4003
	CloseAuthTimeout    = 4008
	CloseSlowConsumer   = 4009
	CloseAppDeleted     = 4011 // the connection's app was deleted: do not reconnect
)

// Position is a place in a channel's stream.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// ClientFrame is any frame a client sends; which fields matter depends on Type.
type ClientFrame struct {
	Type    string          `json:"type"`
	ID      uint64          `json:"id,omitempty"`
	Token   string          `json:"token,omitempty"`
	Channel string          `json:"channel,omitempty"`
	Event   string          `json:"event,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Since   *Position       `json:"since,omitempty"`
}

// Error is a protocol error: a code from the list above and a human message.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds a protocol error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as a protocol error, mapping anything unknown to
// ErrInternal: an unknown error's text never reaches a client, so a caller
// that may get one logs it.
func AsError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return ErrInternal
}

// PeekID returns the request id of a frame that is refused before it is
// decoded in full (too large): 0 when it has none or is not JSON.
func PeekID(b []byte) uint64 {
	var f struct {
		ID uint64 `json:"id"`
	}
	_ = json.Unmarshal(b, &f)
	return f.ID
}

// DecodeClientFrame parses one client frame and checks that it carries the
// fields its type needs, so handlers can trust what they get.
func DecodeClientFrame(b []byte) (*ClientFrame, error) {
	var f ClientFrame
	if decodeFlat(b, &f) {
		// Printable ASCII only: valid UTF-8, nothing json would change.
		return checkClientFrame(&f)
	}
	return decodeClientFrameJSON(b)
}

// decodeClientFrameJSON is DecodeClientFrame through encoding/json, for
// any frame decodeFlat does not take.
func decodeClientFrameJSON(b []byte) (*ClientFrame, error) {
	var f ClientFrame
	if err := json.Unmarshal(b, &f); err != nil {
		if derr := DiagnoseEnvelope("frame", b); derr != nil {
			return nil, derr
		}
		return nil, Errorf(CodeBadRequest, "malformed JSON frame: %v", err)
	}
	if !utf8.Valid(b) {
		// encoding/json quietly turns invalid UTF-8 in a string into U+FFFD
		// (RawMessage data keeps it as is): refuse it instead, saying where.
		// Only binary messages get here: a text message must be UTF-8.
		if err := DiagnoseEnvelope("frame", b); err != nil {
			return &f, err
		}
	}
	return checkClientFrame(&f)
}

// checkClientFrame checks that f carries the fields its type needs.
func checkClientFrame(f *ClientFrame) (*ClientFrame, error) {
	switch f.Type {
	case TypeAuth:
		if f.Token == "" {
			return f, Errorf(CodeBadRequest, "auth frame needs a token")
		}
	case TypeRefresh:
		if f.Token == "" {
			return f, Errorf(CodeBadRequest, "refresh frame needs a token")
		}
	case TypeSubscribe, TypeUnsubscribe:
		if err := validateSubscribeChannel(f.Channel); err != nil {
			return f, err
		}
	case TypePresence:
		if err := ValidateChannel(f.Channel); err != nil {
			return f, err
		}
	case TypePublish:
		if err := ValidateChannel(f.Channel); err != nil {
			return f, err
		}
		if len(f.Data) == 0 {
			f.Data = json.RawMessage("null")
		}
	case TypePing:
	case "":
		return f, Errorf(CodeBadRequest, "frame has no type")
	default:
		return f, Errorf(CodeBadRequest, "unknown frame type %q", f.Type)
	}
	if f.Type != TypeAuth && f.ID == 0 {
		return f, Errorf(CodeBadRequest, "%s frame needs a non-zero numeric id", f.Type)
	}
	return f, nil
}

// MaxChannelLen is the longest channel name accepted.
const MaxChannelLen = 255

// ValidateChannel checks a channel name: 1-255 characters of letters, digits
// and _-:.@= (no glob characters, so a name never acts as a pattern).
func ValidateChannel(name string) error {
	if name == "" {
		return Errorf(CodeBadRequest, "channel name is empty")
	}
	if name == StatusChannel {
		return Errorf(CodeForbidden, "%s", reservedMessage)
	}
	if len(name) > MaxChannelLen {
		return Errorf(CodeBadRequest, "channel name is %d characters long; the limit is %d", len(name), MaxChannelLen)
	}
	for i := 0; i < len(name); i++ {
		if !channelChar(name[i]) {
			r, _ := utf8.DecodeRuneInString(name[i:])
			return Errorf(CodeBadRequest, "channel name %q has invalid character %q at byte %d; allowed are ASCII letters, digits and _-:.@=", name, r, i)
		}
	}
	return nil
}

func channelChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '_', '-', ':', '.', '@', '=':
		return true
	}
	return false
}

// Namespace is the part of a channel name before the first ':' ("" if none).
func Namespace(channel string) string {
	for i := 0; i < len(channel); i++ {
		if channel[i] == ':' {
			return channel[:i]
		}
	}
	return ""
}

// CompactData checks data (see CheckData) and removes insignificant white
// space. Frames are packed several to a WebSocket message separated by
// newlines, so a newline inside data would split a frame in two.
func CompactData(data json.RawMessage) (json.RawMessage, error) {
	if len(data) == 0 {
		return json.RawMessage("null"), nil
	}
	ws, err := checkJSON(data, "data", false)
	if err != nil {
		return nil, err
	}
	if !ws {
		return data, nil
	}
	var out bytes.Buffer
	out.Grow(len(data))
	if err := json.Compact(&out, data); err != nil {
		// checkJSON accepted it, so this is a bug, not bad input.
		return nil, fmt.Errorf("compact checked data: %w", err)
	}
	return json.RawMessage(out.Bytes()), nil
}
