package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestPublishRatePerUserIsSharedByItsConnections: a user's connections
// draw on one bucket of publish_rate_per_user, so opening more connections
// does not buy more publishes; another user has a bucket of its own.
func TestPublishRatePerUserIsSharedByItsConnections(t *testing.T) {
	const perUser = 4
	s := servertest.Start(t, func(c *config.Config) {
		c.PublishRate = 10000 // never the limit here
		c.PublishRatePerUser = perUser
	})
	pub := []string{"*"}
	var alice []*servertest.WS
	for range 4 {
		alice = append(alice, servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, pub)))
	}
	start := time.Now()
	acked, limited := 0, 0
	id := 0
	for _, ws := range alice {
		for range 8 {
			id++
			f := ws.Request(map[string]any{"type": "publish", "id": id, "channel": "r:" + string(rune('a'+id%26)), "event": "e", "data": id})
			switch {
			case f.Type() == "ack":
				acked++
			case f.Str("code") == "rate_limited" && strings.Contains(f.Str("message"), "publish_rate_per_user"):
				limited++
			default:
				t.Fatalf("publish %d: %v", id, f)
			}
		}
	}
	// The bucket holds perUser and refills perUser a second: whatever the
	// machine's speed, no more than that can have been accepted.
	bound := perUser + int(float64(perUser)*time.Since(start).Seconds()) + 1
	if acked > bound || limited == 0 || acked+limited != 32 {
		t.Fatalf("32 publishes over 4 connections of one user: %d acked, %d limited; want at most %d acked", acked, limited, bound)
	}
	bob := servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", nil, pub))
	if f := bob.Request(map[string]any{"type": "publish", "id": 1, "channel": "r:b", "event": "e", "data": 1}); f.Type() != "ack" {
		t.Fatalf("another user's publish: %v, want ack", f)
	}
}
