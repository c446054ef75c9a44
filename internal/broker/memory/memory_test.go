package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// recorder is a broker.Handler that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []*protocol.Message
}

func (r *recorder) HandleMessage(m *protocol.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *recorder) HandlePresence(*protocol.PresenceEvent) {}

func publishN(t *testing.T, b *Broker, channel string, n int, opts broker.ChannelOptions) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := b.Publish(context.Background(), &protocol.Message{Channel: channel, Event: "e"}, opts); err != nil {
			t.Fatal(err)
		}
	}
}

func offsets(msgs []*protocol.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Offset
	}
	return out
}

func TestPublishNumbersEachChannelFromOneUnderConcurrency(t *testing.T) {
	b := New()
	rec := &recorder{}
	if err := b.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ch := fmt.Sprintf("c%d", i%2)
				if _, err := b.Publish(context.Background(), &protocol.Message{Channel: ch}, broker.ChannelOptions{HistorySize: 10}); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	next := map[string]uint64{}
	for _, m := range rec.msgs {
		next[m.Channel]++
		if m.Offset != next[m.Channel] || m.Epoch != b.Epoch() {
			t.Fatalf("%s: delivered offset %d epoch %q, want %d %q", m.Channel, m.Offset, m.Epoch, next[m.Channel], b.Epoch())
		}
	}
	if next["c0"]+next["c1"] != workers*each {
		t.Fatalf("delivered %v", next)
	}
}

