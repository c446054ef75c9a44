package webhooks_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/node"
	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/webhooks"
)

const hookSecret = "whsec-test-0123456789"

// startNode runs a node as `eddy serve` builds it, with cfg changed by
// mutate, and returns it with its webhooks.
func startNode(t *testing.T, mutate ...func(*config.Config)) (*servertest.Server, *webhooks.System) {
	t.Helper()
	cfg := servertest.Config()
	cfg.DataDir = t.TempDir()
	cfg.WebhookWindow = 20 * time.Millisecond
	cfg.Namespaces["chat"] = config.ChannelOptions{Presence: true, JoinLeave: true}
	for _, m := range mutate {
		m(&cfg)
	}
	n, err := node.Build(cfg, servertest.Logger(t))
	if err != nil {
		t.Fatalf("build node: %v", err)
	}
	t.Cleanup(n.Close)
	wh := n.Webhooks
	return servertest.StartWith(t, n.Options), wh
}

// verifyEddySignature is the recipe of docs/webhooks.md: the hex
// HMAC-SHA256 of the raw body with the secret, after "sha256=", compared
// in constant time.
func verifyEddySignature(secret string, body []byte, header string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(header))
}

// TestEveryEventTypeReachesTheReceiverSigned: one node, one receiver that
// asked for every event. Occupancy and membership follow the node's
// subscribers (a user with two connections is one member), a failing
// function and a connection limit each send one event naming what failed,
// and the Pusher-protocol events go out through Emit. Every POST carries
// a signature that the documented recipe verifies, and every event an id.
func TestEveryEventTypeReachesTheReceiverSigned(t *testing.T) {
	rcv := newReceiver(t)
	s, wh := startNode(t, func(c *config.Config) {
		c.MaxConnectionsPerUser = 2
		c.Webhooks = []config.Webhook{{URL: rcv.URL(), Secret: hookSecret, Events: config.WebhookEvents}}
	})
	ctx := context.Background()
	wait := func(what string, cond func([]webhooks.Event) bool) []webhooks.Event {
		t.Helper()
		var evs []webhooks.Event
		servertest.Eventually(t, what, func() bool { evs = rcv.events(t); return cond(evs) })
		return evs
	}

	// Occupied and member_added once, although alice joins twice.
	a1 := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	a1.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	a2 := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	a2.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	wait("occupied and member_added", func(e []webhooks.Event) bool {
		return len(named(e, webhooks.ChannelOccupied)) == 1 && len(named(e, webhooks.MemberAdded)) == 1
	})
	// One of alice's two connections leaving removes no member and
	// vacates nothing; the marker proves the node got that far.
	a1.Request(map[string]any{"type": "unsubscribe", "id": 2, "channel": "chat:room"})
	m := servertest.Connect(t, s.WSURL, servertest.Token(t, "marker", nil, nil))
	m.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:marker"})
	evs := wait("marker occupied", func(e []webhooks.Event) bool {
		for _, x := range named(e, webhooks.ChannelOccupied) {
			if x.Channel == "feed:marker" {
				return true
			}
		}
		return false
	})
	if n := len(named(evs, webhooks.MemberRemoved)) + len(named(evs, webhooks.ChannelVacated)); n != 0 {
		t.Fatalf("alice still has a connection in chat:room, yet got %d removed/vacated events: %+v", n, evs)
	}
	a2.Request(map[string]any{"type": "unsubscribe", "id": 2, "channel": "chat:room"})
	evs = wait("member_removed and vacated", func(e []webhooks.Event) bool {
		return len(named(e, webhooks.MemberRemoved)) == 1 && len(named(e, webhooks.ChannelVacated)) == 1
	})
	if e := named(evs, webhooks.MemberAdded)[0]; e.Channel != "chat:room" || e.UserID != "alice" {
		t.Fatalf("member_added %+v, want alice in chat:room", e)
	}
	if e := named(evs, webhooks.MemberRemoved)[0]; e.Channel != "chat:room" || e.UserID != "alice" {
		t.Fatalf("member_removed %+v, want alice in chat:room", e)
	}
	if e := named(evs, webhooks.ChannelVacated)[0]; e.Channel != "chat:room" {
		t.Fatalf("vacated %+v, want chat:room", e)
	}

	// function_error: a function that runs past its time limit (a
	// failure; a throw would be a rejection, which is the function's answer).
	if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/functions/spinner", map[string]any{"runtime": "js", "timeout_ms": 20, "source": `function handle(m){ while (true) {} }`}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/associations", map[string]any{"pattern": "fail:*", "functions": []string{"spinner"}}, nil); err != nil {
		t.Fatal(err)
	}
	// The publisher hears of the failure as on_error says; the receiver too.
	_, _ = s.API().Publish(ctx, "fail:x", "e", 1)
	evs = wait("function_error", func(e []webhooks.Event) bool { return len(named(e, webhooks.FunctionError)) == 1 })
	if e := named(evs, webhooks.FunctionError)[0]; e.Function != "spinner" || e.Channel != "fail:x" || !strings.Contains(e.Error, "timeout") || e.Count != 1 {
		t.Fatalf("function_error %+v, want function spinner on fail:x with its timeout", e)
	}

	// connection_limit: bob's third connection is refused.
	servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", nil, nil))
	servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", nil, nil))
	b3 := servertest.Dial(t, s.WSURL)
	b3.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "bob", nil, nil)})
	b3.ExpectError("limit_exceeded")
	evs = wait("connection_limit", func(e []webhooks.Event) bool { return len(named(e, webhooks.ConnectionLimit)) == 1 })
	if e := named(evs, webhooks.ConnectionLimit)[0]; e.Limit != "max_connections_per_user" || e.Node == "" {
		t.Fatalf("connection_limit %+v, want limit max_connections_per_user and the node", e)
	}

	// The Pusher protocol's events, through Emit.
	wh.Emit("", webhooks.Event{Name: webhooks.ClientEvent, Channel: "private-x", Event: "client-typing", Data: `{"a":1}`, SocketID: "1.2"})
	wh.Emit("", webhooks.Event{Name: webhooks.CacheMiss, Channel: "cache-x"})
	evs = wait("client_event and cache_miss", func(e []webhooks.Event) bool {
		return len(named(e, webhooks.ClientEvent)) == 1 && len(named(e, webhooks.CacheMiss)) == 1
	})
	if e := named(evs, webhooks.ClientEvent)[0]; e.Event != "client-typing" || e.Data != `{"a":1}` || e.SocketID != "1.2" {
		t.Fatalf("client_event %+v", e)
	}

	ids := map[string]bool{}
	for _, e := range evs {
		if e.ID == "" || ids[e.ID] {
			t.Fatalf("event %+v: id missing or repeated", e)
		}
		ids[e.ID] = true
	}
	for _, p := range rcv.posts() {
		if !verifyEddySignature(hookSecret, p.body, p.header.Get("X-Eddy-Signature")) {
			t.Fatalf("POST %s: signature %q does not verify", p.body, p.header.Get("X-Eddy-Signature"))
		}
		if verifyEddySignature("another-secret", p.body, p.header.Get("X-Eddy-Signature")) {
			t.Fatal("the signature verifies with another secret")
		}
		if p.header.Get("Content-Type") != "application/json" {
			t.Fatalf("Content-Type %q", p.header.Get("Content-Type"))
		}
	}
}

// TestShutdownReportsWhatTheNodeHeldLast: a node that stops while it has
// subscribers reports their channels vacated (and members removed) before
// it exits: nobody else would.
func TestShutdownReportsWhatTheNodeHeldLast(t *testing.T) {
	rcv := newReceiver(t)
	cfg := servertest.Config()
	cfg.DataDir = t.TempDir()
	cfg.WebhookWindow = 20 * time.Millisecond
	cfg.Namespaces["chat"] = config.ChannelOptions{Presence: true}
	cfg.Webhooks = []config.Webhook{{URL: rcv.URL(), Secret: hookSecret, Events: config.WebhookEvents}}
	n, err := node.Build(cfg, servertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	s := servertest.StartWith(t, n.Options)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "ivan", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:end"})
	servertest.Eventually(t, "occupied", func() bool { return len(named(rcv.events(t), webhooks.ChannelOccupied)) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	n.Close()
	evs := rcv.events(t) // Close returned: what was to be sent has been
	if len(named(evs, webhooks.ChannelVacated)) != 1 || len(named(evs, webhooks.MemberRemoved)) != 1 {
		t.Fatalf("after shutdown: %+v, want chat:end vacated and ivan removed", evs)
	}
}
