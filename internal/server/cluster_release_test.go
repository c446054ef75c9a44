package server_test

import (
	"context"
	"testing"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/servertest"
)

// redisChannels lists the pub/sub channels of the redis-server whose name
// ends with channel (the broker prefixes Eddy's channel names), and how many
// subscribers each has: what the nodes asked Redis to send them.
func redisChannels(t *testing.T, c rueidis.Client, channel string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	names, err := c.Do(ctx, c.B().PubsubChannels().Pattern("*"+channel).Build()).AsStrSlice()
	if err != nil {
		t.Fatalf("PUBSUB CHANNELS: %v", err)
	}
	out := map[string]int64{}
	if len(names) == 0 {
		return out
	}
	counts, err := c.Do(ctx, c.B().PubsubNumsub().Channel(names...).Build()).AsIntMap()
	if err != nil {
		t.Fatalf("PUBSUB NUMSUB: %v", err)
	}
	for _, n := range names {
		out[n] = counts[n]
	}
	return out
}

// TestNodeReleasesBrokerSubscriptionWithLastSubscriber: a node holds one
// Redis subscription per channel while it has local subscribers, keeps it
// while any remains, and gives it up when the last one leaves, whether by
// unsubscribe or by closing its connection. A node that never let go would
// receive every channel it ever served until it restarts.
func TestNodeReleasesBrokerSubscriptionWithLastSubscriber(t *testing.T) {
	rs, nodes := cluster(t, 1)
	n := nodes[0]
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	const channel = "feed:release"
	subscribed := func() int64 {
		var total int64
		for _, subs := range redisChannels(t, rc, channel) {
			total += subs
		}
		return total
	}
	if got := subscribed(); got != 0 {
		t.Fatalf("%d Redis subscriptions to %s before anyone subscribed", got, channel)
	}

	a := servertest.Connect(t, n.WSURL, servertest.Token(t, "a", nil, nil))
	b := servertest.Connect(t, n.WSURL, servertest.Token(t, "b", nil, nil))
	for _, ws := range []*servertest.WS{a, b} {
		if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": channel}); f.Type() != "subscribed" {
			t.Fatalf("subscribe: %v", f)
		}
	}
	// The subscribe is answered once Redis confirmed the subscription.
	if got := subscribed(); got != 1 {
		t.Fatalf("two local subscribers: %d Redis subscriptions (%v), want one for the node", got, redisChannels(t, rc, channel))
	}

	if f := a.Request(map[string]any{"type": "unsubscribe", "id": 2, "channel": channel}); f.Type() != "unsubscribed" {
		t.Fatalf("unsubscribe: %v", f)
	}
	if got := subscribed(); got != 1 {
		t.Fatalf("one local subscriber left: %d Redis subscriptions, want 1", got)
	}
	if f := b.Request(map[string]any{"type": "unsubscribe", "id": 2, "channel": channel}); f.Type() != "unsubscribed" {
		t.Fatalf("unsubscribe: %v", f)
	}
	servertest.Eventually(t, "the node to release its Redis subscription after its last subscriber unsubscribed", func() bool {
		return subscribed() == 0
	})

	// The same when the last subscriber's connection closes.
	if f := a.Request(map[string]any{"type": "subscribe", "id": 3, "channel": channel}); f.Type() != "subscribed" {
		t.Fatalf("subscribe again: %v", f)
	}
	if got := subscribed(); got != 1 {
		t.Fatalf("subscribed again: %d Redis subscriptions, want 1", got)
	}
	_ = a.Conn.NetConn().Close()
	servertest.Eventually(t, "the node to release its Redis subscription after its last subscriber's connection closed", func() bool {
		return subscribed() == 0
	})
}
