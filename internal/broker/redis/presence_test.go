package redis

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/protocol"
)

func conns(ms []protocol.Member) string {
	s := ""
	for _, m := range ms {
		s += m.Conn + " "
	}
	return s
}

func TestPresenceMembers(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	b1, _ := node(t, "n1", Options{}, srv)
	b2, _ := node(t, "n2", Options{}, srv)
	m1 := protocol.Member{User: "u1", Conn: "c1", Info: json.RawMessage(`{"name":"Ann"}`)}
	m2 := protocol.Member{User: "u2", Conn: "c2"}
	if err := b2.AddMember(ctx, "room", m2); err != nil {
		t.Fatal(err)
	}
	if err := b1.AddMember(ctx, "room", m1); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*Broker{b1, b2} {
		got, err := b.Members(ctx, "room")
		if err != nil || len(got) != 2 || got[0].Conn != "c1" || got[0].User != "u1" ||
			string(got[0].Info) != `{"name":"Ann"}` || got[1].Conn != "c2" {
			t.Fatalf("%s: members %+v %v", b.NodeID(), got, err)
		}
	}
	if err := b1.RemoveMember(ctx, "room", "c1"); err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Members(ctx, "room"); err != nil || conns(got) != "c2 " {
		t.Fatalf("after remove: %+v %v", got, err)
	}
	if got, err := b2.Members(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("empty channel: %+v %v", got, err)
	}
}

// A node that stops refreshing (crashed) loses its members within
// PresenceTTL; a live node's members stay.
func TestPresenceExpiryOfCrashedNode(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	ttl := 600 * time.Millisecond
	alive, _ := node(t, "alive", Options{PresenceTTL: ttl}, srv)
	crashed, _ := node(t, "crashed", Options{PresenceTTL: ttl}, srv)
	if err := alive.AddMember(ctx, "room", protocol.Member{User: "a", Conn: "ca"}); err != nil {
		t.Fatal(err)
	}
	if err := crashed.AddMember(ctx, "room", protocol.Member{User: "b", Conn: "cb"}); err != nil {
		t.Fatal(err)
	}
	// Still there after more than one TTL: refreshed by its node.
	start := time.Now()
	eventually(t, 5*time.Second, "two TTLs to pass", func() bool { return time.Since(start) > 2*ttl })
	if got, _ := alive.Members(ctx, "room"); conns(got) != "ca cb " {
		t.Fatalf("refreshed members: %+v", got)
	}
	crashedAt := time.Now()
	_ = crashed.Close() // stops refreshing and does not remove members
	// Awaited, not timed: how soon after the TTL it goes depends on the
	// machine; that it goes, and the live member stays, is the behaviour.
	eventually(t, 10*time.Second, "crashed node's member to expire", func() bool {
		got, err := alive.Members(ctx, "room")
		return err == nil && conns(got) == "ca "
	})
	t.Logf("crashed node's member gone %v after it stopped (TTL %v)", time.Since(crashedAt), ttl)
	// The live node's member outlives its TTL many times over.
	start = time.Now()
	eventually(t, 5*time.Second, "two TTLs to pass", func() bool { return time.Since(start) > 2*ttl })
	if got, _ := alive.Members(ctx, "room"); conns(got) != "ca " {
		t.Fatalf("live member: %+v", got)
	}
}

