package nats

import (
	"encoding/json"
	"testing"

	"github.com/eddyrt/eddy/internal/protocol"
)

// TestBodyKeepsExclude: the Pusher sender a message must skip (socket_id)
// crosses nodes with it; a message without one encodes as before.
func TestBodyKeepsExclude(t *testing.T) {
	for _, exclude := range []string{"123.45", ""} {
		m := &protocol.Message{Event: "e", Data: json.RawMessage(`"d"`), ID: "m-1", TS: 7, User: "u", Exclude: exclude}
		body := appendBody(nil, m)
		got, err := decodeBody("c", body, 1, "E")
		if err != nil {
			t.Fatal(err)
		}
		if got.Exclude != exclude || got.User != "u" || string(got.Data) != `"d"` {
			t.Fatalf("%s -> %+v", body, got)
		}
		if exclude == "" && json.Valid(body) && string(body) != `{"e":"e","i":"m-1","t":7,"d":"d","u":"u"}` {
			t.Fatalf("body without exclude changed: %s", body)
		}
	}
}
