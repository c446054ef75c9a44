package redis

import (
	"context"
	"testing"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/protocol"
)

// takeoverBroker is a broker on one server with the takeover check on, as
// in Cluster and Sentinel modes.
func takeoverBroker(t *testing.T, srv *redistest.Server) *Broker {
	t.Helper()
	b, err := New(Options{Addrs: []string{srv.URL()}, Prefix: "to", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.takeover = "1"
	t.Cleanup(func() { _ = b.Close() })
	waitReady(t, b)
	return b
}

// A promoted replica starts a new epoch for a channel its old master
// wrote, even when it has every write (it cannot know); a restart of the
// same server from its append-only file keeps the epoch; a channel first
// written on the promoted server keeps its epoch.
func TestTakeoverStartsNewEpoch(t *testing.T) {
	ctx := context.Background()
	opts := broker.ChannelOptions{HistorySize: 10}
	master := redistest.StartDurable(t)
	publish := func(b *Broker, ch string) protocol.Position {
		t.Helper()
		pos, err := b.Publish(ctx, &protocol.Message{Channel: ch, Event: "e"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	b := takeoverBroker(t, master)
	first := publish(b, "feed:a")
	// A restart of the same master keeps the epoch.
	master.Restart()
	waitFor(t, "ready after the restart", b.Ready)
	var again protocol.Position
	waitFor(t, "a publish after the restart", func() bool {
		p, err := b.Publish(ctx, &protocol.Message{Channel: "feed:a", Event: "e"}, opts)
		again = p
		return err == nil
	})
	if again.Epoch != first.Epoch || again.Offset != first.Offset+1 {
		t.Fatalf("after a restart: %v, then %v", first, again)
	}
	replica := redistest.StartReplica(t, master)
	if _, err := master.Cli("wait", "1", "5000"); err != nil {
		t.Fatal(err)
	}
	if out, err := replica.Cli("replicaof", "no", "one"); err != nil || out != "OK" {
		t.Fatalf("promote: %v %s", err, out)
	}
	b2 := takeoverBroker(t, replica)
	after := publish(b2, "feed:a")
	if after.Epoch == first.Epoch {
		t.Fatalf("the promoted replica kept epoch %s", after.Epoch)
	}
	if after.Offset != again.Offset+1 {
		t.Fatalf("the promoted replica's offset %d, want %d (history and offsets are kept)", after.Offset, again.Offset+1)
	}
	next := publish(b2, "feed:a")
	if next.Epoch != after.Epoch || next.Offset != after.Offset+1 {
		t.Fatalf("then %v, want the same epoch as %v", next, after)
	}
	fresh := publish(b2, "feed:b")
	if again := publish(b2, "feed:b"); again.Epoch != fresh.Epoch {
		t.Fatalf("a channel of the promoted server changed epochs: %v, %v", fresh, again)
	}
}
