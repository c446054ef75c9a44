package server_test

import (
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestRepliesDoNotWaitForTheWriteWindow: with a coalescing window of an
// hour, every reply to the client's own requests still arrives (a reply
// that waited for the window would never come within the test's timeout),
// and a pushed message queued before a reply arrives with it, before it.
func TestRepliesDoNotWaitForTheWriteWindow(t *testing.T) {
	cfg := servertest.Config()
	cfg.Namespaces["chat"] = config.ChannelOptions{Presence: true, JoinLeave: true}
	s := servertest.StartWith(t, server.WithWriteDelay(server.Options{Config: cfg}, time.Hour))
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", []string{"room", "chat:*"}, []string{"room"}))

	// subscribed right after ready: ready opened the window.
	if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room"}); f.Type() != "subscribed" {
		t.Fatalf("subscribe: %v", f)
	}
	// The publish fans out to this connection first (a pushed frame, which
	// waits for the window), then the ack comes and takes it along.
	ws.Send(map[string]any{"type": "publish", "id": 2, "channel": "room", "event": "e", "data": 1})
	if f := ws.Next(); f.Type() != "message" || f.Num("offset") != 1 {
		t.Fatalf("first frame after the publish %v, want the message", f)
	}
	if f := ws.Next(); f.Type() != "ack" || f.Num("id") != 2 {
		t.Fatalf("second frame after the publish %v, want its ack", f)
	}
	if f := ws.Request(map[string]any{"type": "ping", "id": 3}); f.Type() != "pong" {
		t.Fatalf("ping: %v", f)
	}
	ws.Send(map[string]any{"type": "unsubscribe", "id": 4, "channel": "nowhere"})
	ws.ExpectError("not_found")
	if f := ws.Request(map[string]any{"type": "subscribe", "id": 5, "channel": "chat:lobby"}); f.Type() != "subscribed" {
		t.Fatalf("subscribe to a presence channel: %v", f)
	}
	if f := ws.Request(map[string]any{"type": "presence", "id": 6, "channel": "chat:lobby"}); f.Type() != "members" {
		t.Fatalf("presence: %v", f)
	}
	if f := ws.Request(map[string]any{"type": "unsubscribe", "id": 7, "channel": "room"}); f.Type() != "unsubscribed" {
		t.Fatalf("unsubscribe: %v", f)
	}
	if f := ws.Request(map[string]any{"type": "refresh", "id": 8, "token": servertest.Token(t, "alice", nil, nil)}); f.Type() != "refreshed" {
		t.Fatalf("refresh: %v", f)
	}
}
