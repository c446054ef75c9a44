package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/memory"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestUnwritableFrameIsDroppedNotTheConnection: a frame the WebSocket may
// not carry (not valid UTF-8: one stored before entry checks existed, or a
// bug) reaching the writers costs that frame, logged and counted, never
// the connections it was meant for. They did nothing wrong.
func TestUnwritableFrameIsDroppedNotTheConnection(t *testing.T) {
	s := servertest.Start(t)
	sub := watch(t, s, "room")
	bad := []byte("{\"type\":\"message\",\"channel\":\"room\",\"event\":\"e\",\"data\":\"\xff\xfe\",\"id\":\"m-x\",\"ts\":1,\"offset\":9,\"epoch\":\"E\"}")
	// Alone in a write, then batched between good frames in one write.
	server.EnqueueToAll(s.Server, bad)
	expectUnharmed(t, s, sub, "room")
	server.EnqueueToAll(s.Server, []byte(`{"type":"pong","id":1}`))
	server.EnqueueToAll(s.Server, bad)
	server.EnqueueToAll(s.Server, []byte(`{"type":"pong","id":2}`))
	for want := 1; want <= 2; want++ {
		if f := sub.Expect("pong"); f.Num("id") != float64(want) {
			t.Fatalf("got %v, want pong %d", f, want)
		}
	}
	expectUnharmed(t, s, sub, "room")
	if _, err := s.API().Publish(context.Background(), "room", "e", 1); err != nil {
		t.Fatal(err)
	}
	if m := sub.Expect("message"); m.Str("event") != "e" {
		t.Fatal(m)
	}
	if line := grepLines(metricsText(t, s), `eddy_frames_dropped_total{reason="invalid_utf8"}`); !strings.HasSuffix(line, " 2") {
		t.Fatalf("dropped frames metric: %q, want 2", line)
	}
}

// TestPoisonInHistoryDoesNotLockOutRecovery: a message stored before entry
// checks existed (in Redis, say) used to close each subscriber that
// recovered it, over and over for as long as history kept it. Now the
// recovering subscriber gets everything else, in order, and stays.
func TestPoisonInHistoryDoesNotLockOutRecovery(t *testing.T) {
	b := memory.New()
	cfg := servertest.Config()
	cfg.ChannelDefaults.HistorySize = 10
	cfg.ChannelDefaults.HistoryTTL = time.Minute
	s := servertest.StartWith(t, server.Options{Config: cfg, Broker: b})
	opts := broker.ChannelOptions{HistorySize: 10, HistoryTTL: time.Minute}
	sub := watch(t, s, "room")
	put := func(data string) {
		t.Helper()
		if _, err := b.Publish(context.Background(), &protocol.Message{Channel: "room", Event: "e", Data: json.RawMessage(data), ID: "m-" + data[:1], TS: 1}, opts); err != nil {
			t.Fatal(err)
		}
	}
	put(`"a"`)
	put("\"\xff\"") // straight into the broker, past every entry check
	put(`"c"`)
	for _, want := range []string{"a", "c"} {
		if m := sub.Expect("message"); m["data"] != want {
			t.Fatalf("live: got %v, want %q", m, want)
		}
	}
	h, err := s.API().History(context.Background(), "room", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		again := servertest.Connect(t, s.WSURL, servertest.Token(t, "back", nil, nil))
		f := again.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room", "since": map[string]any{"epoch": h.Epoch, "offset": 0}})
		if f.Type() != "subscribed" || f["recovered"] != true {
			t.Fatalf("recovery: %v", f)
		}
		for _, want := range []string{"a", "c"} {
			if m := again.Expect("message"); m["data"] != want {
				t.Fatalf("recovered: got %v, want %q", m, want)
			}
		}
		if f := again.Request(map[string]any{"type": "ping", "id": 9}); f.Type() != "pong" {
			t.Fatalf("after recovering past the bad message: %v", f)
		}
	}
	expectUnharmed(t, s, sub, "room")
}
