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
