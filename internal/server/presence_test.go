package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/memory"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

func presenceServer(t *testing.T, mutate ...func(*config.Config)) *servertest.Server {
	return servertest.Start(t, append([]func(*config.Config){func(c *config.Config) {
		c.Namespaces["room"] = config.ChannelOptions{Presence: true, JoinLeave: true}
		c.Namespaces["quiet"] = config.ChannelOptions{Presence: true}
	}}, mutate...)...)
}

// nextPresence returns the next presence event, skipping nothing else.
func nextPresence(t *testing.T, ws *servertest.WS) (action, user, conn string) {
	t.Helper()
	f := ws.Expect("presence")
	m, _ := f["member"].(map[string]any)
	u, _ := m["user"].(string)
	c, _ := m["conn"].(string)
	return f.Str("action"), u, c
}

// expectPresence waits for a presence event of user with action, passing
// over other presence events (e.g. a member's own join).
func expectPresence(t *testing.T, ws *servertest.WS, action, user string) (conn string) {
	t.Helper()
	for {
		a, u, c := nextPresence(t, ws)
		if a == action && u == user {
			return c
		}
	}
}

func memberConns(f servertest.Frame) map[string]string {
	out := map[string]string{}
	list, _ := f["members"].([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		c, _ := m["conn"].(string)
		u, _ := m["user"].(string)
		out[c] = u
	}
	return out
}

func apiMembers(t *testing.T, s *servertest.Server, channel string) map[string]string {
	t.Helper()
	p, err := s.API().Presence(context.Background(), channel)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range p.Members {
		out[m.Conn] = m.User
	}
	return out
}

func TestPresenceJoinLeaveAndMembers(t *testing.T) {
	s := presenceServer(t)
	alice := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	sub := alice.Request(map[string]any{"type": "subscribe", "id": 2, "channel": "room:1"})
	if got := memberConns(sub); len(got) != 1 || sub.Num("members_total") != 1 || sub.Str("epoch") == "" {
		t.Fatalf("alice's subscribed: %v", sub)
	}
	expectPresence(t, alice, "join", "alice") // her own join comes too

	bob := servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", nil, nil))
	sub = bob.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:1"})
	if got := memberConns(sub); len(got) != 2 || sub.Num("members_total") != 2 {
		t.Fatalf("bob's subscribed: %v", sub)
	}
	bobConn := expectPresence(t, alice, "join", "bob")
	if apiMembers(t, s, "room:1")[bobConn] != "bob" {
		t.Fatal("API presence misses bob")
	}
	if f := alice.Request(map[string]any{"type": "presence", "id": 3, "channel": "room:1"}); len(memberConns(f)) != 2 || f.Type() != "members" {
		t.Fatalf("presence request: %v", f)
	}

	bob.Request(map[string]any{"type": "unsubscribe", "id": 2, "channel": "room:1"})
	if c := expectPresence(t, alice, "leave", "bob"); c != bobConn {
		t.Fatalf("leave for conn %s, want %s", c, bobConn)
	}
	if _, ok := apiMembers(t, s, "room:1")[bobConn]; ok {
		t.Fatal("bob still listed after unsubscribing")
	}

	// Without join_leave the list is kept but nothing is announced.
	q := alice.Request(map[string]any{"type": "subscribe", "id": 4, "channel": "quiet:1"})
	if len(memberConns(q)) != 1 {
		t.Fatalf("quiet channel subscribed: %v", q)
	}
	bob.Request(map[string]any{"type": "subscribe", "id": 3, "channel": "quiet:1"})
	if len(apiMembers(t, s, "quiet:1")) != 2 {
		t.Fatal("quiet channel presence")
	}
	expectNoMessages(t, alice)
}

func TestPresenceListsEachConnectionOfAUser(t *testing.T) {
	s := presenceServer(t)
	tok := servertest.Token(t, "carol", nil, nil)
	a := servertest.Connect(t, s.WSURL, tok)
	b := servertest.Connect(t, s.WSURL, tok)
	a.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:2"})
	f := b.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:2"})
	got := memberConns(f)
	if len(got) != 2 {
		t.Fatalf("members %v, want carol twice", got)
	}
	for conn, user := range got {
		if user != "carol" || conn == "" {
			t.Fatalf("members %v", got)
		}
	}
	if len(apiMembers(t, s, "room:2")) != 2 {
		t.Fatal("API lists carol's connections as one")
	}
	// One connection going leaves the other listed.
	_ = b.Conn.NetConn().Close()
	servertest.Eventually(t, "one carol left", func() bool { return len(apiMembers(t, s, "room:2")) == 1 })
}

func TestPresenceLeaveOnAbruptDisconnect(t *testing.T) {
	s := presenceServer(t)
	watcher := servertest.Connect(t, s.WSURL, servertest.Token(t, "w", nil, nil))
	watcher.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:3"})
	gone := servertest.Connect(t, s.WSURL, servertest.Token(t, "gone", nil, nil))
	gone.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:3"})
	conn := expectPresence(t, watcher, "join", "gone")
	_ = gone.Conn.NetConn().Close() // no close frame: the TCP connection just ends
	if c := expectPresence(t, watcher, "leave", "gone"); c != conn {
		t.Fatalf("leave of %s, want %s", c, conn)
	}
	if _, ok := apiMembers(t, s, "room:3")[conn]; ok {
		t.Fatal("still listed after leaving")
	}
}

func TestPresenceLeaveOnPingTimeout(t *testing.T) {
	s := presenceServer(t, func(c *config.Config) { c.PingInterval = 50 * time.Millisecond })
	watcher := servertest.Connect(t, s.WSURL, servertest.Token(t, "w", nil, nil))
	watcher.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:4"})
	// This client never reads, so it never answers a ping: its TCP
	// connection stays open, as with a peer that vanished without a FIN.
	ghost, _ := servertest.DialPaused(t, s.WSURL)
	ghost.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "ghost", nil, nil)})
	ghost.Send(map[string]any{"type": "subscribe", "id": 1, "channel": "room:4"})
	conn := expectPresence(t, watcher, "join", "ghost")
	if c := expectPresence(t, watcher, "leave", "ghost"); c != conn {
		t.Fatalf("leave of %s, want %s", c, conn)
	}
	if got := apiMembers(t, s, "room:4"); len(got) != 1 {
		t.Fatalf("members after the ping timeout: %v", got)
	}
}

