package nats

import (
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Headers of the stored and republished messages.
const (
	hdrOffset = "Eddy-Offset"
	hdrEpoch  = "Eddy-Epoch"
	hdrKind   = "Eddy-Kind" // absent on messages
)

// Values of hdrKind.
const (
	kindEpoch    = "epoch"    // marker at offset 0 that fixes a channel's epoch
	kindPresence = "presence" // a join or leave, on the delivery subject only
)

// token encodes a channel name or connection id as one subject token.
func token(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func untoken(t string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	return string(b), err
}

// wireBody is a message without channel, offset and epoch: those are in
// the subject and the headers.
type wireBody struct {
	Event string          `json:"e"`
	Data  json.RawMessage `json:"d"`
	ID    string          `json:"i"`
	TS    int64           `json:"t"`
	User  string          `json:"u"`
	X     string          `json:"x"` // Message.Exclude
}

// appendBody is written by hand because it is on the publish path.
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

func decodeBody(channel string, body []byte, offset uint64, epoch string) (*protocol.Message, error) {
	var w wireBody
	if err := json.Unmarshal(body, &w); err != nil {
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
