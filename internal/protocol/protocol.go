// Package protocol defines Eddy's WebSocket wire protocol v1: the frames a
// client sends, the frames the server sends, error codes and channel names.
// docs/protocol.md is the prose version of this file.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	CloseServiceRestart = 1012
	CloseUnauthorized   = 4001
	CloseTooManyErrors  = 4002
	CloseTokenExpired   = 4003
	CloseAuthTimeout    = 4008
	CloseSlowConsumer   = 4009
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

// DecodeClientFrame parses one client frame and checks that it carries the
// fields its type needs, so handlers can trust what they get.
func DecodeClientFrame(b []byte) (*ClientFrame, error) {
	var f ClientFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, Errorf(CodeBadRequest, "malformed JSON frame: %v", err)
	}
	switch f.Type {
	case TypeAuth:
		if f.Token == "" {
			return &f, Errorf(CodeBadRequest, "auth frame needs a token")
		}
	case TypeRefresh:
		if f.Token == "" {
			return &f, Errorf(CodeBadRequest, "refresh frame needs a token")
		}
	case TypeSubscribe, TypeUnsubscribe, TypePresence:
		if err := ValidateChannel(f.Channel); err != nil {
			return &f, err
		}
	case TypePublish:
		if err := ValidateChannel(f.Channel); err != nil {
			return &f, err
		}
		if len(f.Data) == 0 {
			f.Data = json.RawMessage("null")
		}
	case TypePing:
	case "":
		return &f, Errorf(CodeBadRequest, "frame has no type")
	default:
		return &f, Errorf(CodeBadRequest, "unknown frame type %q", f.Type)
	}
	if f.Type != TypeAuth && f.ID == 0 {
		return &f, Errorf(CodeBadRequest, "%s frame needs a non-zero numeric id", f.Type)
	}
	return &f, nil
}

// MaxChannelLen is the longest channel name accepted.
const MaxChannelLen = 255

// ValidateChannel checks a channel name: 1-255 characters of letters, digits
// and _-:.@= (no glob characters, so a name never acts as a pattern).
func ValidateChannel(name string) error {
	if name == "" {
		return Errorf(CodeBadRequest, "channel name is empty")
	}
	if len(name) > MaxChannelLen {
		return Errorf(CodeBadRequest, "channel name is %d characters long; the limit is %d", len(name), MaxChannelLen)
	}
	for i := 0; i < len(name); i++ {
		if !channelChar(name[i]) {
			return Errorf(CodeBadRequest, "channel name %q has invalid character %q at %d; allowed are letters, digits and _-:.@=", name, name[i], i)
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

// CompactData validates data as JSON and removes insignificant white space.
// Frames are packed several to a WebSocket message separated by newlines, so
// a newline inside data would split a frame in two.
func CompactData(data json.RawMessage) (json.RawMessage, error) {
	if len(data) == 0 {
		return json.RawMessage("null"), nil
	}
	needs := false
	for _, c := range data {
		if c == '\n' || c == '\r' || c == ' ' || c == '\t' {
			needs = true
			break
		}
	}
	if !needs {
		if !json.Valid(data) {
			return nil, Errorf(CodeBadRequest, "data is not valid JSON")
		}
		return data, nil
	}
	var out bytes.Buffer
	out.Grow(len(data))
	if err := json.Compact(&out, data); err != nil {
		return nil, Errorf(CodeBadRequest, "data is not valid JSON: %v", err)
	}
	return json.RawMessage(out.Bytes()), nil
}
