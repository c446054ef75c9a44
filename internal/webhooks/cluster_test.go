package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/webhooks"
)

// clusterNodes starts n nodes on one real redis-server, each with the same
// receiver for every event.
func clusterNodes(t *testing.T, rs *redistest.Server, n int, rcv *receiver) ([]*servertest.Server, []*webhooks.System) {
	t.Helper()
	var nodes []*servertest.Server
	var whs []*webhooks.System
	for i := range n {
		s, wh := startNode(t, func(c *config.Config) {
			c.Redis = []string{rs.URL()}
			c.NodeName = fmt.Sprintf("node-%d", i)
			// Long enough that a loaded machine never has a live node reaped.
			c.NodeTTL = 6 * time.Second
			c.PresenceTTL = 2 * time.Second
			c.Webhooks = []config.Webhook{{URL: rcv.URL(), Secret: hookSecret, Events: config.WebhookEvents}}
		})
		nodes = append(nodes, s)
		whs = append(whs, wh)
	}
	return nodes, whs
}

// redisClient is a plain client of rs, to look at what the nodes recorded.
type redisClient struct{ c rueidis.Client }

func newRedisClient(t *testing.T, rs *redistest.Server) redisClient {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return redisClient{c}
}

// ControlClient makes it a webhooks.Backend with the nodes' prefix.
func (r redisClient) ControlClient() (rueidis.Client, string, error) { return r.c, "eddy", nil }

