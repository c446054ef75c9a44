package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/node"
	"github.com/eddyrt/eddy/internal/pusher"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestPusherAPISignatureRefusals: each fault of a signed request gets 401
// and a message naming it.
func TestPusherAPISignatureRefusals(t *testing.T) {
	s := servertest.Start(t, withPusher)
	path := "/apps/" + testPusherApp + "/events"
	body := map[string]any{"name": "e", "channel": "c", "data": "x"}
	for _, tc := range []struct {
		name, key, secret string
		at                time.Time
		want              string
	}{
		{"wrong signature", testPusherKey, "not-the-secret", time.Now(), "auth_signature does not match"},
		{"unknown key", "otherkey", testPusherSecret, time.Now(), `auth_key "otherkey"`},
		{"stale timestamp", testPusherKey, testPusherSecret, time.Now().Add(-11 * time.Minute), "auth_timestamp"},
	} {
		status, out := pusherCallSigned(t, s, http.MethodPost, path, nil, body, tc.key, tc.secret, tc.at)
		if status != http.StatusUnauthorized || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %d %q, want 401 naming %q", tc.name, status, out, tc.want)
		}
	}
	// A body changed after signing fails body_md5.
	q := url.Values{}
	pusher.SignRequest(testPusherKey, testPusherSecret, http.MethodPost, path, q, []byte(`{"name":"e","channel":"c","data":"x"}`), time.Now())
	resp, err := http.Post(s.APIBase()+path+"?"+q.Encode(), "application/json", strings.NewReader(`{"name":"e","channel":"c","data":"y"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d, want 401", resp.StatusCode)
	}
	if status, out := pusherCall(t, s, http.MethodGet, "/apps/nope/channels", nil, nil); status != http.StatusNotFound || !strings.Contains(out, "nope") {
		t.Fatalf("unknown app id: %d %s", status, out)
	}
}

// TestPusherAPIEndpoints: trigger to many channels with socket_id excluded
// and info, batch, channel list and info, users, terminate_connections.
func TestPusherAPIEndpoints(t *testing.T) {
	s := servertest.Start(t, withPusher)
	a, b := dialPusher(t, s), dialPusher(t, s)
	for _, p := range []*pusherWS{a, b} {
		p.join("orders", "")
		p.join("presence-lobby", `{"user_id":"u-`+p.SocketID+`"}`)
	}
	a.expectOn("pusher_internal:member_added", "presence-lobby")

	out := trigger(t, s, map[string]any{"name": "new", "channels": []string{"orders", "presence-lobby"}, "data": "d", "socket_id": a.SocketID, "info": "subscription_count,user_count"})
	info := out["channels"].(map[string]any)
	if info["orders"].(map[string]any)["subscription_count"] != float64(2) || info["presence-lobby"].(map[string]any)["user_count"] != float64(2) {
		t.Fatalf("trigger info %v", info)
	}
	b.expectOn("new", "orders")
	b.expectOn("new", "presence-lobby")
	a.Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	a.expect("pusher:pong")
	a.none() // socket_id excluded the sender

	status, body := pusherCall(t, s, http.MethodPost, "/apps/"+testPusherApp+"/batch_events", nil, map[string]any{"batch": []map[string]any{
		{"name": "one", "channel": "orders", "data": "1"},
		{"name": "two", "channel": "orders", "data": "2", "info": "subscription_count"},
	}})
	if status != 200 || !strings.Contains(body, `"subscription_count":2`) {
		t.Fatalf("batch: %d %s", status, body)
	}
	for _, p := range []*pusherWS{a, b} {
		p.expectOn("one", "orders")
		p.expectOn("two", "orders")
	}

	var list struct {
		Channels map[string]map[string]any `json:"channels"`
	}
	status, body = pusherCall(t, s, http.MethodGet, "/apps/"+testPusherApp+"/channels", url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count"}}, nil)
	if err := json.Unmarshal([]byte(body), &list); status != 200 || err != nil || len(list.Channels) != 1 || list.Channels["presence-lobby"]["user_count"] != float64(2) {
		t.Fatalf("channels: %d %s", status, body)
	}
	if status, body = pusherCall(t, s, http.MethodGet, "/apps/"+testPusherApp+"/channels", url.Values{"info": {"user_count"}}, nil); status != 400 {
		t.Fatalf("user_count without presence- prefix: %d %s", status, body)
	}
	status, body = pusherCall(t, s, http.MethodGet, "/apps/"+testPusherApp+"/channels/orders", url.Values{"info": {"subscription_count"}}, nil)
	if status != 200 || body != `{"occupied":true,"subscription_count":2}` {
		t.Fatalf("channel info: %d %s", status, body)
	}
	status, body = pusherCall(t, s, http.MethodGet, "/apps/"+testPusherApp+"/channels/empty", nil, nil)
	if status != 200 || body != `{"occupied":false}` {
		t.Fatalf("empty channel: %d %s", status, body)
	}

	// Sign-in, then terminate_connections closes that user's connections only.
	userData := `{"id":"carol"}`
	a.Send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": pusher.UserAuth(testPusherKey, testPusherSecret, a.SocketID, userData), "user_data": userData}})
	a.expect("pusher:signin_success")
	b.Send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": testPusherKey + ":bad", "user_data": userData}})
	b.expect("pusher:error")
	if code := b.CloseCode(); code != pusher.CodeUnauthorized {
		t.Fatalf("bad signin closed with %d", code)
	}
	if status, body = pusherCall(t, s, http.MethodPost, "/apps/"+testPusherApp+"/users/carol/terminate_connections", nil, map[string]any{}); status != 200 {
		t.Fatalf("terminate: %d %s", status, body)
	}
	if code := a.CloseCode(); code != pusher.CodeUnauthorized {
		t.Fatalf("terminated connection closed with %d", code)
	}
}

// TestPusherCrossProtocol: an Eddy client and a Pusher client on one
// channel each get what the other side's API publishes and client events.
func TestPusherCrossProtocol(t *testing.T) {
	s := servertest.Start(t, withPusher)
	p := dialPusher(t, s)
	p.join("private-shared", "")
	eddy := servertest.Connect(t, s.WSURL, servertest.Token(t, "dave", nil, nil))
	eddy.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "private-shared"})

	if _, err := s.API().Publish(context.Background(), "private-shared", "from-eddy", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if f := p.expectOn("from-eddy", "private-shared"); f["data"] != `{"n":1}` {
		t.Fatalf("pusher got %v", f)
	}
	eddy.Expect("message")

	trigger(t, s, map[string]any{"name": "from-pusher", "channel": "private-shared", "data": `{"n":2}`})
	m := eddy.Expect("message")
	if m.Str("event") != "from-pusher" || m["data"] != `{"n":2}` {
		t.Fatalf("eddy got %v", m)
	}
	p.expectOn("from-pusher", "private-shared")

	p.Send(map[string]any{"event": "client-hello", "channel": "private-shared", "data": map[string]any{"n": 3}})
	if m := eddy.Expect("message"); m.Str("event") != "client-hello" || m["data"].(map[string]any)["n"] != float64(3) {
		t.Fatalf("eddy got client event %v", m)
	}
}

// TestPusherCacheChannel: the first subscriber of an empty cache channel
// gets pusher:cache_miss; a later one gets the last event at once.
func TestPusherCacheChannel(t *testing.T) {
	s := servertest.Start(t, withPusher)
	a := dialPusher(t, s)
	a.join("cache-scores", "")
	a.expectOn("pusher:cache_miss", "cache-scores")
	trigger(t, s, map[string]any{"name": "score", "channel": "cache-scores", "data": "1"})
	trigger(t, s, map[string]any{"name": "score", "channel": "cache-scores", "data": "2"})
	a.expectOn("score", "cache-scores")
	a.expectOn("score", "cache-scores")
	b := dialPusher(t, s)
	b.join("cache-scores", "")
	if f := b.expectOn("score", "cache-scores"); f["data"] != "2" {
		t.Fatalf("cached event %v, want the last one", f)
	}
}

// TestPusherFunctionRejection: a function rejecting a Pusher publish makes
// the HTTP API answer 422 with its message; a function's change reaches
// Pusher subscribers.
func TestPusherFunctionRejection(t *testing.T) {
	s := servertest.StartNode(t, withPusher)
	deploy(t, s, "guard", js(`function handle(m, ctx){ if (m.data === "bad") ctx.reject("no bad words"); m.data = m.data.toUpperCase(); return m }`))
	associate(t, s, "guarded", "", "guard")
	p := dialPusher(t, s)
	p.join("guarded", "")
	status, body := pusherCall(t, s, http.MethodPost, "/apps/"+testPusherApp+"/events", nil, map[string]any{"name": "say", "channel": "guarded", "data": "bad"})
	if status != 422 || !strings.Contains(body, "no bad words") {
		t.Fatalf("rejected trigger: %d %s", status, body)
	}
	trigger(t, s, map[string]any{"name": "say", "channel": "guarded", "data": "good"})
	if f := p.expectOn("say", "guarded"); f["data"] != "GOOD" {
		t.Fatalf("function did not run on the Pusher publish: %v", f)
	}
}

// recordedEvents records what the Pusher layer reports for webhooks.
type recordedEvents struct {
	mu     sync.Mutex
	events []string
}

func (r *recordedEvents) ClientEvent(appID, channel, event string, data json.RawMessage, socketID, userID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, strings.Join([]string{"client_event", appID, channel, event, string(data), socketID, userID}, " "))
}

func (r *recordedEvents) CacheMiss(appID, channel string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "cache_miss "+appID+" "+channel)
}

func (r *recordedEvents) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// TestPusherEventsForWebhooks: client events and cache misses reach
// Options.PusherEvents (the webhooks' source), with the app, channel,
// sender and user; a client event a function rejects is not reported and
// its sender is told why.
func TestPusherEventsForWebhooks(t *testing.T) {
	rec := &recordedEvents{}
	cfg := servertest.Config()
	cfg.DataDir = t.TempDir()
	withPusher(&cfg)
	n, err := node.Build(cfg, servertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	opts := n.Options
	opts.PusherEvents = rec
	s := servertest.StartWith(t, opts)
	deploy(t, s, "guard", js(`function handle(m, ctx){ if (m.data && m.data.bad) ctx.reject("no bad moves"); return m }`))
	associate(t, s, "presence-game", "", "guard")

	a, b := dialPusher(t, s), dialPusher(t, s)
	a.join("presence-game", `{"user_id":"ann"}`)
	b.join("presence-game", `{"user_id":"ben"}`)
	a.expectOn("pusher_internal:member_added", "presence-game")
	a.Send(map[string]any{"event": "client-move", "channel": "presence-game", "data": map[string]any{"x": 1}})
	b.expectOn("client-move", "presence-game")
	a.Send(map[string]any{"event": "client-move", "channel": "presence-game", "data": map[string]any{"bad": true}})
	if f := a.expect("pusher:error"); !strings.Contains(fmt.Sprint(f["data"]), "no bad moves") {
		t.Fatalf("rejected client event: %v", f)
	}
	a.join("cache-board", "")
	a.expectOn("pusher:cache_miss", "cache-board")
	want := []string{
		"client_event " + testPusherApp + ` presence-game client-move {"x":1} ` + a.SocketID + " ann",
		"cache_miss " + testPusherApp + " cache-board",
	}
	if got := rec.list(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("reported %q, want %q", got, want)
	}
}
