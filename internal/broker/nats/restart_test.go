package nats

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/nats/natstest"
	"github.com/eddyrt/eddy/internal/protocol"
)

type collect struct {
	mu   sync.Mutex
	msgs []*protocol.Message
}

func (c *collect) HandleMessage(m *protocol.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}
func (c *collect) HandlePresence(*protocol.PresenceEvent) {}
func (c *collect) n() int                                 { c.mu.Lock(); defer c.mu.Unlock(); return len(c.msgs) }

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling state that has no event to await
	}
}

// While nats-server is down the broker is not ready and a publish is
// refused as not published (never "outcome unknown": nothing is buffered
// to be sent later). After the restart it is ready again by itself, counts
// the reconnect, keeps the history and numbering, and its subscription
// delivers again without being renewed by the caller.
func TestServerRestart(t *testing.T) {
	srv := natstest.Start(t)
	b, err := New(Options{URL: srv.URL(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	rec := &collect{}
	if err := b.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	await(t, "ready", b.Ready)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	opts := broker.ChannelOptions{HistorySize: 100}
	for i := 1; i <= 5; i++ {
		if _, err := b.Publish(ctx, &protocol.Message{Channel: "r", Event: "e"}, opts); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "5 deliveries", func() bool { return rec.n() == 5 })
	connects := b.Connects()

	srv.Stop()
	await(t, "not ready", func() bool { return !b.Ready() })
	_, err = b.Publish(ctx, &protocol.Message{Channel: "r", Event: "e"}, opts)
	if !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Fatalf("publish while down: %v; want ErrUnavailable, not ErrOutcomeUnknown", err)
	}
	if err := b.Subscribe(ctx, "other"); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("subscribe while down: %v; want ErrUnavailable", err)
	}

	srv.Restart()
	// Ready and the reconnect count are set by the same reconnect, not
	// atomically together: wait for both (it fails if the count never moves).
	await(t, "ready again with the reconnect counted", func() bool { return b.Ready() && b.Connects() != connects })
	pos, err := b.Publish(ctx, &protocol.Message{Channel: "r", Event: "e"}, opts)
	if err != nil || pos.Offset != 6 {
		t.Fatalf("publish after the restart: %+v %v; want offset 6", pos, err)
	}
	await(t, "the 6th delivery", func() bool { return rec.n() == 6 })
	hist, _, err := b.History(ctx, "r", broker.HistoryQuery{Options: opts})
	if err != nil || len(hist) != 6 || hist[0].Offset != 1 || hist[5].Offset != 6 {
		t.Fatalf("history after the restart: %d messages, %v", len(hist), err)
	}
}
