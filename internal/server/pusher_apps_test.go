package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/pusher"
	"github.com/eddyrt/eddy/internal/servertest"
)

// pusherCred is one app's Pusher credentials, as a test uses them.
type pusherCred struct{ id, key, secret string }

func pusherCredOf(a createdApp) pusherCred { return pusherCred{a.ID, a.Pusher.Key, a.Pusher.Secret} }

var defaultPusherCred = pusherCred{testPusherApp, testPusherKey, testPusherSecret}

// dialPusherApp connects with app's key and waits for connection_established.
func dialPusherApp(t *testing.T, s *servertest.Server, app pusherCred) *pusherWS {
	t.Helper()
	p := &pusherWS{WS: servertest.Dial(t, pusherURL(s, app.key)), t: t}
	p.SocketID, _ = eventData(t, p.expect("pusher:connection_established"))["socket_id"].(string)
	if p.SocketID == "" {
		t.Fatal("connection_established without a socket_id")
	}
	return p
}

// joinAs subscribes with auth signed by app's secret and waits for success.
func (p *pusherWS) joinAs(app pusherCred, channel, channelData string) servertest.Frame {
	p.t.Helper()
	auth := ""
	if pusher.KindOf(channel).Private {
		auth = pusher.ChannelAuth(app.key, app.secret, p.SocketID, channel, channelData)
	}
	p.subscribe(channel, auth, channelData)
	return p.expectOn("pusher_internal:subscription_succeeded", channel)
}

// triggerAs publishes through app's Pusher HTTP API.
func triggerAs(t *testing.T, s *servertest.Server, app pusherCred, channel, data string) {
	t.Helper()
	st, out := pusherCallSigned(t, s, http.MethodPost, "/apps/"+app.id+"/events", nil,
		map[string]any{"name": "news", "channel": channel, "data": data}, app.key, app.secret, time.Now())
	if st != http.StatusOK {
		t.Fatalf("trigger on app %s: %d %s", app.id, st, out)
	}
}

// Each app created through the apps API is a Pusher app of its own: its
// key connects into its channel space, its secret signs its HTTP API, and
// apps (and the default one) never see each other's events or members.
func TestPusherAppsKeepChannelsApart(t *testing.T) {
	s := appsServer(t, withPusher)
	a := pusherCredOf(createApp(t, s.APIBase(), "app-a", map[string]any{"pusher_client_events": true}))
	b := pusherCredOf(createApp(t, s.APIBase(), "app-b", nil))
	d := defaultPusherCred

	pa, pb, pd := dialPusherApp(t, s, a), dialPusherApp(t, s, b), dialPusherApp(t, s, d)
	clients := []struct {
		ws  *pusherWS
		app pusherCred
	}{{pa, a}, {pb, b}, {pd, d}}
	for _, c := range clients {
		c.ws.joinAs(c.app, "room", "")
		c.ws.joinAs(c.app, "private-room", "")
	}
	// Round one and two: each client's next event is its own app's, so no
	// other app's event came in between.
	for round := range 2 {
		for _, c := range clients {
			triggerAs(t, s, c.app, "room", c.app.id+" round "+string(rune('1'+round)))
		}
		for _, c := range clients {
			f := c.ws.expectOn("news", "room")
			if want := c.app.id + " round " + string(rune('1'+round)); f.Str("data") != want {
				t.Fatalf("app %s client got %v, want %q", c.app.id, f, want)
			}
		}
	}

	// A private channel of A is signed with A's secret only.
	px := dialPusherApp(t, s, a)
	px.subscribe("private-room", pusher.ChannelAuth(b.key, b.secret, px.SocketID, "private-room", ""), "")
	if f := px.expectOn("pusher:subscription_error", "private-room"); !strings.Contains(f.Str("data"), "invalid auth") {
		t.Fatalf("A's connection with B's auth: %v", f)
	}

	// Client events stay in the app too: A's client event reaches A's other
	// subscriber, and B's subscriber of the same channel gets only B's event.
	pa2 := dialPusherApp(t, s, a)
	pa2.joinAs(a, "private-room", "")
	pa.Send(map[string]any{"event": "client-typing", "channel": "private-room", "data": map[string]string{"who": "a"}})
	if f := pa2.expectOn("client-typing", "private-room"); fmt.Sprint(f["data"]) != "map[who:a]" {
		t.Fatalf("A's other client got %v", f)
	}
	triggerAs(t, s, b, "private-room", "b only")
	if f := pb.expectOn("news", "private-room"); f.Str("data") != "b only" {
		t.Fatalf("B's client got %v, want B's event (A's client event leaked?)", f)
	}

	// Presence: each app's member list holds its own users only.
	ma := pa.joinAs(a, "presence-room", `{"user_id":"alice"}`)
	mb := pb.joinAs(b, "presence-room", `{"user_id":"bob"}`)
	for _, c := range []struct {
		f    servertest.Frame
		want string
	}{{ma, "alice"}, {mb, "bob"}} {
		var pd pusher.PresenceData
		if err := json.Unmarshal([]byte(c.f.Str("data")), &pd); err != nil || pd.Presence.Count != 1 || pd.Presence.IDs[0] != c.want {
			t.Fatalf("members %v, want only %s", c.f, c.want)
		}
	}
	for _, c := range []struct {
		app  pusherCred
		want string
	}{{a, `{"users":[{"id":"alice"}]}`}, {b, `{"users":[{"id":"bob"}]}`}} {
		st, out := pusherCallSigned(t, s, http.MethodGet, "/apps/"+c.app.id+"/channels/presence-room/users", nil, nil, c.app.key, c.app.secret, time.Now())
		if st != http.StatusOK || out != c.want {
			t.Fatalf("users of app %s: %d %s, want %s", c.app.id, st, out, c.want)
		}
	}
	pa.none()
	pb.none()
	pd.none()
}

