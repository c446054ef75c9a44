package redis

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/protocol"
)

// recorder is a broker.Handler that keeps what it is given.
type recorder struct {
	mu       sync.Mutex
	msgs     map[string][]*protocol.Message
	presence []*protocol.PresenceEvent
	inside   map[string]bool // detects concurrent calls for one channel
	t        testing.TB
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, msgs: make(map[string][]*protocol.Message), inside: make(map[string]bool)}
}

func (r *recorder) HandleMessage(m *protocol.Message) {
	r.mu.Lock()
	if r.inside[m.Channel] {
		r.t.Errorf("concurrent HandleMessage for %q", m.Channel)
	}
	r.inside[m.Channel] = true
	r.msgs[m.Channel] = append(r.msgs[m.Channel], m)
	r.inside[m.Channel] = false
	r.mu.Unlock()
}

func (r *recorder) HandlePresence(ev *protocol.PresenceEvent) {
	r.mu.Lock()
	r.presence = append(r.presence, ev)
	r.mu.Unlock()
}

func (r *recorder) messages(channel string) []*protocol.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs[channel])
}

func (r *recorder) events() []*protocol.PresenceEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.presence)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// node starts a broker on the given servers with a recording handler.
func node(t testing.TB, id string, opts Options, servers ...*redistest.Server) (*Broker, *recorder) {
	t.Helper()
	for _, s := range servers {
		opts.Addrs = append(opts.Addrs, s.URL())
	}
	opts.NodeID = id
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.Prefix == "" {
		opts.Prefix = "test"
	}
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	rec := newRecorder(t)
	if err := b.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, id+" ready", b.Ready)
	return b, rec
}

// rawClient is a plain client to look into a server.
func rawClient(t testing.TB, s *redistest.Server) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func msg(channel string, i int) *protocol.Message {
	return &protocol.Message{
		Channel: channel,
		Event:   "e",
		Data:    []byte(fmt.Sprintf(`{"n":%d}`, i)),
		ID:      fmt.Sprintf("m%d", i),
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