func TestPresenceEventsCrossNode(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	b1, rec1 := node(t, "n1", Options{}, srv)
	b2, rec2 := node(t, "n2", Options{}, srv)
	b3, rec3 := node(t, "n3", Options{}, srv) // not subscribed
	for _, b := range []*Broker{b1, b2} {
		if err := b.Subscribe(ctx, "room"); err != nil {
			t.Fatal(err)
		}
	}
	member := protocol.Member{User: "u", Conn: "c", Info: json.RawMessage(`{"x":1}`)}
	for _, action := range []string{protocol.ActionJoin, protocol.ActionLeave} {
		ev := &protocol.PresenceEvent{Channel: "room", Action: action, Member: member}
		if err := b1.PublishPresence(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	_ = b3
	for _, rec := range []*recorder{rec1, rec2} {
		eventually(t, 5*time.Second, "join and leave", func() bool { return len(rec.events()) == 2 })
		for i, ev := range rec.events() {
			want := []string{"join", "leave"}[i]
			if ev.Channel != "room" || ev.Action != want || ev.Member.Conn != "c" || string(ev.Member.Info) != `{"x":1}` {
				t.Errorf("event %d: %+v", i, ev)
			}
		}
	}
	// A barrier through n3's connection: then it would have had the events.
	if err := b3.Subscribe(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := b1.PublishPresence(ctx, &protocol.PresenceEvent{Channel: "other", Action: "join", Member: member}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "barrier", func() bool { return len(rec3.events()) == 1 })
	if ev := rec3.events()[0]; ev.Channel != "other" {
		t.Errorf("unsubscribed node got %+v", ev)
	}
}

func TestNodesRegistry(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	short, _ := node(t, "a-short", Options{NodeTTL: 500 * time.Millisecond}, srv)
	long, _ := node(t, "b-long", Options{}, srv)
	if err := short.Announce(ctx, NodeInfo{Name: "one", Connections: 3, Subscriptions: 4, UptimeS: 5}); err != nil {
		t.Fatal(err)
	}
	if err := long.Announce(ctx, NodeInfo{Name: "two"}); err != nil {
		t.Fatal(err)
	}
	got, err := long.Nodes(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("nodes %+v %v", got, err)
	}
	if got[0] != (NodeInfo{ID: "a-short", Name: "one", Connections: 3, Subscriptions: 4, UptimeS: 5}) || got[1].ID != "b-long" {
		t.Fatalf("nodes %+v", got)
	}
	js, _ := json.Marshal(got[0])
	if string(js) != `{"id":"a-short","name":"one","connections":3,"subscriptions":4,"uptime_s":5,"messages_in_per_s":0,"messages_out_per_s":0}` {
		t.Errorf("json %s", js)
	}
	// "a-short" stops announcing: gone after its TTL.
	eventually(t, 5*time.Second, "expiry of a-short", func() bool {
		got, err := long.Nodes(ctx)
		return err == nil && len(got) == 1 && got[0].ID == "b-long"
	})
	// Close removes the node's own entry at once.
	_ = long.Close()
	if got, err := short.Nodes(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after close: %+v %v", got, err)
	}
}

func TestNotify(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	b1, _ := node(t, "n1", Options{}, srv)
	b2, _ := node(t, "n2", Options{}, srv)
	got := make(chan string, 10)
	for _, b := range []*Broker{b1, b2} {
		b.OnNotify(func(topic string, payload []byte) { got <- b.NodeID() + " " + topic + " " + string(payload) })
	}
	if err := b2.Notify(ctx, "functions:changed", []byte(`{"id":"f1"}`)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 2 {
		select {
		case s := <-got:
			seen[s] = true
		case <-ctx.Done():
			t.Fatalf("notifications: %v", seen)
		}
	}
	for _, n := range []string{"n1", "n2"} {
		if want := n + ` functions:changed {"id":"f1"}`; !seen[want] {
			t.Errorf("missing %q in %v", want, seen)
		}
	}
}

// MembersUpTo samples a big channel: the count is exact, the list capped.
func TestPresenceMembersUpTo(t *testing.T) {
	srv := redistest.Start(t)
	ctx := ctxT(t)
	b, _ := node(t, "n1", Options{}, srv)
	for i := 0; i < 25; i++ {
		if err := b.AddMember(ctx, "big", protocol.Member{User: fmt.Sprint("u", i), Conn: fmt.Sprintf("c%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	got, total, err := b.MembersUpTo(ctx, "big", 10)
	if err != nil || total != 25 || len(got) != 10 {
		t.Fatalf("sample: %d members of %d, %v", len(got), total, err)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Conn >= got[i].Conn {
			t.Fatalf("sample not ordered by conn: %+v", got)
		}
	}
	if got, total, err := b.MembersUpTo(ctx, "nobody", 10); err != nil || total != 0 || len(got) != 0 {
		t.Fatalf("empty channel: %+v %d %v", got, total, err)
	}
}