// An app's Pusher HTTP API takes its own key and secret only; a key names
// no app but its own.
func TestPusherAppSecretsAreNotShared(t *testing.T) {
	s := appsServer(t, withPusher)
	a := pusherCredOf(createApp(t, s.APIBase(), "app-a", nil))
	b := pusherCredOf(createApp(t, s.APIBase(), "app-b", nil))
	body := map[string]any{"name": "news", "channel": "room", "data": "x"}
	for _, c := range []struct {
		what        string
		key, secret string
		want        string
	}{
		{"B's key and secret", b.key, b.secret, "auth_key"},
		{"A's key, B's secret", a.key, b.secret, "signature"},
		{"the default key and secret", testPusherKey, testPusherSecret, "auth_key"},
	} {
		st, out := pusherCallSigned(t, s, http.MethodPost, "/apps/app-a/events", nil, body, c.key, c.secret, time.Now())
		if st != http.StatusUnauthorized || !strings.Contains(out, c.want) {
			t.Fatalf("app A's API with %s: %d %q, want 401 naming %s", c.what, st, out, c.want)
		}
	}
	st, out := pusherCallSigned(t, s, http.MethodPost, "/apps/default/events", nil, body, a.key, a.secret, time.Now())
	if st != http.StatusNotFound {
		t.Fatalf("the app id default: %d %s, want 404 (the default app's id is pusher_app_id)", st, out)
	}
	st, out = pusherCallSigned(t, s, http.MethodGet, "/apps/app-a/channels", url.Values{}, nil, a.key, a.secret, time.Now())
	if st != http.StatusOK {
		t.Fatalf("A's API with A's credentials: %d %s", st, out)
	}
}