func TestPresenceRequestAndAPIErrors(t *testing.T) {
	s := presenceServer(t)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", []string{"room:*", "plain"}, nil))
	if f := ws.Request(map[string]any{"type": "presence", "id": 1, "channel": "plain"}); f.Str("code") != "bad_request" {
		t.Fatalf("presence of a channel without presence: %v", f)
	}
	if f := ws.Request(map[string]any{"type": "presence", "id": 2, "channel": "secret:1"}); f.Str("code") != "forbidden" {
		t.Fatalf("presence of a forbidden channel: %v", f)
	}
	f := ws.Request(map[string]any{"type": "presence", "id": 3, "channel": "room:empty"})
	if list, ok := f["members"].([]any); f.Type() != "members" || !ok || len(list) != 0 {
		t.Fatalf("presence of an empty channel: %v", f)
	}
	base := s.APIBase() + "/api/v1/presence"
	for _, c := range []struct {
		query, key string
		status     int
		code       string
	}{
		{"?channel=plain", servertest.APIKey, 400, "bad_request"},
		{"", servertest.APIKey, 400, "bad_request"},
		{"?channel=room:1", "", 401, "unauthorized"},
	} {
		status, body, raw := doRaw(t, http.MethodGet, base+c.query, c.key, "")
		if status != c.status || body.Error.Code != c.code {
			t.Errorf("GET presence%s: %d %s", c.query, status, raw)
		}
	}
	if status, _, raw := doRaw(t, http.MethodGet, base+"?channel=room:1", servertest.APIKey, ""); status != 200 || !strings.Contains(raw, `"members":[]`) {
		t.Errorf("GET presence of an empty channel: %d %s", status, raw)
	}
}

func TestPresenceJoinEventsOfABurstAllArrive(t *testing.T) {
	s := presenceServer(t)
	watcher := servertest.Connect(t, s.WSURL, servertest.Token(t, "w", nil, nil))
	watcher.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:5"})
	const n = 30
	done := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "joiner", nil, nil))
			ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:5"})
		}()
	}
	for i := 0; i < n; i++ {
		<-done
	}
	conns := map[string]bool{}
	for len(conns) < n {
		if a, u, c := nextPresence(t, watcher); a == "join" && u == "joiner" {
			conns[c] = true
		}
	}
	if len(apiMembers(t, s, "room:5")) != n+1 {
		t.Fatal("API presence does not list everyone")
	}
}

// closingBroker runs hook inside a subscribe, after the subscription is
// registered and before the member is added.
type closingBroker struct {
	*memory.Broker
	hook atomic.Pointer[func(channel string)]
}

func (b *closingBroker) History(ctx context.Context, channel string, q broker.HistoryQuery) ([]*protocol.Message, protocol.Position, error) {
	if h := b.hook.Swap(nil); h != nil {
		(*h)(channel)
	}
	return b.Broker.History(ctx, channel, q)
}

// TestConnectionClosedDuringSubscribeLeavesNoMember closes the connection
// (as a slow consumer) while its subscribe is half done: neither the
// subscription nor the presence member may outlive it.
func TestConnectionClosedDuringSubscribeLeavesNoMember(t *testing.T) {
	cfg := servertest.Config()
	cfg.Namespaces["room"] = config.ChannelOptions{Presence: true, JoinLeave: true}
	cfg.MaxMessageBytes, cfg.MaxQueueBytes = 1024, 1024
	b := &closingBroker{Broker: memory.New()}
	s := servertest.StartWith(t, server.Options{Config: cfg, Broker: b})
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "doomed", nil, nil))
	// The checks below hold before the subscribe has even started, so the
	// test waits for the hook to have run: ending early closed the client
	// under the hook, which then read "use of closed network connection".
	hooked := make(chan struct{})
	hook := func(channel string) {
		defer close(hooked)
		// A message bigger than the queue may hold, arriving during the
		// catch-up, makes the server close the connection as a slow consumer.
		big := []byte(`"` + strings.Repeat("x", 1000) + `"`)
		if _, err := b.Publish(context.Background(), &protocol.Message{Channel: channel, Event: "e", Data: big}, broker.ChannelOptions{}); err != nil {
			t.Error(err)
		}
		if code := ws.CloseCode(); code != 4009 {
			t.Errorf("close code %d (%v), want 4009", code, ws.CloseErr())
		}
	}
	b.hook.Store(&hook)
	ws.Send(map[string]any{"type": "subscribe", "id": 1, "channel": "room:6"})
	select {
	case <-hooked:
	case <-time.After(servertest.Timeout):
		t.Fatal("the subscribe never read history")
	}
	servertest.Eventually(t, "the subscription to go", func() bool { return s.Hub().Subscribers("room:6") == 0 })
	servertest.Eventually(t, "the member to go", func() bool { return len(apiMembers(t, s, "room:6")) == 0 })
}
