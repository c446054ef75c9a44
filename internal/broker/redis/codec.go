package redis

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/eddyrt/eddy/internal/protocol"
)

// A message is stored in the history stream and sent over pub/sub as a
// compact JSON body without channel, offset and epoch: the channel is in
// the key or pub/sub channel name, the offset is the stream entry id, and
// the epoch is the channel's. Over pub/sub the publish script puts
// "M<offset>:<epoch>:" in front of the body.

// wireBody is the decoded form of a body.
type wireBody struct {
	Event string          `json:"e"`
	Data  json.RawMessage `json:"d"`
	ID    string          `json:"i"`
	TS    int64           `json:"t"`
	User  string          `json:"u"`
	X     string          `json:"x"` // Message.Exclude
}

// appendBody appends m's body; like protocol.AppendMessage it is written by
// hand because it is on the publish path.
func appendBody(b []byte, m *protocol.Message) []byte {
	b = append(b, `{"e":`...)
	b = protocol.AppendString(b, m.Event)
	b = append(b, `,"i":`...)
	b = protocol.AppendString(b, m.ID)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, m.TS, 10)
	if len(m.Data) > 0 {
		b = append(b, `,"d":`...)
		b = append(b, m.Data...)
	}
	if m.User != "" {
		b = append(b, `,"u":`...)
		b = protocol.AppendString(b, m.User)
	}
	if m.Exclude != "" {
		b = append(b, `,"x":`...)
		b = protocol.AppendString(b, m.Exclude)
	}
	return append(b, '}')
}

func decodeBody(channel string, body string, offset uint64, epoch string) (*protocol.Message, error) {
	var w wireBody
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		return nil, err
	}
	return &protocol.Message{
		Channel: channel,
		Event:   w.Event,
		Data:    w.Data,
		ID:      w.ID,
		TS:      w.TS,
		Offset:  offset,
		Epoch:   epoch,
		User:    w.User,
		Exclude: w.X,
	}, nil
}

var errBadPayload = errors.New("malformed payload")

// decodePubSub decodes "M<offset>:<epoch>:<body>".
func decodePubSub(channel, payload string) (*protocol.Message, error) {
	rest := payload[1:]
	offStr, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, errBadPayload
	}
	epoch, body, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, errBadPayload
	}
	off, err := strconv.ParseUint(offStr, 10, 64)
	if err != nil {
		return nil, errBadPayload
	}
	return decodeBody(channel, body, off, epoch)
}

// streamOffset parses a stream entry id "<offset>-0".
func streamOffset(id string) (uint64, error) {
	n, _, _ := strings.Cut(id, "-")
	return strconv.ParseUint(n, 10, 64)
}

func encodePresence(ev *protocol.PresenceEvent) ([]byte, error) {
	b := []byte{kindPresence}
	js, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return append(b, js...), nil
}

func decodePresence(js string) (*protocol.PresenceEvent, error) {
	ev := new(protocol.PresenceEvent)
	if err := json.Unmarshal([]byte(js), ev); err != nil {
		return nil, err
	}
	return ev, nil
}
