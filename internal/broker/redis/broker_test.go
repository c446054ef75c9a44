package redis

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/protocol"
)

func TestPublishDeliver(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	b1, rec1 := node(t, "n1", Options{}, srv)
	b2, rec2 := node(t, "n2", Options{}, srv)

	if err := b2.Subscribe(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	want := []*protocol.Message{msg("a", 1), msg("a", 2), msg("a", 3)}
	want[2].User = "u1"
	want[1].Data = nil
	for i, m := range want {
		m.TS = 1700000000000 + int64(i)
		pos, err := b1.Publish(ctx, m, broker.ChannelOptions{HistorySize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if pos.Offset != uint64(i+1) || pos.Epoch == "" || m.Offset != pos.Offset || m.Epoch != pos.Epoch {
			t.Fatalf("publish %d: position %+v, message %d/%q", i, pos, m.Offset, m.Epoch)
		}
	}
	eventually(t, 5*time.Second, "3 messages on n2", func() bool { return len(rec2.messages("a")) == 3 })
	for i, got := range rec2.messages("a") {
		w := want[i]
		if got.Channel != "a" || got.Event != w.Event || string(got.Data) != string(w.Data) || got.ID != w.ID ||
			got.TS != w.TS || got.Offset != w.Offset || got.Epoch != w.Epoch || got.User != w.User {
			t.Errorf("message %d: got %+v, want %+v", i, got, w)
		}
	}
	if got := rec1.messages("a"); len(got) != 0 {
		t.Errorf("n1 is not subscribed but got %d messages", len(got))
	}

	// After Unsubscribe nothing more arrives; "c" is a barrier on the same
	// connection: once its message is in, the earlier one to "a" would be too.
	if err := b2.Unsubscribe(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b2.Subscribe(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"a", "never", "c"} {
		if _, err := b1.Publish(ctx, msg(ch, 9), broker.ChannelOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "barrier message", func() bool { return len(rec2.messages("c")) == 1 })
	if n := len(rec2.messages("a")); n != 3 {
		t.Errorf("unsubscribed channel delivered: %d messages", n)
	}
	if n := len(rec2.messages("never")); n != 0 {
		t.Errorf("never subscribed channel delivered: %d messages", n)
	}
}

// Two nodes, eight publishers: offsets are 1..N exactly once and a
// subscriber sees them in order.
func TestOffsetsContiguous(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	b1, rec1 := node(t, "n1", Options{}, srv)
	b2, _ := node(t, "n2", Options{}, srv)
	if err := b1.Subscribe(ctx, "race"); err != nil {
		t.Fatal(err)
	}
	const publishers, each = 8, 200
	var mu sync.Mutex
	seen := make(map[uint64]bool)
	var wg sync.WaitGroup
	for p := range publishers {
		b := b1
		if p%2 == 1 {
			b = b2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				pos, err := b.Publish(ctx, msg("race", p*each+i), broker.ChannelOptions{HistorySize: 50})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[pos.Offset] {
					t.Errorf("duplicate offset %d", pos.Offset)
				}
				seen[pos.Offset] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	const n = publishers * each
	for i := uint64(1); i <= n; i++ {
		if !seen[i] {
			t.Fatalf("offset %d missing", i)
		}
	}
	eventually(t, 10*time.Second, "all messages delivered", func() bool { return len(rec1.messages("race")) == n })
	for i, m := range rec1.messages("race") {
		if m.Offset != uint64(i+1) {
			t.Fatalf("delivery %d has offset %d", i, m.Offset)
		}
	}
}

func offsets(ms []*protocol.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Offset
	}
	return out
}

func TestHistory(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	b, _ := node(t, "n1", Options{}, srv)
	opts := broker.ChannelOptions{HistorySize: 5}

	// A fresh channel has a position that the first publish continues.
	_, pos0, err := b.History(ctx, "h", broker.HistoryQuery{Options: opts})
	if err != nil || pos0.Offset != 0 || pos0.Epoch == "" {
		t.Fatalf("fresh channel: %+v %v", pos0, err)
	}
	for i := 1; i <= 10; i++ {
		if _, err := b.Publish(ctx, msg("h", i), opts); err != nil {
			t.Fatal(err)
		}
	}
	epoch := pos0.Epoch
	at := func(off uint64) *protocol.Position { return &protocol.Position{Epoch: epoch, Offset: off} }
	cases := []struct {
		name  string
		q     broker.HistoryQuery
		want  []uint64
		isGap bool
	}{
		{"all kept", broker.HistoryQuery{}, []uint64{6, 7, 8, 9, 10}, false},
		{"newest 3", broker.HistoryQuery{Limit: 3}, []uint64{8, 9, 10}, false},
		{"since 5", broker.HistoryQuery{Since: at(5)}, []uint64{6, 7, 8, 9, 10}, false},
		{"since 6 limit 2", broker.HistoryQuery{Since: at(6), Limit: 2}, []uint64{7, 8}, false},
		{"since top", broker.HistoryQuery{Since: at(10)}, []uint64{}, false},
		{"since 4 is gone", broker.HistoryQuery{Since: at(4)}, nil, true},
		{"since 0 is gone", broker.HistoryQuery{Since: at(0)}, nil, true},
		{"since past top", broker.HistoryQuery{Since: at(11)}, nil, true},
		{"other epoch", broker.HistoryQuery{Since: &protocol.Position{Epoch: "x", Offset: 8}}, nil, true},
	}
	for _, c := range cases {
		c.q.Options = opts
		got, pos, err := b.History(ctx, "h", c.q)
		if pos != (protocol.Position{Epoch: epoch, Offset: 10}) {
			t.Errorf("%s: position %+v", c.name, pos)
		}
		if c.isGap {
			if !errors.Is(err, broker.ErrGap) || got != nil {
				t.Errorf("%s: got %v, %v; want ErrGap", c.name, offsets(got), err)
			}
			continue
		}
		if err != nil || fmt.Sprint(offsets(got)) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.name, offsets(got), err, c.want)
		}
	}
	hist, _, _ := b.History(ctx, "h", broker.HistoryQuery{Limit: 1, Options: opts})
	if m := hist[0]; m.Channel != "h" || m.ID != "m10" || string(m.Data) != `{"n":10}` || m.Epoch != epoch {
		t.Errorf("kept message %+v", m)
	}

	// History switched off: nothing kept, every since before the top is a gap.
	if _, err := b.Publish(ctx, msg("h", 11), broker.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := b.History(ctx, "h", broker.HistoryQuery{Since: at(10)}); !errors.Is(err, broker.ErrGap) {
		t.Errorf("history off: got %v, %v", offsets(got), err)
	}
	if got, _, err := b.History(ctx, "h", broker.HistoryQuery{Since: at(11)}); err != nil || len(got) != 0 {
		t.Errorf("history off, since top: got %v, %v", offsets(got), err)
	}
}

func TestHistoryTTL(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	b, _ := node(t, "n1", Options{}, srv)
	opts := broker.ChannelOptions{HistorySize: 10, HistoryTTL: 5 * time.Second}
	old := time.Now().Add(-time.Minute).UnixMilli()
	var epoch string
	for i := 1; i <= 5; i++ {
		m := msg("t", i)
		if i <= 3 {
			m.TS = old // published "a minute ago": past the TTL
		}
		pos, err := b.Publish(ctx, m, opts)
		if err != nil {
			t.Fatal(err)
		}
		epoch = pos.Epoch
	}
	q := broker.HistoryQuery{Options: opts}
	if got, _, err := b.History(ctx, "t", q); err != nil || fmt.Sprint(offsets(got)) != "[4 5]" {
		t.Errorf("expired entries returned: %v %v", offsets(got), err)
	}
	q.Since = &protocol.Position{Epoch: epoch, Offset: 2}
	if _, _, err := b.History(ctx, "t", q); !errors.Is(err, broker.ErrGap) {
		t.Errorf("since 2 with 3 expired: %v", err)
	}
	q.Since.Offset = 3
	if got, _, err := b.History(ctx, "t", q); err != nil || fmt.Sprint(offsets(got)) != "[4 5]" {
		t.Errorf("since 3: %v %v", offsets(got), err)
	}

	// The stream key itself expires HistoryTTL after the last publish; the
	// position stays.
	short := broker.ChannelOptions{HistorySize: 10, HistoryTTL: 300 * time.Millisecond}
	pos, err := b.Publish(ctx, msg("t2", 1), short)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, srv)
	eventually(t, 5*time.Second, "history key expiry", func() bool {
		n, _ := raw.Do(ctx, raw.B().Exists().Key(b.historyKey("t2")).Build()).AsInt64()
		return n == 0
	})
	got, pos2, err := b.History(ctx, "t2", broker.HistoryQuery{Since: &protocol.Position{Epoch: pos.Epoch, Offset: 0}, Options: short})
	if !errors.Is(err, broker.ErrGap) || pos2 != pos {
		t.Errorf("after expiry: %v %+v %v", offsets(got), pos2, err)
	}
}

// Without persistence a restart loses the streams: the epoch changes so
// recovering clients learn that they cannot recover.
func TestEpochChangesAfterRestart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	b, _ := node(t, "n1", Options{}, srv)
	opts := broker.ChannelOptions{HistorySize: 10}
	var last protocol.Position
	for i := 1; i <= 3; i++ {
		var err error
		if last, err = b.Publish(ctx, msg("e", i), opts); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart()
	eventually(t, 10*time.Second, "ready after restart", b.Ready)
	got, pos, err := b.History(ctx, "e", broker.HistoryQuery{Since: &last, Options: opts})
	if !errors.Is(err, broker.ErrGap) || pos.Epoch == last.Epoch || pos.Offset != 0 {
		t.Fatalf("after restart: %v %+v %v", offsets(got), pos, err)
	}
	// The first publish may find a pipelined connection to the killed
	// server and fail (ErrUnavailable: not published); the next one dials.
	var p protocol.Position
	eventually(t, 5*time.Second, "publish after restart", func() bool {
		p, err = b.Publish(ctx, msg("e", 4), opts)
		return err == nil
	})
	if p.Epoch != pos.Epoch || p.Offset != 1 {
		t.Fatalf("publish after restart: %+v %v (epoch before %q)", p, err, last.Epoch)
	}
}
