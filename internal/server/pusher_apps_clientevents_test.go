package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Each app has its own pusher_client_events, off unless set: app A with
// it on relays client-* events, app B with it off refuses them with a
// pusher:error naming the setting, and a PATCH turns it on or off for the
// connections already open.
func TestPusherClientEventsArePerApp(t *testing.T) {
	s := appsServer(t, withPusher) // the default app's pusher_client_events is on
	ca := createApp(t, s.APIBase(), "app-a", nil)
	cb := createApp(t, s.APIBase(), "app-b", nil)
	st, body := call(t, http.MethodGet, s.APIBase()+"/api/v1/apps/app-b", testOperatorKey, nil)
	if st != http.StatusOK || !strings.Contains(string(body), `"pusher_client_events":false`) {
		t.Fatalf("GET app-b: %d %s, want pusher_client_events false by default", st, body)
	}
	patch := func(id string, on bool) {
		t.Helper()
		st, body := call(t, http.MethodPatch, s.APIBase()+"/api/v1/apps/"+id, testOperatorKey, map[string]any{"pusher_client_events": on})
		if st != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf(`"pusher_client_events":%v`, on)) {
			t.Fatalf("PATCH %s pusher_client_events %v: %d %s", id, on, st, body)
		}
	}
	patch("app-a", true)
	if st, body := call(t, http.MethodPatch, s.APIBase()+"/api/v1/apps/app-a", testOperatorKey, map[string]any{"pusher_client_events": "yes"}); st != http.StatusBadRequest {
		t.Fatalf("PATCH with a string: %d %s, want 400", st, body)
	}

	a, b := pusherCredOf(ca), pusherCredOf(cb)
	a1, a2 := dialPusherApp(t, s, a), dialPusherApp(t, s, a)
	b1, b2 := dialPusherApp(t, s, b), dialPusherApp(t, s, b)
	for _, c := range []struct {
		ws  *pusherWS
		app pusherCred
	}{{a1, a}, {a2, a}, {b1, b}, {b2, b}} {
		c.ws.joinAs(c.app, "private-room", "")
	}
	clientEvent := func(p *pusherWS, who string) {
		p.Send(map[string]any{"event": "client-typing", "channel": "private-room", "data": map[string]string{"who": who}})
	}
	refusedOn := func(p *pusherWS, app string) {
		t.Helper()
		if f := p.expect("pusher:error"); !strings.Contains(fmt.Sprint(f["data"]), "pusher_client_events") {
			t.Fatalf("app %s's client event refused with %v, want an error naming pusher_client_events", app, f)
		}
	}

	clientEvent(a1, "a")
	if f := a2.expectOn("client-typing", "private-room"); fmt.Sprint(f["data"]) != "map[who:a]" {
		t.Fatalf("A's other client got %v", f)
	}
	clientEvent(b1, "b")
	refusedOn(b1, "app-b")
	// B's other client got nothing: the next thing it gets is this trigger.
	triggerAs(t, s, b, "private-room", "after")
	if f := b2.expectOn("news", "private-room"); f.Str("data") != "after" {
		t.Fatalf("B's other client got %v, want the trigger (B's client event was relayed?)", f)
	}

	// Turned around on the open connections.
	patch("app-b", true)
	patch("app-a", false)
	clientEvent(b1, "b")
	if f := b2.expectOn("client-typing", "private-room"); fmt.Sprint(f["data"]) != "map[who:b]" {
		t.Fatalf("B's other client got %v after the PATCH", f)
	}
	clientEvent(a1, "a")
	refusedOn(a1, "app-a")
}
