package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/pusher"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestPusherConnectAndPublic: connection_established with a socket id and
// activity_timeout as a JSON string, pusher:ping answered, a public channel
// gets a triggered event with data as a string.
func TestPusherConnectAndPublic(t *testing.T) {
	s := servertest.Start(t, withPusher)
	p := dialPusher(t, s)
	if !strings.Contains(p.SocketID, ".") {
		t.Fatalf("socket id %q is not N.N", p.SocketID)
	}
	p.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	p.expect("pusher:pong")
	p.join("news", "")
	trigger(t, s, map[string]any{"name": "headline", "channel": "news", "data": `{"title":"hi"}`})
	f := p.expectOn("headline", "news")
	if f["data"] != `{"title":"hi"}` {
		t.Fatalf("data %#v, want the string as triggered", f["data"])
	}
	p.Send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
	p.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	p.expect("pusher:pong") // the unsubscribe was handled before it
	trigger(t, s, map[string]any{"name": "headline", "channel": "news", "data": "2"})
	p.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	p.expect("pusher:pong")
}

// TestPusherRefusedConnections: an unknown key gets pusher:error 4001 and
// close 4001; a missing protocol 4008; an unsupported one 4007.
func TestPusherRefusedConnections(t *testing.T) {
	s := servertest.Start(t, withPusher)
	for _, tc := range []struct {
		url  string
		code int
	}{
		{pusherURL(s, "nokey"), pusher.CodeAppNotFound},
		{"ws://" + s.Addr().String() + "/app/" + testPusherKey, pusher.CodeNoProtocol},
		{"ws://" + s.Addr().String() + "/app/" + testPusherKey + "?protocol=99", pusher.CodeUnsupportedVersion},
	} {
		ws := servertest.Dial(t, tc.url)
		f := ws.Next()
		if f.Str("event") != "pusher:error" {
			t.Fatalf("%s: got %v", tc.url, f)
		}
		var d struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(mustRaw(t, f["data"]), &d); err != nil || d.Code != tc.code || d.Message == "" {
			t.Fatalf("%s: error data %v (%v), want code %d and a message", tc.url, f["data"], err, tc.code)
		}
		if code := ws.CloseCode(); int(code) != tc.code {
			t.Fatalf("%s: close code %d, want %d", tc.url, code, tc.code)
		}
	}
}

