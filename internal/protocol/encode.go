package protocol

import (
	"encoding/json"
	"github.com/eddyrt/eddy/api"
	"strconv"
	"unicode/utf8"
)

// Message is one published message, as stored, sent between nodes and
// delivered to subscribers. It is the public API's shape, on purpose.
type Message = api.Message

// Member is one connection present in a presence channel.
type Member = api.Member

// AppendMessage appends m as a "message" frame. It is the fan-out hot path:
// the result is computed once per publish and shared by every subscriber, so
// it is written by hand instead of through reflection.
func AppendMessage(b []byte, m *Message) []byte {
	b = append(b, `{"type":"message","channel":`...)
	b = AppendString(b, m.Channel)
	b = append(b, `,"event":`...)
	b = AppendString(b, m.Event)
	b = append(b, `,"data":`...)
	if len(m.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, m.Data...)
	}
	b = append(b, `,"id":`...)
	b = AppendString(b, m.ID)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, m.TS, 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, m.Offset, 10)
	b = append(b, `,"epoch":`...)
	b = AppendString(b, m.Epoch)
	if m.User != "" {
		b = append(b, `,"user":`...)
		b = AppendString(b, m.User)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so a frame is always valid text.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// The rarer frames go through encoding/json: clarity beats speed off the hot path.

type readyFrame struct {
	Type string `json:"type"`
	Conn string `json:"conn"`
	User string `json:"user"`
}

// Ready encodes the reply to a successful auth.
func Ready(conn, user string) []byte {
	return mustMarshal(readyFrame{TypeReady, conn, user})
}

// Subscribed is the reply to subscribe.
type Subscribed struct {
	Type      string   `json:"type"`
	ID        uint64   `json:"id"`
	Channel   string   `json:"channel"`
	Epoch     string   `json:"epoch"`
	Offset    uint64   `json:"offset"`
	Recovered *bool    `json:"recovered,omitempty"`
	Members   []Member `json:"members,omitempty"`
}

// Encode returns the frame's bytes.
func (s Subscribed) Encode() []byte {
	s.Type = TypeSubscribed
	return mustMarshal(s)
}

type channelReply struct {
	Type    string `json:"type"`
	ID      uint64 `json:"id"`
	Channel string `json:"channel"`
}

// Unsubscribed is the reply to unsubscribe.
func Unsubscribed(id uint64, channel string) []byte {
	return mustMarshal(channelReply{TypeUnsubscribed, id, channel})
}

type ackFrame struct {
	Type string `json:"type"`
	ID   uint64 `json:"id"`
	Msg  string `json:"msg,omitempty"`
}

// Ack is the reply to publish; msgID names the published message.
func Ack(id uint64, msgID string) []byte { return mustMarshal(ackFrame{TypeAck, id, msgID}) }

type refreshedFrame struct {
	Type string `json:"type"`
	ID   uint64 `json:"id"`
	Exp  int64  `json:"exp"`
}

// Refreshed is the reply to refresh.
func Refreshed(id uint64, exp int64) []byte {
	return mustMarshal(refreshedFrame{TypeRefreshed, id, exp})
}

type idFrame struct {
	Type string `json:"type"`
	ID   uint64 `json:"id"`
}

// Pong is the reply to ping.
func Pong(id uint64) []byte { return mustMarshal(idFrame{TypePong, id}) }

type membersFrame struct {
	Type    string   `json:"type"`
	ID      uint64   `json:"id"`
	Channel string   `json:"channel"`
	Members []Member `json:"members"`
}

// Members is the reply to a presence request.
func Members(id uint64, channel string, members []Member) []byte {
	if members == nil {
		members = []Member{}
	}
	return mustMarshal(membersFrame{TypeMembers, id, channel, members})
}

// PresenceEvent is a join or leave in a presence channel.
type PresenceEvent struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Action  string `json:"action"`
	Member  Member `json:"member"`
}

// Presence actions.
const (
	ActionJoin  = "join"
	ActionLeave = "leave"
)

// Encode returns the frame's bytes.
func (p PresenceEvent) Encode() []byte {
	p.Type = TypePresence
	return mustMarshal(p)
}

type errorFrame struct {
	Type    string `json:"type"`
	ID      uint64 `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorFrame encodes err as an error frame answering request id (0: none).
func ErrorFrame(id uint64, err *Error) []byte {
	return mustMarshal(errorFrame{TypeError, id, err.Code, err.Message})
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only raw JSON fields can fail, and every one was validated on the way in.
		panic("protocol: encode " + err.Error())
	}
	return b
}
