package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestEvictedHistoryRecoversAsFalse: when max_history_bytes evicts a
// channel's history to make room for newer channels, a client recovering
// from it is told recovered:false with the current position (it must
// reload), never given a partial replay; eviction is counted.
func TestEvictedHistoryRecoversAsFalse(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["h"] = config.ChannelOptions{HistorySize: 10}
		c.MaxHistoryBytes = 20 << 10
	})
	api := s.API()
	data := strings.Repeat("x", 1000)
	for i := 0; i < 3; i++ {
		if _, err := api.Publish(t.Context(), "h:old", "e", data); err != nil {
			t.Fatal(err)
		}
	}
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	sub := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "h:old"})
	epoch := sub.Str("epoch")
	ws.Request(map[string]any{"type": "unsubscribe", "id": 2, "channel": "h:old"})
	if r := ws.Request(map[string]any{"type": "subscribe", "id": 3, "channel": "h:old", "since": map[string]any{"epoch": epoch, "offset": 1}}); r["recovered"] != true {
		t.Fatalf("before eviction: %v, want recovered", r)
	}
	ws.Request(map[string]any{"type": "unsubscribe", "id": 4, "channel": "h:old"})
	for i := 0; i < 40; i++ { // 40 KB of newer history: past the 20 KiB bound
		if _, err := api.Publish(t.Context(), fmt.Sprintf("h:new%d", i), "e", data); err != nil {
			t.Fatal(err)
		}
	}
	r := ws.Request(map[string]any{"type": "subscribe", "id": 5, "channel": "h:old", "since": map[string]any{"epoch": epoch, "offset": 1}})
	if r.Type() != "subscribed" || r["recovered"] != false || r.Num("offset") != 3 {
		t.Fatalf("after eviction: %v, want subscribed recovered:false at offset 3", r)
	}
	if v := metricValue(t, s, "eddy_history_evicted_total"); v == "" || v == "0" {
		t.Fatalf("eddy_history_evicted_total = %q, want evictions counted", v)
	}
}

// TestOneUsersLargePublishesStayWithinMaxHistoryBytes: the report's case,
// eight connections of one user publishing 60 KB messages to distinct
// channels with history, leaves the node's history within
// max_history_bytes, the newest channels keeping theirs.
func TestOneUsersLargePublishesStayWithinMaxHistoryBytes(t *testing.T) {
	const bound = 1 << 20
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["big"] = config.ChannelOptions{HistorySize: 100}
		c.MaxHistoryBytes = bound
	})
	data := `"` + strings.Repeat("x", 60_000) + `"`
	var conns []*servertest.WS
	for range 8 {
		conns = append(conns, servertest.Connect(t, s.WSURL, servertest.Token(t, "mallory", nil, []string{"big:*"})))
	}
	acked := 0
	for round := 0; round < 4; round++ {
		for i, ws := range conns {
			id := round*len(conns) + i + 1
			ws.Send(fmt.Sprintf(`{"type":"publish","id":%d,"channel":"big:%d","event":"e","data":%s}`, id, id, data))
		}
		for _, ws := range conns {
			if f := ws.Next(); f.Type() == "ack" {
				acked++
			} else {
				t.Fatalf("publish: %v", f)
			}
		}
	}
	if acked != 32 { // 1.9 MB of history offered
		t.Fatalf("%d of 32 acked", acked)
	}
	kept := metricValue(t, s, "eddy_history_bytes")
	var n int64
	if _, err := fmt.Sscan(kept, &n); err != nil || n <= 0 || n > bound {
		t.Fatalf("eddy_history_bytes = %q, want within max_history_bytes (%d)", kept, bound)
	}
	if h, err := s.API().History(t.Context(), "big:32", 0, 0); err != nil || len(h.Messages) != 1 {
		t.Fatalf("the newest channel's history: %v %v, want kept", h, err)
	}
	if v := metricValue(t, s, "eddy_history_evicted_total"); v == "" || v == "0" {
		t.Fatalf("eddy_history_evicted_total = %q, want evictions", v)
	}
}