func mustRaw(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPusherPrivateAuth: a private channel needs key:HMAC(socket_id:channel);
// a wrong one gets pusher:subscription_error 401 and no events.
func TestPusherPrivateAuth(t *testing.T) {
	s := servertest.Start(t, withPusher)
	p := dialPusher(t, s)
	p.subscribe("private-orders", testPusherKey+":"+strings.Repeat("0", 64), "")
	f := p.expectOn("pusher:subscription_error", "private-orders")
	if d := eventData(t, f); d["status"] != float64(401) || !strings.Contains(fmt.Sprint(d["error"]), "invalid signature") {
		t.Fatalf("subscription_error data %v", d)
	}
	// Another socket's auth does not open the channel either.
	other := dialPusher(t, s)
	p.subscribe("private-orders", pusher.ChannelAuth(testPusherKey, testPusherSecret, other.SocketID, "private-orders", ""), "")
	p.expectOn("pusher:subscription_error", "private-orders")
	p.join("private-orders", "")
	trigger(t, s, map[string]any{"name": "paid", "channels": []string{"private-orders"}, "data": "1"})
	p.expectOn("paid", "private-orders")
}

// TestPusherPresenceOneMemberPerUser: a user with two connections is one
// member; member_removed comes when its last connection leaves; an Eddy
// protocol client in the same channel is a member for Pusher clients and
// Pusher members are in Eddy's member list.
func TestPusherPresenceOneMemberPerUser(t *testing.T) {
	s := servertest.Start(t, withPusher)
	const ch = "presence-room.1"
	cd := func(user string) string { return fmt.Sprintf(`{"user_id":%q,"user_info":{"name":"%s!"}}`, user, user) }

	watcher := dialPusher(t, s)
	f := watcher.join(ch, cd("w"))
	if d := eventData(t, f); fmt.Sprint(d["presence"].(map[string]any)["ids"]) != "[w]" {
		t.Fatalf("first member sees %v", d)
	}
	tab1 := dialPusher(t, s)
	f = tab1.join(ch, cd("alice"))
	pres := eventData(t, f)["presence"].(map[string]any)
	if pres["count"] != float64(2) || pres["hash"].(map[string]any)["w"].(map[string]any)["name"] != "w!" {
		t.Fatalf("alice sees %v", pres)
	}
	added := watcher.expectOn("pusher_internal:member_added", ch)
	if d := eventData(t, added); d["user_id"] != "alice" || d["user_info"].(map[string]any)["name"] != "alice!" {
		t.Fatalf("member_added %v", d)
	}
	tab2 := dialPusher(t, s)
	f = tab2.join(ch, cd("alice"))
	if c := eventData(t, f)["presence"].(map[string]any)["count"]; c != float64(2) {
		t.Fatalf("second tab sees count %v, want 2 (alice once)", c)
	}
	// An Eddy-protocol user joins the same channel.
	eddy := servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", nil, nil))
	reply := eddy.Request(map[string]any{"type": "subscribe", "id": 1, "channel": ch})
	if reply.Num("members_total") != 4 { // w, alice twice, bob: Eddy lists connections
		t.Fatalf("eddy subscribed %v", reply)
	}
	if d := eventData(t, watcher.expectOn("pusher_internal:member_added", ch)); d["user_id"] != "bob" {
		t.Fatalf("member_added %v, want bob (the Eddy client)", d)
	}
	// The first tab closing is not a departure; the second is.
	_ = tab1.Conn.NetConn().Close()
	_ = tab2.Conn.NetConn().Close()
	if d := eventData(t, watcher.expectOn("pusher_internal:member_removed", ch)); d["user_id"] != "alice" {
		t.Fatalf("member_removed %v", d)
	}
	status, body := pusherCall(t, s, http.MethodGet, "/apps/"+testPusherApp+"/channels/"+ch+"/users", nil, nil)
	if status != 200 || !strings.Contains(body, `"bob"`) || !strings.Contains(body, `"w"`) || strings.Contains(body, "alice") {
		t.Fatalf("users: %d %s", status, body)
	}
	watcher.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	watcher.expect("pusher:pong")
	watcher.none() // alice's first tab produced nothing
}

// TestPusherClientEvents: client-* on a private channel reach the other
// subscribers, not the sender; on a presence channel they carry user_id;
// public channels refuse them; past 10 a second they get 4301.
func TestPusherClientEvents(t *testing.T) {
	s := servertest.Start(t, withPusher)
	a, b := dialPusher(t, s), dialPusher(t, s)
	a.join("private-chat", "")
	b.join("private-chat", "")
	a.Send(map[string]any{"event": "client-typing", "channel": "private-chat", "data": map[string]any{"who": "a"}})
	f := b.expectOn("client-typing", "private-chat")
	if d, _ := f["data"].(map[string]any); d["who"] != "a" {
		t.Fatalf("client event data %v", f["data"])
	}
	a.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	a.expect("pusher:pong")
	a.none() // not echoed

	pa, pb := dialPusher(t, s), dialPusher(t, s)
	pa.join("presence-game", `{"user_id":"ann"}`)
	pb.join("presence-game", `{"user_id":"ben"}`)
	pa.expectOn("pusher_internal:member_added", "presence-game")
	pb.Send(map[string]any{"event": "client-move", "channel": "presence-game", "data": map[string]any{"x": 1}})
	if f := pa.expectOn("client-move", "presence-game"); f.Str("user_id") != "ben" {
		t.Fatalf("presence client event %v lacks user_id ben", f)
	}

	a.join("public-room", "")
	a.Send(map[string]any{"event": "client-x", "channel": "public-room", "data": map[string]any{}})
	a.expect("pusher:error")

	limited := false
	for i := 0; i < 3*10 && !limited; i++ {
		a.Send(map[string]any{"event": "client-burst", "channel": "private-chat", "data": i})
		a.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
		for {
			f := a.Next()
			if f.Str("event") == "pusher:pong" {
				break
			}
			if f.Str("event") == "pusher:error" && strings.Contains(fmt.Sprint(f["data"]), "4301") {
				limited = true
			}
		}
	}
	if !limited {
		t.Fatal("30 client events in a row were never rate limited")
	}
}

// TestPusherClientEventsOff: without pusher_client_events they are refused.
func TestPusherClientEventsOff(t *testing.T) {
	s := servertest.Start(t, withPusher, func(c *config.Config) { c.PusherClientEvents = false })
	a, b := dialPusher(t, s), dialPusher(t, s)
	a.join("private-x", "")
	b.join("private-x", "")
	a.Send(map[string]any{"event": "client-hi", "channel": "private-x", "data": 1})
	if f := a.expect("pusher:error"); !strings.Contains(fmt.Sprint(f["data"]), "pusher_client_events") {
		t.Fatalf("refusal %v does not name the setting", f)
	}
	b.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	b.expect("pusher:pong")
}

// TestPusherOneMessagePerEvent: events queued together still leave as one
// WebSocket message each (Pusher has no batching), with and without
// permessage-deflate negotiated.
func TestPusherOneMessagePerEvent(t *testing.T) {
	for _, deflate := range []bool{false, true} {
		s := servertest.Start(t, withPusher, func(c *config.Config) { c.Compression = deflate })
		h := &countingHandler{msgs: make(chan []byte, 1000)}
		conn, _, err := gws.NewClient(h, &gws.ClientOption{Addr: pusherURL(s, testPusherKey), PermessageDeflate: gws.PermessageDeflate{Enabled: deflate}})
		if err != nil {
			t.Fatal(err)
		}
		go conn.ReadLoop()
		t.Cleanup(func() { _ = conn.NetConn().Close() })
		if m := <-h.msgs; !strings.Contains(string(m), "connection_established") {
			t.Fatalf("first message %s", m)
		}
		_ = conn.WriteString(`{"event":"pusher:subscribe","data":{"channel":"burst"}}`)
		if m := <-h.msgs; !strings.Contains(string(m), "subscription_succeeded") {
			t.Fatalf("subscribe answer %s", m)
		}
		batch := make([]map[string]any, 50)
		for i := range batch {
			batch[i] = map[string]any{"name": "n", "channel": "burst", "data": fmt.Sprint(i)}
		}
		if status, body := pusherCall(t, s, "POST", "/apps/"+testPusherApp+"/batch_events", nil, map[string]any{"batch": batch}); status != 200 {
			t.Fatalf("batch: %d %s", status, body)
		}
		for i := range batch {
			select {
			case m := <-h.msgs:
				var f map[string]any
				if err := json.Unmarshal(m, &f); err != nil || f["data"] != fmt.Sprint(i) {
					t.Fatalf("deflate %v: message %d is %s (%v), want one event with data %d", deflate, i, m, err, i)
				}
			case <-time.After(servertest.Timeout):
				t.Fatalf("deflate %v: %d of 50 events", deflate, i)
			}
		}
	}
}

type countingHandler struct {
	gws.BuiltinEventHandler
	msgs chan []byte
}

func (h *countingHandler) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	h.msgs <- append([]byte(nil), m.Bytes()...)
}

