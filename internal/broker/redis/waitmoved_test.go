package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/protocol"
)

// TestRedisClusterPublishWaitFollowsMoved: with redis_wait_replicas the
// publish runs on a dedicated connection, which rueidis does not redirect;
// right after the channel's slot moved to another master (the client's
// slot map still names the old one, which answers MOVED, the script not
// run) the publish must still be acknowledged, by the new master, not
// refused until the map is read again.
func TestRedisClusterPublishWaitFollowsMoved(t *testing.T) {
	rc := redistest.StartCluster(t, 3, 1)
	b, err := New(Options{Addrs: rc.Seeds(), Cluster: true, Prefix: "wm", NodeID: "pub",
		WaitReplicas: 1, WaitTimeout: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	waitReady(t, b)
	ctx := context.Background()
	const ch = "feed:moved"
	opts := broker.ChannelOptions{HistorySize: 100}
	publish := func(i int) (protocol.Position, error) {
		return b.Publish(ctx, &protocol.Message{Channel: ch, Event: "e", Data: []byte(strconv.Itoa(i))}, opts)
	}
	if _, err := publish(1); err != nil {
		t.Fatal(err)
	}
	slot := rc.Slot(b.metaKey(ch))
	from := rc.MasterOf(slot)
	masters, err := rc.Topology()
	if err != nil {
		t.Fatal(err)
	}
	to := masters[0]
	if to.ID == from.ID {
		to = masters[1]
	}
	rc.MoveSlot(slot, from, to)
	pos, err := publish(2)
	if err != nil {
		t.Fatalf("publish right after the slot moved: %v", err)
	}
	if pos.Offset != 2 {
		t.Fatalf("offset %d, want 2 (the keys moved with the slot)", pos.Offset)
	}
	if n, err := rc.Cli(to.Server, "exists", b.historyKey(ch)); err != nil || n != "1" {
		t.Fatalf("history at the new master: %q %v", n, err)
	}
}
