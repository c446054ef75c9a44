package server_test

import (
	"context"
	"strings"
	"testing"

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
