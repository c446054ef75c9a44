package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/brokertest"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/functions/kvstore"
	"github.com/eddyrt/eddy/internal/protocol"
)

// TestRedisCluster runs against one Redis Cluster of three masters with a
// replica each, created once for its subtests.
func TestRedisCluster(t *testing.T) {
	rc := redistest.StartCluster(t, 3, 1)
	var n atomic.Int64
	newBroker := func(t *testing.T, prefix, id string) *Broker {
		b, err := New(Options{Addrs: rc.Seeds()[:2], Cluster: true, Prefix: prefix, NodeID: id, PresenceTTL: time.Second, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		waitReady(t, b)
		return b
	}

	t.Run("Contract", func(t *testing.T) {
		brokertest.Run(t, func(t *testing.T) broker.Broker {
			return newBroker(t, fmt.Sprintf("contract%d", n.Add(1)), "")
		})
	})
	t.Run("ContractAcrossNodes", func(t *testing.T) {
		brokertest.RunPeers(t, func(t *testing.T) (broker.Broker, broker.Broker, time.Duration) {
			prefix := fmt.Sprintf("peers%d", n.Add(1))
			return newBroker(t, prefix, "a"), newBroker(t, prefix, "b"), time.Second
		})
	})

	// Channels spread over all three masters: each channel's keys sit in
	// its own slot (CLUSTER KEYSLOT), the same one for all its keys, and
	// the masters each hold some of them (DBSIZE).
	t.Run("ChannelsSpreadOverMasters", func(t *testing.T) {
		b := newBroker(t, "spread", "")
		ctx := context.Background()
		opts := broker.ChannelOptions{HistorySize: 10}
		perMaster := map[string]int{}
		masters, err := rc.Topology()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 60 {
			ch := "chat:room-" + strconv.Itoa(i)
			if _, err := b.Publish(ctx, &protocol.Message{Channel: ch, Event: "e"}, opts); err != nil {
				t.Fatal(err)
			}
			slot := rc.Slot(b.metaKey(ch))
			if keySlot(b.metaKey(ch)) != slot {
				t.Fatalf("%s: keySlot %d, CLUSTER KEYSLOT %d", ch, keySlot(b.metaKey(ch)), slot)
			}
			if s := rc.Slot(b.historyKey(ch)); s != slot {
				t.Fatalf("%s: meta key in slot %d, history in %d", ch, slot, s)
			}
			if s := rc.Slot(b.presenceKey(ch)); s != slot {
				t.Fatalf("%s: meta key in slot %d, presence in %d", ch, slot, s)
			}
			if s := rc.Slot(b.pubsubName(ch)); s != slot {
				t.Fatalf("%s: meta key in slot %d, shard channel in %d", ch, slot, s)
			}
			for _, m := range masters {
				if m.Owns(slot) {
					perMaster[m.Addr]++
				}
			}
		}
		for _, m := range masters {
			keys, err := rc.Cli(m.Server, "dbsize")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("master %s: %d of 60 channels, %s keys", m.Addr, perMaster[m.Addr], keys)
			if perMaster[m.Addr] == 0 || keys == "0" {
				t.Fatalf("master %s holds no channel: %v", m.Addr, perMaster)
			}
		}
	})

	// A deleted app's channels are purged on every master, not only the
	// one a SCAN happens to reach; another app's keys stay.
	t.Run("PurgePrefix", func(t *testing.T) {
		b := newBroker(t, "purge", "")
		ctx := context.Background()
		opts := broker.ChannelOptions{HistorySize: 10}
		for i := range 30 {
			for _, app := range []string{"gone/", "kept/"} {
				if _, err := b.Publish(ctx, &protocol.Message{Channel: app + "chat:room-" + strconv.Itoa(i), Event: "e"}, opts); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := b.PurgePrefix(ctx, "gone/"); err != nil {
			t.Fatal(err)
		}
		masters, err := rc.Topology()
		if err != nil {
			t.Fatal(err)
		}
		kept := 0
		for _, m := range masters {
			left, err := rc.Cli(m.Server, "--scan", "--pattern", "purge:*gone/*")
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(left) != "" {
				t.Fatalf("master %s still holds %s", m.Addr, left)
			}
			others, err := rc.Cli(m.Server, "--scan", "--pattern", "purge:*kept/*")
			if err != nil {
				t.Fatal(err)
			}
			kept += len(strings.Fields(others))
		}
		if kept < 30 {
			t.Fatalf("only %d keys of the kept app are left", kept)
		}
	})

	// The functions' key-value store (its three keys of a scope share a
	// hash tag) works on the cluster: its scripts touch one slot.
	t.Run("FunctionsKV", func(t *testing.T) {
		kv := kvstore.NewRedis(newBroker(t, "kv", ""))
		ctx := context.Background()
		for _, scope := range []string{"fn-a", "fn-b", "fn-c", "fn-d"} {
			if err := kv.Set(ctx, scope, "k", json.RawMessage(`{"v":1}`), time.Minute); err != nil {
				t.Fatal(err)
			}
			if n, err := kv.Incr(ctx, scope, "n", 2); err != nil || n != 2 {
				t.Fatalf("incr: %d %v", n, err)
			}
			v, ok, err := kv.Get(ctx, scope, "k")
			if err != nil || !ok || string(v) != `{"v":1}` {
				t.Fatalf("get: %s %v %v", v, ok, err)
			}
			if err := kv.Delete(ctx, scope, "k"); err != nil {
				t.Fatal(err)
			}
		}
	})

	// Sharded pub/sub: a subscribed channel is known only to the master of
	// its slot (PUBSUB SHARDCHANNELS), and a message published to it
	// reaches subscribers on other brokers.
	t.Run("ShardedPubSub", func(t *testing.T) {
		prefix := "sharded"
		pub, sub := newBroker(t, prefix, "pub"), newBroker(t, prefix, "sub")
		rec := newRecorder(t)
		ctx := context.Background()
		if err := sub.Start(ctx, rec); err != nil {
			t.Fatal(err)
		}
		chans := []string{"feed:a", "feed:b", "feed:c", "feed:d", "feed:e", "feed:f"}
		for _, ch := range chans {
			if err := sub.Subscribe(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
		masters, err := rc.Topology()
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chans {
			name := sub.pubsubName(ch)
			slot := rc.Slot(name)
			holders := 0
			for _, m := range masters {
				out, err := rc.Cli(m.Server, "pubsub", "shardchannels", name)
				if err != nil {
					t.Fatal(err)
				}
				has := strings.TrimSpace(out) == name
				if has != m.Owns(slot) {
					t.Fatalf("%s (slot %d): master %s lists it: %v, owns the slot: %v", name, slot, m.Addr, has, m.Owns(slot))
				}
				if has {
					holders++
				}
			}
			if holders != 1 {
				t.Fatalf("%s subscribed at %d masters", name, holders)
			}
			if _, err := pub.Publish(ctx, &protocol.Message{Channel: ch, Event: "e", Data: []byte(`1`)}, broker.ChannelOptions{HistorySize: 10}); err != nil {
				t.Fatal(err)
			}
		}
		for _, ch := range chans {
			waitFor(t, ch+" delivered", func() bool { return len(rec.messages(ch)) == 1 })
		}
		// Unsubscribing removes the shard channel from its master.
		if err := sub.Unsubscribe(ctx, chans[0]); err != nil {
			t.Fatal(err)
		}
		m := rc.MasterOf(rc.Slot(sub.pubsubName(chans[0])))
		waitFor(t, "shard channel gone after unsubscribe", func() bool {
			out, err := rc.Cli(m.Server, "pubsub", "shardchannels", sub.pubsubName(chans[0]))
			return err == nil && strings.TrimSpace(out) == ""
		})
	})
}

// The node's subscription follows its channel's slot to another master:
// Redis ends it there (SUNSUBSCRIBE) when the slot leaves, the node
// subscribes again at the new owner (after a MOVED), counts a reconnect,
// and messages published afterwards are delivered; the channel's history
// and offsets moved with its keys.
func TestRedisClusterSlotMigration(t *testing.T) {
	rc := redistest.StartCluster(t, 3, 0)
	mk := func(id string) *Broker {
		b, err := New(Options{Addrs: rc.Seeds(), Cluster: true, Prefix: "mig", NodeID: id, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		waitReady(t, b)
		return b
	}
	pub, sub := mk("pub"), mk("sub")
	rec := newRecorder(t)
	ctx := context.Background()
	if err := sub.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	const ch = "feed:moving"
	opts := broker.ChannelOptions{HistorySize: 100}
	if err := sub.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	publish := func(i int) {
		t.Helper()
		if _, err := pub.Publish(ctx, &protocol.Message{Channel: ch, Event: "e", Data: []byte(strconv.Itoa(i))}, opts); err != nil {
			t.Fatal(err)
		}
	}
	publish(1)
	waitFor(t, "first delivery", func() bool { return len(rec.messages(ch)) == 1 })
	slot := rc.Slot(sub.pubsubName(ch))
	from := rc.MasterOf(slot)
	masters, err := rc.Topology()
	if err != nil {
		t.Fatal(err)
	}
	to := masters[0]
	if to.ID == from.ID {
		to = masters[1]
	}
	before := sub.Connects()
	rc.MoveSlot(slot, from, to)
	waitFor(t, "the subscription moved to the new master", func() bool {
		out, err := rc.Cli(to.Server, "pubsub", "shardchannels", sub.pubsubName(ch))
		return err == nil && strings.TrimSpace(out) == sub.pubsubName(ch) && sub.Connects() > before && sub.Ready()
	})
	if out, _ := rc.Cli(from.Server, "pubsub", "shardchannels", sub.pubsubName(ch)); strings.TrimSpace(out) != "" {
		t.Fatalf("still subscribed at the old master: %q", out)
	}
	publish(2)
	waitFor(t, "delivery after the move", func() bool { return len(rec.messages(ch)) == 2 })
	got := rec.messages(ch)
	if got[1].Offset != 2 || got[1].Epoch != got[0].Epoch {
		t.Fatalf("after the move: offset %d epoch %s, want 2 and %s (the keys moved with the slot)", got[1].Offset, got[1].Epoch, got[0].Epoch)
	}
}

func waitReady(t *testing.T, b *Broker) {
	t.Helper()
	waitFor(t, "broker ready", b.Ready)
}

// waitFor polls cond for up to 30 s (a generous bound for a loaded machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling; conditions here have no event
	}
}