// TestPusherServerPing: a client silent for activity_timeout gets a
// pusher:ping from the server, and its pusher:pong keeps it connected.
func TestPusherServerPing(t *testing.T) {
	cfg := servertest.Config()
	withPusher(&cfg)
	s := servertest.StartWith(t, server.WithPusherActivity(server.Options{Config: cfg}, 1))
	p := &pusherWS{WS: servertest.Dial(t, pusherURL(s, testPusherKey)), t: t}
	if d := eventData(t, p.expect("pusher:connection_established")); d["activity_timeout"] != float64(1) {
		t.Fatalf("activity_timeout %v", d["activity_timeout"])
	}
	p.expect("pusher:ping")
	p.Send(map[string]any{"event": "pusher:pong", "data": map[string]any{}})
	p.expect("pusher:ping") // still connected, pinged again after another quiet spell
}

// TestPusherCloseCodes: the server's own disconnects reach Pusher clients
// with Pusher's codes: a slow consumer 4100 (reconnect after a back-off,
// not Eddy's 4009, which pusher-js reads as "never reconnect"), a restart
// 4200 (reconnect now).
func TestPusherCloseCodes(t *testing.T) {
	s := servertest.Start(t, withPusher, func(c *config.Config) { c.MaxQueueBytes = 256 << 10 })
	slow, resume := servertest.DialPaused(t, pusherURL(s, testPusherKey))
	slow.Send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "flood"}})
	calm := dialPusher(t, s)
	calm.join("calm", "")
	servertest.Eventually(t, "the paused client subscribed", func() bool {
		status, body := pusherCall(t, s, "GET", "/apps/"+testPusherApp+"/channels/flood", nil, nil)
		return status == 200 && strings.Contains(body, `"occupied":true`)
	})
	batch := make([]map[string]any, 100)
	for i := range batch {
		batch[i] = map[string]any{"name": "n", "channel": "flood", "data": strings.Repeat("x", 8<<10)}
	}
	// 800 KiB a call: the socket's buffers fill, then the queue overflows
	// and the slow client's subscription goes with its connection.
	for i := 0; s.Hub().Subscribers("flood") > 0; i++ {
		if i == 200 {
			t.Fatal("160 MiB later the paused client is still subscribed")
		}
		if status, body := pusherCall(t, s, "POST", "/apps/"+testPusherApp+"/batch_events", nil, map[string]any{"batch": batch}); status != 200 {
			t.Fatalf("batch: %d %s", status, body)
		}
	}
	resume()
	if code := slow.CloseCode(); code != pusher.CodeOverCapacity {
		t.Fatalf("slow consumer closed with %d, want %d", code, pusher.CodeOverCapacity)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = s.Shutdown(ctx) }()
	if code := calm.CloseCode(); code != pusher.CodeGenericReconnect {
		t.Fatalf("restart closed with %d, want %d", code, pusher.CodeGenericReconnect)
	}
}
