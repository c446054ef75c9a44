package pusher

import (
	"encoding/json"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Protocol is the Pusher protocol version served.
const Protocol = 7

// Close and error codes of Pusher's protocol: 4000-4099 the client must
// not reconnect, 4100-4199 it reconnects after a back-off, 4200-4299 at once.
const (
	CodeSSLOnly            = 4000
	CodeAppNotFound        = 4001
	CodeAppDisabled        = 4003
	CodeOverConnQuota      = 4004
	CodePathNotFound       = 4005
	CodeInvalidVersion     = 4006
	CodeUnsupportedVersion = 4007
	CodeNoProtocol         = 4008
	CodeUnauthorized       = 4009
	CodeOverCapacity       = 4100
	CodeGenericReconnect   = 4200
	CodePongNotReceived    = 4201
	CodeClosedInactivity   = 4202
	CodeClientEventRate    = 4301
)

// Frame is an event in either direction: data is a JSON string on most
// server events (Pusher's convention) and any JSON on client events.
type Frame struct {
	Event    string          `json:"event"`
	Channel  string          `json:"channel,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	UserID   string          `json:"user_id,omitempty"`
	SocketID string          `json:"socket_id,omitempty"` // never sent; accepted and ignored
}

// Encode returns f as one message.
func (f Frame) Encode() []byte {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err) // data was checked JSON on the way in
	}
	return b
}

// StringData returns v's JSON encoding as a JSON string: Pusher's server
// events carry their data that way.
func StringData(v any) json.RawMessage {
	inner, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return protocol.AppendString(nil, string(inner))
}

// ErrorFrame is pusher:error with a code (0: none) and a message.
func ErrorFrame(code int, message string) []byte {
	type errData struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	d := errData{Message: message}
	if code != 0 {
		d.Code = &code
	}
	data, _ := json.Marshal(d)
	return Frame{Event: "pusher:error", Data: data}.Encode()
}

// AppendEvent appends the frame a subscriber gets for a published message:
// {"event":..,"channel":..,"data":"..."}, data as a string (a message
// published as a JSON string keeps its text; any other JSON value is sent
// as its encoding, in a string), user_id when set. It is written by hand:
// it runs once per publish on the fan-out path, like protocol.AppendMessage.
func AppendEvent(b []byte, event, channel string, data json.RawMessage, userID string) []byte {
	b = append(b, `{"event":`...)
	b = protocol.AppendString(b, event)
	b = append(b, `,"channel":`...)
	b = protocol.AppendString(b, channel)
	b = append(b, `,"data":`...)
	switch {
	case len(data) == 0:
		b = append(b, `""`...)
	case data[0] == '"':
		b = append(b, data...)
	default:
		b = protocol.AppendString(b, string(data))
	}
	if userID != "" {
		b = append(b, `,"user_id":`...)
		b = protocol.AppendString(b, userID)
	}
	return append(b, '}')
}

// AppendClientEvent is AppendEvent for a client-* event: its data is
// relayed as the client sent it (pusher-js sends an object), as Pusher does.
func AppendClientEvent(b []byte, event, channel string, data json.RawMessage, userID string) []byte {
	b = append(b, `{"event":`...)
	b = protocol.AppendString(b, event)
	b = append(b, `,"channel":`...)
	b = protocol.AppendString(b, channel)
	b = append(b, `,"data":`...)
	if len(data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, data...)
	}
	if userID != "" {
		b = append(b, `,"user_id":`...)
		b = protocol.AppendString(b, userID)
	}
	return append(b, '}')
}

// PresenceData is the data of pusher_internal:subscription_succeeded on a
// presence channel.
type PresenceData struct {
	Presence struct {
		IDs   []string                   `json:"ids"`
		Hash  map[string]json.RawMessage `json:"hash"`
		Count int                        `json:"count"`
	} `json:"presence"`
}

// ChannelData is what a presence subscription's channel_data holds.
type ChannelData struct {
	UserID   json.RawMessage `json:"user_id"` // a string or a number, as the SDKs allow
	UserInfo json.RawMessage `json:"user_info,omitempty"`
}

// UserIDString turns a user_id given as a JSON string or number into text.
func UserIDString(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, s != ""
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), true
	}
	return "", false
}