// holders is how many nodes the ledger counts as holding channel.
func (r redisClient) holders(t *testing.T, channel string) int64 {
	f, _ := json.Marshal([]string{"o", "", channel})
	n, err := r.c.Do(context.Background(), r.c.B().Hget().Key("eddy:wh:count").Field(string(f)).Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// alive reports whether node's ledger entry has not expired, by Redis's clock.
func (r redisClient) alive(t *testing.T, node string) bool {
	ctx := context.Background()
	exp, err := r.c.Do(ctx, r.c.B().Zscore().Key("eddy:wh:alive").Member(node).Build()).AsFloat64()
	if rueidis.IsRedisNil(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	now, err := r.c.Do(ctx, r.c.B().Time().Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	var sec, usec int64
	fmt.Sscan(now[0], &sec)
	fmt.Sscan(now[1], &usec)
	return int64(exp) > sec*1000+usec/1000
}

// flushed waits until an event emitted now by each node has arrived: each
// receiver's queue is sent in order, so whatever a node emitted before
// has arrived too.
func flushed(t *testing.T, rcv *receiver, whs []*webhooks.System, round string) {
	t.Helper()
	for i, wh := range whs {
		wh.Emit("", webhooks.Event{Name: webhooks.CacheMiss, Channel: fmt.Sprintf("sentinel-%s-%d", round, i)})
	}
	servertest.Eventually(t, "every node's sentinel", func() bool {
		seen := 0
		for _, e := range named(rcv.events(t), webhooks.CacheMiss) {
			for i := range whs {
				if e.Channel == fmt.Sprintf("sentinel-%s-%d", round, i) {
					seen++
				}
			}
		}
		return seen == len(whs)
	})
}

func forChannel(evs []webhooks.Event, name, channel string) int {
	n := 0
	for _, e := range named(evs, name) {
		if e.Channel == channel {
			n++
		}
	}
	return n
}

// TestClusterSendsOneOccupiedAndOneVacated: three nodes over a real
// redis-server, a subscriber of feed:x on each. The receiver gets one
// channel_occupied, not three; no channel_vacated while any node still has
// a subscriber; one channel_vacated when the last leaves. Presence is
// cluster-wide too: one member_added for a user on two nodes.
func TestClusterSendsOneOccupiedAndOneVacated(t *testing.T) {
	rs := redistest.Start(t)
	rcv := newReceiver(t)
	nodes, whs := clusterNodes(t, rs, 3, rcv)
	rc := newRedisClient(t, rs)

	var clients []*servertest.WS
	for _, n := range nodes {
		ws := servertest.Connect(t, n.WSURL, servertest.Token(t, "carol", nil, nil))
		ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:x"})
		ws.Request(map[string]any{"type": "subscribe", "id": 2, "channel": "chat:x"})
		clients = append(clients, ws)
	}
	servertest.Eventually(t, "every node recorded feed:x", func() bool { return rc.holders(t, "feed:x") == 3 })
	flushed(t, rcv, whs, "1")
	evs := rcv.events(t)
	if n := forChannel(evs, webhooks.ChannelOccupied, "feed:x"); n != 1 {
		t.Fatalf("%d channel_occupied for feed:x from three nodes, want 1", n)
	}
	if n := forChannel(evs, webhooks.MemberAdded, "chat:x"); n != 1 {
		t.Fatalf("%d member_added for carol on three nodes, want 1", n)
	}

	// Two of the three leave: the channel is still occupied on node 2.
	for _, ws := range clients[:2] {
		ws.Request(map[string]any{"type": "unsubscribe", "id": 3, "channel": "feed:x"})
		ws.Request(map[string]any{"type": "unsubscribe", "id": 4, "channel": "chat:x"})
	}
	servertest.Eventually(t, "nodes 0 and 1 released feed:x", func() bool { return rc.holders(t, "feed:x") == 1 })
	flushed(t, rcv, whs, "2")
	evs = rcv.events(t)
	if n := forChannel(evs, webhooks.ChannelVacated, "feed:x") + forChannel(evs, webhooks.MemberRemoved, "chat:x"); n != 0 {
		t.Fatalf("vacated/removed sent while node 2 still has carol subscribed: %+v", evs)
	}

	// The last one leaves.
	clients[2].Request(map[string]any{"type": "unsubscribe", "id": 3, "channel": "feed:x"})
	clients[2].Request(map[string]any{"type": "unsubscribe", "id": 4, "channel": "chat:x"})
	servertest.Eventually(t, "feed:x vacated", func() bool { return forChannel(rcv.events(t), webhooks.ChannelVacated, "feed:x") >= 1 })
	flushed(t, rcv, whs, "3")
	evs = rcv.events(t)
	if o, v := forChannel(evs, webhooks.ChannelOccupied, "feed:x"), forChannel(evs, webhooks.ChannelVacated, "feed:x"); o != 1 || v != 1 {
		t.Fatalf("feed:x: %d occupied, %d vacated from three nodes; want one of each", o, v)
	}
	if a, r := forChannel(evs, webhooks.MemberAdded, "chat:x"), forChannel(evs, webhooks.MemberRemoved, "chat:x"); a != 1 || r != 1 {
		t.Fatalf("chat:x: %d member_added, %d member_removed; want one of each", a, r)
	}
	ids := map[string]bool{}
	for _, e := range evs {
		if ids[e.ID] {
			t.Fatalf("event id %s sent twice", e.ID)
		}
		ids[e.ID] = true
	}
}

// TestClusterReapsADeadNode: a node that holds a channel and stops
// renewing (it died) is reaped by a live node once its TTL passed: the
// channel is vacated then, not before, and reported once.
func TestClusterReapsADeadNode(t *testing.T) {
	rs := redistest.Start(t)
	rcv := newReceiver(t)
	nodes, whs := clusterNodes(t, rs, 2, rcv)
	rc := newRedisClient(t, rs)

	// The dead node: it held feed:ghost, then went silent.
	f, _ := json.Marshal([]string{"o", "", "feed:ghost"})
	ghost := webhooks.NewRedisLedger(rc, "ghost-node", 5*time.Second)
	if _, _, err := ghost.Apply(context.Background(), []webhooks.Op{{Field: string(f), Hold: true}}); err != nil {
		t.Fatal(err)
	}
	// A live node's subscriber comes and goes: the ghost still holds it.
	ws := servertest.Connect(t, nodes[0].WSURL, servertest.Token(t, "dave", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:ghost"})
	servertest.Eventually(t, "node 0 recorded feed:ghost", func() bool { return rc.holders(t, "feed:ghost") == 2 })
	ws.Request(map[string]any{"type": "unsubscribe", "id": 2, "channel": "feed:ghost"})
	servertest.Eventually(t, "node 0 released feed:ghost", func() bool { return rc.holders(t, "feed:ghost") == 1 })
	flushed(t, rcv, whs, "1")
	// Only while the ghost has not expired yet does its hold count (a
	// loaded machine may take longer than its TTL to get here).
	if rc.alive(t, "ghost-node") {
		if n := forChannel(rcv.events(t), webhooks.ChannelVacated, "feed:ghost"); n != 0 {
			t.Fatalf("feed:ghost vacated while the (not yet expired) ghost node held it")
		}
	} else {
		t.Log("the ghost expired before the check; only its reaping is checked")
	}
	servertest.EventuallyWithin(t, 20*time.Second, "the ghost reaped and feed:ghost vacated", func() bool {
		return forChannel(rcv.events(t), webhooks.ChannelVacated, "feed:ghost") == 1
	})
	flushed(t, rcv, whs, "2")
	if n := forChannel(rcv.events(t), webhooks.ChannelVacated, "feed:ghost"); n != 1 {
		t.Fatalf("%d channel_vacated for feed:ghost, want 1", n)
	}
}

// TestNodeTakenForDeadHoldsItsChannelsAgain: a node that was reaped (its
// renewals did not reach Redis in time: here its expiry is set in the
// past) notices at its next renewal and records its subscribers again, so
// the channel the reaper reported vacated is reported occupied again.
func TestNodeTakenForDeadHoldsItsChannelsAgain(t *testing.T) {
	rs := redistest.Start(t)
	rcv := newReceiver(t)
	nodes, _ := clusterNodes(t, rs, 1, rcv)
	rc := newRedisClient(t, rs)
	ctx := context.Background()
	ws := servertest.Connect(t, nodes[0].WSURL, servertest.Token(t, "gina", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:back"})
	servertest.Eventually(t, "feed:back recorded", func() bool { return rc.holders(t, "feed:back") == 1 })
	ids, err := rc.c.Do(ctx, rc.c.B().Zrange().Key("eddy:wh:alive").Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil || len(ids) != 1 {
		t.Fatalf("alive nodes %v, %v", ids, err)
	}
	// The node's own renewal may land between the two commands and undo
	// the expiry: try again then. (The node may also reap itself first.)
	reaper := webhooks.NewRedisLedger(rc, "reaper", time.Minute)
	servertest.Eventually(t, "the node reaped", func() bool {
		if err := rc.c.Do(ctx, rc.c.B().Zadd().Key("eddy:wh:alive").ScoreMember().ScoreMember(1, ids[0]).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		reaped, err := reaper.Reap(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(reaped) == 1 || rc.holders(t, "feed:back") == 0
	})
	servertest.EventuallyWithin(t, 20*time.Second, "feed:back occupied again", func() bool {
		return forChannel(rcv.events(t), webhooks.ChannelOccupied, "feed:back") >= 2 && rc.holders(t, "feed:back") == 1
	})
}

// TestNoTrackingWithoutOccupancyReceivers: nodes whose receivers want no
// occupancy or member events write nothing about channels to Redis.
func TestNoTrackingWithoutOccupancyReceivers(t *testing.T) {
	rs := redistest.Start(t)
	rcv := newReceiver(t)
	s, wh := startNode(t, func(c *config.Config) {
		c.Redis = []string{rs.URL()}
		c.Webhooks = []config.Webhook{{URL: rcv.URL(), Secret: hookSecret, Events: []string{webhooks.CacheMiss}}}
	})
	rc := newRedisClient(t, rs)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "hal", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:quiet"})
	flushed(t, rcv, []*webhooks.System{wh}, "1")
	n, err := rc.c.Do(context.Background(), rc.c.B().Exists().Key("eddy:wh:count", "eddy:wh:alive").Build()).AsInt64()
	if err != nil || n != 0 || wh.Tracker.Holds() != 0 {
		t.Fatalf("%d ledger keys in Redis, %d holds (err %v); want none", n, wh.Tracker.Holds(), err)
	}
}
