package redis

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/protocol"
)

// Redis killed and started again: calls fail with ErrUnavailable meanwhile,
// Ready follows, and delivery resumes with nobody calling Subscribe again.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	sub, rec := node(t, "sub", Options{}, srv)
	pub, _ := node(t, "pub", Options{}, srv)
	if err := sub.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := sub.AddMember(ctx, "r", protocol.Member{User: "u", Conn: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, msg("r", 1), broker.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "first message", func() bool { return len(rec.messages("r")) == 1 })

	srv.Stop()
	eventually(t, 5*time.Second, "not ready", func() bool { return !sub.Ready() && !pub.Ready() })
	for i := range 3 {
		if _, err := pub.Publish(ctx, msg("r", 2), broker.ChannelOptions{HistorySize: 5}); !errors.Is(err, broker.ErrUnavailable) {
			t.Fatalf("publish %d while down: %v", i, err)
		}
	}
	if _, _, err := pub.History(ctx, "r", broker.HistoryQuery{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("history while down: %v", err)
	}
	if err := sub.Subscribe(ctx, "other"); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("subscribe while down: %v", err)
	}
	if err := sub.Unsubscribe(ctx, "other"); err != nil {
		t.Fatalf("unsubscribe while down: %v", err)
	}

	srv.Restart()
	eventually(t, 15*time.Second, "ready again", func() bool { return sub.Ready() && pub.Ready() })
	var err error
	eventually(t, 5*time.Second, "publish after restart", func() bool {
		_, err = pub.Publish(ctx, msg("r", 3), broker.ChannelOptions{})
		return err == nil
	})
	eventually(t, 5*time.Second, "delivery after restart", func() bool {
		ms := rec.messages("r")
		return len(ms) == 2 && ms[1].ID == "m3" && ms[1].Offset == 1
	})
	// The member was lost with Redis and comes back from its node's refresh.
	eventually(t, 5*time.Second, "member back", func() bool {
		got, err := pub.Members(ctx, "r")
		return err == nil && len(got) == 1 && got[0].Conn == "c"
	})
}

// A node started while Redis is down comes up by itself.
func TestStartWhileDown(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	b, err := New(Options{Addrs: []string{srv.URL()}, NodeID: "late", Logger: testLogger(t), Prefix: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rec := newRecorder(t)
	_ = b.Start(context.Background(), rec)
	ctx := ctxT(t)
	if b.Ready() {
		t.Fatal("ready without redis")
	}
	if _, err := b.Publish(ctx, msg("x", 1), broker.ChannelOptions{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("publish: %v", err)
	}
	srv.Restart()
	eventually(t, 15*time.Second, "ready", b.Ready)
	if err := b.Subscribe(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, msg("x", 1), broker.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "delivery", func() bool { return len(rec.messages("x")) == 1 })
}

// Channels spread over two servers by the hash; each server holds the keys
// of its channels only, and a node needs both to be ready.
func TestSharding(t *testing.T) {
	s1, s2 := redistest.Start(t), redistest.Start(t)
	ctx := ctxT(t)
	b1, _ := node(t, "n1", Options{}, s1, s2)
	b2, rec := node(t, "n2", Options{}, s1, s2)
	raws := []rueidis.Client{rawClient(t, s1), rawClient(t, s2)}
	exists := func(i int, key string) bool {
		n, err := raws[i].Do(ctx, raws[i].B().Exists().Key(key).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	perShard := [2]int{}
	const n = 40
	for i := range n {
		ch := "ch" + string(rune('a'+i%26)) + string(rune('0'+i/26))
		if err := b2.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if _, err := b1.Publish(ctx, msg(ch, i), broker.ChannelOptions{HistorySize: 1}); err != nil {
			t.Fatal(err)
		}
		idx := jumpHash(fnv64a(ch), 2)
		perShard[idx]++
		if !exists(idx, b1.metaKey(ch)) || exists(1-idx, b1.metaKey(ch)) {
			t.Fatalf("%s: keys not only on shard %d", ch, idx)
		}
		eventually(t, 5*time.Second, "delivery of "+ch, func() bool { return len(rec.messages(ch)) == 1 })
	}
	if perShard[0] < n/5 || perShard[1] < n/5 {
		t.Errorf("uneven spread %v", perShard)
	}
	s2.Stop()
	eventually(t, 5*time.Second, "not ready with one shard down", func() bool { return !b1.Ready() })
	s2.Restart()
	eventually(t, 15*time.Second, "ready", b1.Ready)
}

// Close leaves no goroutine behind.
func TestCloseStopsGoroutines(t *testing.T) {
	srv := redistest.Start(t)
	before := runtime.NumGoroutine()
	b, err := New(Options{Addrs: []string{srv.URL()}, Logger: testLogger(t), Prefix: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Start(context.Background(), newRecorder(t))
	eventually(t, 5*time.Second, "ready", b.Ready)
	ctx := ctxT(t)
	if err := b.Subscribe(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddMember(ctx, "x", protocol.Member{Conn: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, msg("x", 1), broker.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Ready() {
		t.Error("ready after Close")
	}
	eventually(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// A publish sent to a Redis that does not answer may have run: its error
// says the outcome is unknown.
func TestPublishOutcomeUnknownWhenRedisHangs(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	pub, _ := node(t, "pub", Options{}, srv)
	if _, err := pub.Publish(ctx, msg("h", 1), broker.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := pub.Publish(short, msg("h", 2), broker.ChannelOptions{})
	if !errors.Is(err, broker.ErrOutcomeUnknown) || !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("publish to a paused Redis: %v; want ErrOutcomeUnknown and ErrUnavailable", err)
	}
	srv.Resume()
	if _, err := pub.Publish(ctx, msg("h", 3), broker.ChannelOptions{}); err != nil {
		t.Fatalf("publish after resume: %v", err)
	}
}
