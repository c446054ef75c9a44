package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/webhooks"
)

// hookEvent is one event a receiver got, with the Pusher key header of
// its POST.
type hookEvent struct {
	webhooks.Event
	pusherKey string
}

// hookReceiver is a real local HTTP server that passes on every event
// it is POSTed, in order.
type hookReceiver struct {
	srv    *httptest.Server
	events chan hookEvent
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{events: make(chan hookEvent, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var body webhooks.Body
		if err := json.Unmarshal(b, &body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, e := range body.Events {
			select {
			case r.events <- hookEvent{e, req.Header.Get("X-Pusher-Key")}:
			default: // the test failed to read; it fails on what it expected
			}
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) URL() string { return r.srv.URL + "/hooks" }

// next is the receiver's next event; it fails unless it is name on channel.
func (r *hookReceiver) next(t *testing.T, who, name, channel string) hookEvent {
	t.Helper()
	select {
	case e := <-r.events:
		if e.Name != name || e.Channel != channel {
			t.Fatalf("%s's receiver got %+v, want %s on %s (another app's event?)", who, e.Event, name, channel)
		}
		return e
	case <-time.After(20 * time.Second):
		t.Fatalf("%s's receiver got nothing, want %s on %s", who, name, channel)
	}
	return hookEvent{}
}

// subscribeEddy subscribes an Eddy-protocol client to channel.
func subscribeEddy(t *testing.T, ws *servertest.WS, id int, channel string) {
	t.Helper()
	if f := ws.Request(map[string]any{"type": "subscribe", "id": id, "channel": channel}); f.Type() != "subscribed" {
		t.Fatalf("subscribe %s: %v", channel, f)
	}
}

// Each app's webhooks, set with PATCH /api/v1/apps/{id}, get that app's
// events only (channel occupancy from its hub, Pusher client events),
// while eddy.yaml's receivers keep getting the default app's.
func TestAppWebhooksGetOnlyTheirAppsEvents(t *testing.T) {
	recvA, recvAP, recvAM, recvB, recvD := newHookReceiver(t), newHookReceiver(t), newHookReceiver(t), newHookReceiver(t), newHookReceiver(t)
	s := servertest.StartNode(t, withPusher, func(c *config.Config) {
		c.OperatorKey = testOperatorKey
		c.WebhookWindow = 20 * time.Millisecond
		c.Webhooks = []config.Webhook{{URL: recvD.URL(), Secret: "default-secret", Events: []string{"channel_occupied", "client_event"}}}
	})
	a := createApp(t, s.APIBase(), "app-a", map[string]any{"pusher_client_events": true})
	b := createApp(t, s.APIBase(), "app-b", nil)
	st, body := call(t, http.MethodPatch, s.APIBase()+"/api/v1/apps/app-a", testOperatorKey, map[string]any{"webhooks": []map[string]any{
		{"url": recvA.URL(), "secret": "a-secret-a-secret", "events": []string{"channel_occupied"}},
		{"url": recvAP.URL(), "format": "pusher", "events": []string{"client_event"}},
		{"url": recvAM.URL(), "secret": "a-members", "events": []string{"member_added"}},
	}})
	if st != http.StatusOK || strings.Contains(string(body), "a-secret-a-secret") || !strings.Contains(string(body), `"key":"`+a.Pusher.Key+`"`) {
		t.Fatalf("PATCH app-a webhooks: %d %s, want 200, the secret masked, the Pusher key filled in", st, body)
	}
	if st, body := call(t, http.MethodPatch, s.APIBase()+"/api/v1/apps/app-b", testOperatorKey, map[string]any{"webhooks": []map[string]any{
		{"url": recvB.URL(), "secret": "b-secret", "events": []string{"channel_occupied"}},
	}}); st != http.StatusOK {
		t.Fatalf("PATCH app-b webhooks: %d %s", st, body)
	}
	if st, body := call(t, http.MethodPatch, s.APIBase()+"/api/v1/apps/app-b", testOperatorKey, map[string]any{"webhooks": []map[string]any{
		{"url": "ftp://x", "secret": "s", "events": []string{"channel_occupied"}},
	}}); st != http.StatusBadRequest || !strings.Contains(string(body), "webhooks[0]: url") {
		t.Fatalf("PATCH with a bad webhook: %d %s, want 400 naming webhooks[0]'s url", st, body)
	}

	// The same channel name in three apps: each app's receiver hears of its own.
	wb := servertest.Connect(t, s.WSURL, appToken(t, b, "bob"))
	subscribeEddy(t, wb, 1, "room")
	recvB.next(t, "B", "channel_occupied", "room")
	wa := servertest.Connect(t, s.WSURL, appToken(t, a, "alice"))
	subscribeEddy(t, wa, 1, "room")
	recvA.next(t, "A", "channel_occupied", "room")
	wd := servertest.Connect(t, s.WSURL, servertest.Token(t, "dora", nil, []string{"*"}))
	subscribeEddy(t, wd, 1, "room")
	recvD.next(t, "default", "channel_occupied", "room")
	// Second round, in another order: what each receiver gets next is its
	// own app's event, so none got another app's in between.
	subscribeEddy(t, wd, 2, "room2")
	recvD.next(t, "default", "channel_occupied", "room2")
	subscribeEddy(t, wa, 2, "room2")
	recvA.next(t, "A", "channel_occupied", "room2")
	subscribeEddy(t, wb, 2, "room2")
	recvB.next(t, "B", "channel_occupied", "room2")

	// Pusher client events: A's go to A's Pusher-format receiver, keyed
	// with A's Pusher key; the default app's to eddy.yaml's receiver.
	credA := pusherCredOf(a)
	pa1, pa2 := dialPusherApp(t, s, credA), dialPusherApp(t, s, credA)
	pa1.joinAs(credA, "private-x", "")
	pa2.joinAs(credA, "private-x", "")
	recvA.next(t, "A", "channel_occupied", "private-x") // Pusher subscribers occupy channels too
	pa1.Send(map[string]any{"event": "client-typing", "channel": "private-x", "data": map[string]string{"who": "a"}})
	pa2.expectOn("client-typing", "private-x")
	if e := recvAP.next(t, "A (pusher format)", "client_event", "private-x"); e.pusherKey != a.Pusher.Key || e.Event.Event != "client-typing" {
		t.Fatalf("A's Pusher receiver got %+v with X-Pusher-Key %q, want client-typing keyed %q", e.Event, e.pusherKey, a.Pusher.Key)
	}
	pd1, pd2 := dialPusherApp(t, s, defaultPusherCred), dialPusherApp(t, s, defaultPusherCred)
	pd1.joinAs(defaultPusherCred, "private-d", "")
	pd2.joinAs(defaultPusherCred, "private-d", "")
	recvD.next(t, "default", "channel_occupied", "private-d")
	pd1.Send(map[string]any{"event": "client-typing", "channel": "private-d", "data": map[string]string{"who": "d"}})
	pd2.expectOn("client-typing", "private-d")
	// The default app's receiver: its next event is the default app's own
	// client event, not A's (sent before it).
	recvD.next(t, "default", "client_event", "private-d")

	// Presence members: B's member joins first, A's second; A's member
	// receiver hears of A's only.
	credB := pusherCredOf(b)
	pb := dialPusherApp(t, s, credB)
	pb.joinAs(credB, "presence-room", `{"user_id":"bob"}`)
	recvB.next(t, "B", "channel_occupied", "presence-room")
	pa1.joinAs(credA, "presence-room", `{"user_id":"ann"}`)
	if e := recvAM.next(t, "A (members)", "member_added", "presence-room"); e.UserID != "ann" {
		t.Fatalf("A's member receiver got %+v, want ann", e.Event)
	}
	recvA.next(t, "A", "channel_occupied", "presence-room")

	// Deleting an app stops its receivers; the others stay.
	if st, body := call(t, http.MethodDelete, s.APIBase()+"/api/v1/apps/app-b", testOperatorKey, nil); st != http.StatusNoContent {
		t.Fatalf("delete app-b: %d %s", st, body)
	}
	subscribeEddy(t, wa, 3, "room3")
	recvA.next(t, "A", "channel_occupied", "room3")
}