func TestHistoryKeepsTheNewestHistorySize(t *testing.T) {
	ctx := context.Background()
	b := New()
	opts := broker.ChannelOptions{HistorySize: 5}
	publishN(t, b, "c", 12, opts)
	msgs, pos, err := b.History(ctx, "c", broker.HistoryQuery{Options: opts})
	if err != nil || pos.Offset != 12 || pos.Epoch != b.Epoch() {
		t.Fatalf("history: pos %v err %v", pos, err)
	}
	if got := fmt.Sprint(offsets(msgs)); got != "[8 9 10 11 12]" {
		t.Fatalf("kept %s", got)
	}
	cases := []struct {
		name  string
		since *protocol.Position
		limit int
		want  string
		gap   bool
	}{
		{"newest two", nil, 2, "[11 12]", false},
		{"position only", nil, -1, "[]", false},
		{"since inside", &protocol.Position{Epoch: b.Epoch(), Offset: 9}, 0, "[10 11 12]", false},
		{"since inside, limited to the oldest", &protocol.Position{Epoch: b.Epoch(), Offset: 7}, 2, "[8 9]", false},
		{"since the oldest kept minus one", &protocol.Position{Epoch: b.Epoch(), Offset: 7}, 0, "[8 9 10 11 12]", false},
		{"since at top", &protocol.Position{Epoch: b.Epoch(), Offset: 12}, 0, "[]", false},
		{"since checked only", &protocol.Position{Epoch: b.Epoch(), Offset: 9}, -1, "[]", false},
		{"since overwritten", &protocol.Position{Epoch: b.Epoch(), Offset: 6}, 0, "", true},
		{"since past top", &protocol.Position{Epoch: b.Epoch(), Offset: 13}, 0, "", true},
		{"since in another epoch", &protocol.Position{Epoch: "OTHER", Offset: 9}, 0, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs, pos, err := b.History(ctx, "c", broker.HistoryQuery{Since: c.since, Limit: c.limit, Options: opts})
			if pos.Offset != 12 || pos.Epoch != b.Epoch() {
				t.Fatalf("position %v, want the channel's top even on a gap", pos)
			}
			if c.gap {
				if !errors.Is(err, broker.ErrGap) {
					t.Fatalf("err = %v, want ErrGap", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(offsets(msgs)); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestHistoryOfAnUnknownChannel(t *testing.T) {
	b := New()
	msgs, pos, err := b.History(context.Background(), "none", broker.HistoryQuery{Since: &protocol.Position{Epoch: b.Epoch()}})
	if err != nil || len(msgs) != 0 || pos.Offset != 0 {
		t.Fatalf("got %v %v %v", msgs, pos, err)
	}
	if _, _, err := b.History(context.Background(), "none", broker.HistoryQuery{Since: &protocol.Position{Epoch: b.Epoch(), Offset: 1}}); !errors.Is(err, broker.ErrGap) {
		t.Fatalf("since past the top of an empty channel: %v", err)
	}
}

func TestHistorySizeChangesAndSwitchingOff(t *testing.T) {
	ctx := context.Background()
	b := New()
	publishN(t, b, "c", 30, broker.ChannelOptions{HistorySize: 20})
	publishN(t, b, "c", 1, broker.ChannelOptions{HistorySize: 4})
	msgs, _, _ := b.History(ctx, "c", broker.HistoryQuery{})
	if got := fmt.Sprint(offsets(msgs)); got != "[28 29 30 31]" {
		t.Fatalf("after shrinking: %s", got)
	}
	publishN(t, b, "c", 1, broker.ChannelOptions{})
	msgs, pos, _ := b.History(ctx, "c", broker.HistoryQuery{})
	if len(msgs) != 0 || pos.Offset != 32 {
		t.Fatalf("history off: %v at %v", offsets(msgs), pos)
	}
}

func TestHistoryTTL(t *testing.T) {
	ctx := context.Background()
	b := New()
	clock := time.Unix(1000, 0)
	b.now = func() time.Time { return clock }
	opts := broker.ChannelOptions{HistorySize: 100, HistoryTTL: time.Minute}
	publishN(t, b, "c", 3, opts) // kept at t=1000
	clock = clock.Add(40 * time.Second)
	publishN(t, b, "c", 2, opts) // kept at t=1040
	clock = clock.Add(30 * time.Second)

	msgs, pos, err := b.History(ctx, "c", broker.HistoryQuery{Options: opts})
	if err != nil || fmt.Sprint(offsets(msgs)) != "[4 5]" || pos.Offset != 5 {
		t.Fatalf("after the first three expired: %v %v %v", offsets(msgs), pos, err)
	}
	if _, _, err := b.History(ctx, "c", broker.HistoryQuery{Since: &protocol.Position{Epoch: b.Epoch(), Offset: 2}, Options: opts}); !errors.Is(err, broker.ErrGap) {
		t.Fatalf("recovering across expired messages: %v, want ErrGap", err)
	}
	if msgs, _, err := b.History(ctx, "c", broker.HistoryQuery{Since: &protocol.Position{Epoch: b.Epoch(), Offset: 3}, Options: opts}); err != nil || len(msgs) != 2 {
		t.Fatalf("recovering after the expired ones: %v %v", offsets(msgs), err)
	}

	clock = clock.Add(time.Hour)
	msgs, pos, err = b.History(ctx, "c", broker.HistoryQuery{Options: opts})
	if err != nil || len(msgs) != 0 || pos.Offset != 5 {
		t.Fatalf("after everything expired: %v %v %v", offsets(msgs), pos, err)
	}
	s := b.shard("c")
	if st := s.streams["c"]; st.h != nil {
		t.Fatalf("an expired stream still holds its history (%d slots)", len(st.h.ring))
	}
	// Numbering goes on where it was.
	publishN(t, b, "c", 1, opts)
	if msgs, _, _ := b.History(ctx, "c", broker.HistoryQuery{Options: opts}); fmt.Sprint(offsets(msgs)) != "[6]" {
		t.Fatalf("after expiry: %v", offsets(msgs))
	}
}

func TestRingGrowsWithTheMessages(t *testing.T) {
	b := New()
	publishN(t, b, "c", 3, broker.ChannelOptions{HistorySize: 100000})
	if st := b.shard("c").streams["c"]; len(st.h.ring) > 8 {
		t.Fatalf("three messages hold a ring of %d slots", len(st.h.ring))
	}
}

func TestPresenceMembers(t *testing.T) {
	ctx := context.Background()
	b := New()
	for i := 0; i < 50; i++ {
		if err := b.AddMember(ctx, "p", protocol.Member{User: "u", Conn: fmt.Sprintf("c%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := b.Members(ctx, "p")
	if len(all) != 50 || all[0].Conn != "c00" || all[49].Conn != "c49" {
		t.Fatalf("members %v", all)
	}
	some, total, err := b.MembersUpTo(ctx, "p", 10)
	if err != nil || len(some) != 10 || total != 50 {
		t.Fatalf("MembersUpTo: %d members, total %d, %v", len(some), total, err)
	}
	for i := 1; i < len(some); i++ {
		if some[i-1].Conn >= some[i].Conn {
			t.Fatalf("not ordered by connection: %v", some)
		}
	}
	for i := 0; i < 50; i++ {
		_ = b.RemoveMember(ctx, "p", fmt.Sprintf("c%02d", i))
	}
	if len(b.shard("p").presence) != 0 {
		t.Fatal("an empty presence channel is still held")
	}
}
