package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestSequentialJoinsAreSeenExactlyOnce: clients join a join_leave channel
// one after another, each waiting for its subscribed reply. Each member's
// view of every other connection (in its subscribed member list, or as a
// join event) holds it at most once, since nobody leaves; and every member
// sees each later join. Its own connection may be both listed and announced
// to it (issue 14.1: 51,777 join events for 300 members
// against 45,150 expected with write_delay 0).
func TestSequentialJoinsAreSeenExactlyOnce(t *testing.T) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run(fmt.Sprint("write_delay=", delay), func(t *testing.T) {
			const members = 300
			s := servertest.Start(t, func(c *config.Config) {
				c.Namespaces["room"] = config.ChannelOptions{Presence: true, JoinLeave: true}
				c.WriteDelay = delay
			})
			conns := make([]*servertest.WS, members+1)
			ids := make([]string, members+1)
			seen := make([]map[string]int, members+1) // per member: conn id -> times seen joining
			for i := range conns {
				user := fmt.Sprint("u", i)
				if i == members {
					user = "sentinel"
				}
				ws := servertest.Connect(t, s.WSURL, servertest.Token(t, user, nil, nil))
				f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:seq"})
				if f.Type() != "subscribed" {
					t.Fatalf("member %d: %v", i, f)
				}
				seen[i] = map[string]int{}
				for c := range memberConns(f) {
					seen[i][c]++
				}
				conns[i] = ws
			}
			// Each connection's id: from its own entry in the last member's
			// events or list is not enough; ask the API, which lists them all.
			byUser := map[string]string{}
			for c, u := range apiMembers(t, s, "room:seq") {
				byUser[u] = c
			}
			for i := range ids {
				user := fmt.Sprint("u", i)
				if i == members {
					user = "sentinel"
				}
				ids[i] = byUser[user]
				if ids[i] == "" {
					t.Fatalf("member %s not in the API's presence list", user)
				}
			}
			// The sentinel joined last: once a member has seen its join, it has
			// been sent every earlier event.
			for i, ws := range conns[:members] {
				for {
					f := ws.Next()
					if f.Type() != "presence" {
						continue
					}
					if f.Str("action") != "join" {
						t.Fatalf("member %d got %v while nobody left", i, f)
					}
					m, _ := f["member"].(map[string]any)
					c, _ := m["conn"].(string)
					seen[i][c]++
					if c == ids[members] {
						break
					}
				}
			}
			total := 0
			for i := range conns[:members] {
				for c, n := range seen[i] {
					total += n
					if n > 1 && c != ids[i] { // its own join may come too, as it always has
						t.Errorf("member %d saw %s join %d times without a leave", i, c, n)
					}
				}
				for j := i + 1; j <= members; j++ {
					if seen[i][ids[j]] != 1 {
						t.Errorf("member %d saw the later join of member %d %d times", i, j, seen[i][ids[j]])
					}
				}
			}
			t.Logf("%d joins seen by %d members", total, members)
		})
	}
}
