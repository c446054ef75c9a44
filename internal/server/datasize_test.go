package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestDataOverMaxMessageBytesIsRefused covers the range the body limit
// (max_message_bytes + 4 KiB) lets through to the publish: data a little
// over max_message_bytes is refused with too_large over HTTP and over the
// WebSocket, data at the limit is published, and a subscriber sees only that.
func TestDataOverMaxMessageBytesIsRefused(t *testing.T) {
	const limit = 1024
	s := servertest.Start(t, func(c *config.Config) { c.MaxMessageBytes = limit })
	sub := servertest.Connect(t, s.WSURL, servertest.Token(t, "reader", nil, nil))
	sub.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "big"})

	// A JSON string of n bytes, quotes included.
	data := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` }
	body := func(d string) string { return `{"channel":"big","event":"e","data":` + d + `}` }

	over := body(data(limit + 1))
	if len(over) >= limit+4096 {
		t.Fatalf("the body (%d bytes) must stay under the body limit to reach the data check", len(over))
	}
	status, eb, raw := doRaw(t, "POST", s.Base+"/api/v1/publish", servertest.APIKey, over)
	if status != 413 || eb.Error.Code != "too_large" || !strings.Contains(eb.Error.Message, "max_message_bytes") {
		t.Fatalf("HTTP publish of %d bytes of data: %d %s, want 413 too_large naming max_message_bytes", limit+1, status, raw)
	}
	// Whitespace counts too: the limit is on the data as sent.
	padded := `[` + strings.Repeat(" ", limit) + `1]`
	if status, eb, raw := doRaw(t, "POST", s.Base+"/api/v1/publish", servertest.APIKey, body(padded)); status != 413 || eb.Error.Code != "too_large" {
		t.Fatalf("HTTP publish of padded data: %d %s, want 413 too_large", status, raw)
	}

	pub := servertest.Connect(t, s.WSURL, servertest.Token(t, "writer", nil, []string{"big"}))
	pub.Send(`{"type":"publish","id":5,"channel":"big","event":"e","data":` + data(limit+1) + `}`)
	pub.ExpectError("too_large")

	// At the limit: published, and the only message the subscriber gets.
	at := data(limit)
	if status, _, raw := doRaw(t, "POST", s.Base+"/api/v1/publish", servertest.APIKey, body(at)); status != 200 {
		t.Fatalf("HTTP publish of exactly max_message_bytes of data: %d %s", status, raw)
	}
	m := sub.Expect("message")
	if got, _ := json.Marshal(m["data"]); string(got) != at {
		t.Fatalf("delivered %d bytes of data, want the %d-byte message at the limit", len(got), limit)
	}
	expectNoMessages(t, sub)
}