// An Eddy-protocol client of app A and a Pusher client of app A share the
// channel; an Eddy client of the default app does not see it.
func TestPusherAppSharesChannelsWithEddyClients(t *testing.T) {
	s := appsServer(t, withPusher)
	created := createApp(t, s.APIBase(), "app-a", nil)
	a := pusherCredOf(created)
	p := dialPusherApp(t, s, a)
	p.joinAs(a, "room", "")
	e := servertest.Connect(t, s.WSURL, appToken(t, created, "alice"))
	def := servertest.Connect(t, s.WSURL, servertest.Token(t, "dora", nil, []string{"*"}))
	for _, ws := range []*servertest.WS{e, def} {
		if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room"}); f.Type() != "subscribed" {
			t.Fatalf("subscribe: %v", f)
		}
	}
	if f := e.Request(map[string]any{"type": "publish", "id": 2, "channel": "room", "event": "hello", "data": map[string]string{"from": "eddy"}}); f.Type() != "ack" {
		t.Fatalf("Eddy publish: %v", f)
	}
	if f := p.expectOn("hello", "room"); f.Str("data") != `{"from":"eddy"}` {
		t.Fatalf("Pusher client of A got %v", f)
	}
	if f := e.Expect("message"); f.Str("event") != "hello" {
		t.Fatalf("Eddy client of A: %v, want its own publish first", f)
	}
	triggerAs(t, s, a, "room", "from pusher")
	if f := e.Expect("message"); f.Str("event") != "news" || f.Str("data") != "from pusher" {
		t.Fatalf("Eddy client of A got %v", f)
	}
	// The default app's client saw neither: its next message is its own app's.
	triggerAs(t, s, defaultPusherCred, "room", "default")
	if f := def.Expect("message"); f.Str("data") != "default" {
		t.Fatalf("default app's client got %v, want only the default app's event", f)
	}
}

// Deleting an app closes its Pusher clients (4011: do not reconnect) and
// its key stops naming an app; another app's clients stay.
func TestPusherAppDeleteClosesItsClients(t *testing.T) {
	s := appsServer(t, withPusher)
	a := pusherCredOf(createApp(t, s.APIBase(), "app-a", nil))
	b := pusherCredOf(createApp(t, s.APIBase(), "app-b", nil))
	pa, pb := dialPusherApp(t, s, a), dialPusherApp(t, s, b)
	pb.joinAs(b, "room", "")
	if st, body := call(t, http.MethodDelete, s.APIBase()+"/api/v1/apps/app-a", testOperatorKey, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d %s", st, body)
	}
	if code := pa.CloseCode(); code != 4011 {
		t.Fatalf("A's Pusher client closed with %d, want 4011", code)
	}
	ws := &pusherWS{WS: servertest.Dial(t, pusherURL(s, a.key)), t: t}
	if f := ws.expect("pusher:error"); !strings.Contains(fmt.Sprint(f["data"]), "4001") {
		t.Fatalf("deleted app's key: %v", f)
	}
	triggerAs(t, s, b, "room", "still here")
	if f := pb.expectOn("news", "room"); f.Str("data") != "still here" {
		t.Fatalf("B got %v", f)
	}
}

// An app's max_connections counts its Pusher connections: past it a
// Pusher client is refused with 4004 (over quota) naming the setting.
func TestPusherAppConnectionLimit(t *testing.T) {
	s := appsServer(t, withPusher)
	a := pusherCredOf(createApp(t, s.APIBase(), "app-a", map[string]any{"limits": map[string]any{"max_connections": 1}}))
	dialPusherApp(t, s, a)
	ws := &pusherWS{WS: servertest.Dial(t, pusherURL(s, a.key)), t: t}
	if f := ws.expect("pusher:error"); !strings.Contains(fmt.Sprint(f["data"]), "4004") || !strings.Contains(fmt.Sprint(f["data"]), "max_connections") {
		t.Fatalf("second connection of an app limited to one: %v", f)
	}
	if code := ws.CloseCode(); code != 4004 {
		t.Fatalf("closed with %d, want 4004", code)
	}
	// The default app is not limited by app A's setting.
	dialPusherApp(t, s, defaultPusherCred)
	dialPusherApp(t, s, defaultPusherCred)
}
