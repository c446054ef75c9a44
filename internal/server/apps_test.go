package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

const testOperatorKey = "eop_test-operator-key-0123456789"

// createdApp is the apps API's answer to a creation.
type createdApp struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	JWTKeys []struct {
		ID, Alg, Secret string
	} `json:"jwt_keys"`
	APIKeys []struct {
		ID, Key string
	} `json:"api_keys"`
	AdminKey string `json:"admin_key"`
	Pusher   struct {
		Key, Secret string
	} `json:"pusher"`
}

// call makes an HTTP request with key and returns the status and body.
func call(t *testing.T, method, url, key string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func createApp(t *testing.T, base, id string, settings map[string]any) createdApp {
	t.Helper()
	body := map[string]any{"id": id, "name": "App " + id}
	for k, v := range settings {
		body[k] = v
	}
	st, b := call(t, http.MethodPost, base+"/api/v1/apps", testOperatorKey, body)
	if st != http.StatusCreated {
		t.Fatalf("create app %s: %d %s", id, st, b)
	}
	var a createdApp
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if a.ID != id || len(a.JWTKeys) != 1 || a.JWTKeys[0].Alg != "HS256" || len(a.APIKeys) != 1 || a.AdminKey == "" || a.Pusher.Key == "" || a.Pusher.Secret == "" {
		t.Fatalf("created app lacks its keys: %s", b)
	}
	return a
}

// appToken signs a token for app a with its key kid (default: the first).
func appToken(t *testing.T, a createdApp, sub string, kid ...string) string {
	t.Helper()
	k := a.JWTKeys[0]
	tok, err := auth.Mint([]byte(k.Secret), auth.TokenSpec{Subject: sub, TTL: time.Hour, App: a.ID, KeyID: k.ID,
		Channels: []string{"*"}, Publish: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func appsServer(t *testing.T, mutate ...func(*config.Config)) *servertest.Server {
	return servertest.Start(t, append([]func(*config.Config){func(c *config.Config) {
		c.OperatorKey = testOperatorKey
		c.Namespaces = map[string]config.ChannelOptions{"chat": {HistorySize: 10, Presence: true}}
	}}, mutate...)...)
}

var chatNamespace = map[string]any{"namespaces": map[string]any{"chat": map[string]any{"history_size": 10, "presence": true}}}

func publishAs(t *testing.T, base, key, channel, text string) (int, []byte) {
	t.Helper()
	return call(t, http.MethodPost, base+"/api/v1/publish", key, map[string]any{"channel": channel, "event": "e", "data": map[string]string{"text": text}})
}

// Two apps and the default one each have a chat:lobby; none sees another's
// messages, history or presence, whether published by API or by client.
func TestAppsKeepChannelsApart(t *testing.T) {
	s := appsServer(t)
	a := createApp(t, s.APIBase(), "app-a", chatNamespace)
	b := createApp(t, s.APIBase(), "app-b", chatNamespace)

	wa := servertest.Connect(t, s.WSURL, appToken(t, a, "alice"))
	wb := servertest.Connect(t, s.WSURL, appToken(t, b, "bob"))
	wd := servertest.Connect(t, s.WSURL, servertest.Token(t, "dora", nil, []string{"*"}))
	for _, ws := range []*servertest.WS{wa, wb, wd} {
		if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:lobby"}); f.Type() != "subscribed" {
			t.Fatalf("subscribe: %v", f)
		}
	}
	if st, body := publishAs(t, s.APIBase(), a.APIKeys[0].Key, "chat:lobby", "for A"); st != http.StatusOK {
		t.Fatalf("publish with A's key: %d %s", st, body)
	}
	if f := wb.Request(map[string]any{"type": "publish", "id": 2, "channel": "chat:lobby", "event": "e", "data": map[string]string{"text": "for B"}}); f.Type() != "ack" {
		t.Fatalf("B's client publish: %v", f)
	}
	if st, body := publishAs(t, s.APIBase(), servertest.APIKey, "chat:lobby", "for default"); st != http.StatusOK {
		t.Fatalf("publish with the default key: %d %s", st, body)
	}
	// Each gets its own app's message first and nothing else: the next
	// message each sees is its own app's second one.
	for _, c := range []struct {
		ws   *servertest.WS
		want string
	}{{wa, "for A"}, {wb, "for B"}, {wd, "for default"}} {
		f := c.ws.Expect("message")
		if got := fmt.Sprint(f["data"]); got != fmt.Sprint(map[string]any{"text": c.want}) || f.Str("channel") != "chat:lobby" {
			t.Fatalf("got %v, want %q on chat:lobby", f, c.want)
		}
	}
	publishAs(t, s.APIBase(), a.APIKeys[0].Key, "chat:lobby", "A again")
	// A batch with B's key lands in B's channel.
	if st, body := call(t, http.MethodPost, s.APIBase()+"/api/v1/batch", b.APIKeys[0].Key, map[string]any{"messages": []map[string]any{{"channel": "chat:lobby", "event": "e", "data": map[string]string{"text": "B again"}}}}); st != http.StatusOK {
		t.Fatalf("batch with B's key: %d %s", st, body)
	}
	publishAs(t, s.APIBase(), servertest.APIKey, "chat:lobby", "default again")
	for _, c := range []struct {
		ws   *servertest.WS
		want string
	}{{wa, "A again"}, {wb, "B again"}, {wd, "default again"}} {
		if f := c.ws.Expect("message"); fmt.Sprint(f["data"]) != fmt.Sprint(map[string]any{"text": c.want}) {
			t.Fatalf("got %v, want %q: another app's message came through", f, c.want)
		}
	}

	// History and presence are per app too.
	for _, c := range []struct {
		key  string
		want []string
		user string
	}{{a.APIKeys[0].Key, []string{"for A", "A again"}, "alice"}, {b.APIKeys[0].Key, []string{"for B", "B again"}, "bob"}, {servertest.APIKey, []string{"for default", "default again"}, "dora"}} {
		st, body := call(t, http.MethodGet, s.APIBase()+"/api/v1/history?channel=chat:lobby", c.key, nil)
		var h struct {
			Messages []struct {
				Channel string
				Data    struct{ Text string }
			}
		}
		if err := json.Unmarshal(body, &h); err != nil || st != http.StatusOK || len(h.Messages) != len(c.want) {
			t.Fatalf("history: %d %s, want %v", st, body, c.want)
		}
		for i, m := range h.Messages {
			if m.Data.Text != c.want[i] || m.Channel != "chat:lobby" {
				t.Fatalf("history: %s, want %v", body, c.want)
			}
		}
		st, body = call(t, http.MethodGet, s.APIBase()+"/api/v1/presence?channel=chat:lobby", c.key, nil)
		var p struct{ Members []struct{ User string } }
		if err := json.Unmarshal(body, &p); err != nil || st != http.StatusOK || len(p.Members) != 1 || p.Members[0].User != c.user {
			t.Fatalf("presence: %d %s, want only %s", st, body, c.user)
		}
	}
}

// A token is verified with the keys of the app it claims, only.
func TestAppTokenIsVerifiedWithItsAppsKeys(t *testing.T) {
	s := appsServer(t)
	a := createApp(t, s.APIBase(), "app-a", nil)
	b := createApp(t, s.APIBase(), "app-b", nil)
	forged := a
	forged.ID = b.ID // A's key, B's name
	for name, tok := range map[string]string{
		"A's key claiming B": appToken(t, forged, "mallory"),
		"the default secret as B": func() string {
			tok, _ := auth.Mint([]byte(servertest.Secret), auth.TokenSpec{Subject: "m", App: b.ID})
			return tok
		}(),
		"an unknown app":        func() string { x := a; x.ID = "nosuch"; return appToken(t, x, "m") }(),
		"A's key, no app claim": func() string { x := a; x.ID = ""; return appToken(t, x, "m") }(),
	} {
		ws := servertest.Dial(t, s.WSURL)
		ws.Send(map[string]any{"type": "auth", "token": tok})
		ws.ExpectError("unauthorized")
		if code := ws.CloseCode(); code != 4001 {
			t.Fatalf("%s: close %d, want 4001", name, code)
		}
	}
	// A's API key reaches A's channels only; a made-up key nothing.
	if st, body := publishAs(t, s.APIBase(), "ek_not-a-key", "chat:x", "x"); st != http.StatusUnauthorized {
		t.Fatalf("unknown key: %d %s", st, body)
	}
}

// Rotation: a token signed with the old key works until it is retired,
// the new one works throughout.
func TestAppKeyRotation(t *testing.T) {
	s := appsServer(t)
	a := createApp(t, s.APIBase(), "app-a", nil)
	st, body := call(t, http.MethodPost, s.APIBase()+"/api/v1/apps/app-a/keys", testOperatorKey, map[string]string{"kind": "jwt"})
	var nk struct{ ID, Alg, Secret string }
	if err := json.Unmarshal(body, &nk); err != nil || st != http.StatusCreated || nk.Secret == "" || nk.Alg != "HS256" {
		t.Fatalf("add key: %d %s", st, body)
	}
	old := appToken(t, a, "u")
	rotated := a
	rotated.JWTKeys = append(rotated.JWTKeys[:0:0], struct{ ID, Alg, Secret string }{nk.ID, nk.Alg, nk.Secret})
	fresh := appToken(t, rotated, "u")
	servertest.Connect(t, s.WSURL, old)
	servertest.Connect(t, s.WSURL, fresh)
	if st, body := call(t, http.MethodDelete, s.APIBase()+"/api/v1/apps/app-a/keys/"+a.JWTKeys[0].ID, testOperatorKey, nil); st != http.StatusNoContent {
		t.Fatalf("retire: %d %s", st, body)
	}
	ws := servertest.Dial(t, s.WSURL)
	ws.Send(map[string]any{"type": "auth", "token": old})
	ws.ExpectError("unauthorized")
	servertest.Connect(t, s.WSURL, fresh)
	// The last key of a kind stays: the app would be unusable without it.
	if st, body := call(t, http.MethodDelete, s.APIBase()+"/api/v1/apps/app-a/keys/"+nk.ID, testOperatorKey, nil); st != http.StatusBadRequest || !bytes.Contains(body, []byte("last key")) {
		t.Fatalf("retire the last key: %d %s", st, body)
	}
	// API keys rotate the same way.
	st, body = call(t, http.MethodPost, s.APIBase()+"/api/v1/apps/app-a/keys", testOperatorKey, map[string]string{"kind": "api"})
	var ak struct{ ID, Key string }
	if err := json.Unmarshal(body, &ak); err != nil || st != http.StatusCreated || ak.Key == "" {
		t.Fatalf("add API key: %d %s", st, body)
	}
	for _, k := range []string{a.APIKeys[0].Key, ak.Key} {
		if st, body := publishAs(t, s.APIBase(), k, "x", "x"); st != http.StatusOK {
			t.Fatalf("publish during rotation: %d %s", st, body)
		}
	}
	call(t, http.MethodDelete, s.APIBase()+"/api/v1/apps/app-a/keys/"+a.APIKeys[0].ID, testOperatorKey, nil)
	if st, _ := publishAs(t, s.APIBase(), a.APIKeys[0].Key, "x", "x"); st != http.StatusUnauthorized {
		t.Fatalf("retired API key: %d, want 401", st)
	}
}

// Deleting an app closes its clients with 4011 (do not reconnect), forgets
// its keys and history, and leaves the other apps alone.
func TestDeleteAppDisconnectsOnlyItsClients(t *testing.T) {
	s := appsServer(t)
	a := createApp(t, s.APIBase(), "app-a", chatNamespace)
	b := createApp(t, s.APIBase(), "app-b", chatNamespace)
	wa := servertest.Connect(t, s.WSURL, appToken(t, a, "alice"))
	wb := servertest.Connect(t, s.WSURL, appToken(t, b, "bob"))
	for _, ws := range []*servertest.WS{wa, wb} {
		ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:lobby"})
	}
	publishAs(t, s.APIBase(), b.APIKeys[0].Key, "chat:lobby", "kept?")
	wb.Expect("message")
	if st, body := call(t, http.MethodDelete, s.APIBase()+"/api/v1/apps/app-b", testOperatorKey, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d %s", st, body)
	}
	if code := wb.CloseCode(); code != 4011 {
		t.Fatalf("B's client closed with %d, want 4011", code)
	}
	if st, _ := publishAs(t, s.APIBase(), b.APIKeys[0].Key, "chat:lobby", "x"); st != http.StatusUnauthorized {
		t.Fatalf("deleted app's key: %d, want 401", st)
	}
	ws := servertest.Dial(t, s.WSURL)
	ws.Send(map[string]any{"type": "auth", "token": appToken(t, b, "bob")})
	ws.ExpectError("unauthorized")
	// A is untouched.
	publishAs(t, s.APIBase(), a.APIKeys[0].Key, "chat:lobby", "still here")
	if f := wa.Expect("message"); fmt.Sprint(f["data"]) != fmt.Sprint(map[string]any{"text": "still here"}) {
		t.Fatalf("A got %v", f)
	}
	// A new app of the same id starts empty.
	b2 := createApp(t, s.APIBase(), "app-b", chatNamespace)
	st, body := call(t, http.MethodGet, s.APIBase()+"/api/v1/history?channel=chat:lobby", b2.APIKeys[0].Key, nil)
	if st != http.StatusOK || bytes.Contains(body, []byte("kept?")) {
		t.Fatalf("history of a re-created app: %d %s", st, body)
	}
}

// Per-app limits refuse with named errors.
func TestAppLimits(t *testing.T) {
	s := appsServer(t)
	a := createApp(t, s.APIBase(), "app-a", map[string]any{"limits": map[string]any{"max_connections": 1, "max_publish_rate": 2, "max_message_bytes": 100}})
	servertest.Connect(t, s.WSURL, appToken(t, a, "u1"))
	ws := servertest.Dial(t, s.WSURL)
	ws.Send(map[string]any{"type": "auth", "token": appToken(t, a, "u2")})
	if f := ws.ExpectError("limit_exceeded"); !bytes.Contains([]byte(f.Str("message")), []byte("max_connections")) {
		t.Fatalf("refusal does not name the limit: %v", f)
	}
	if code := ws.CloseCode(); code != 4010 {
		t.Fatalf("close %d, want 4010", code)
	}
	// The default app has no such limit.
	servertest.Connect(t, s.WSURL, servertest.Token(t, "d1", nil, nil))
	servertest.Connect(t, s.WSURL, servertest.Token(t, "d2", nil, nil))

	big := bytes.Repeat([]byte("x"), 200)
	if st, body := publishAs(t, s.APIBase(), a.APIKeys[0].Key, "x", string(big)); st != http.StatusRequestEntityTooLarge || !bytes.Contains(body, []byte("max_message_bytes")) {
		t.Fatalf("over the app's max_message_bytes: %d %s", st, body)
	}
	limited := false
	for i := 0; i < 20 && !limited; i++ {
		st, body := publishAs(t, s.APIBase(), a.APIKeys[0].Key, "x", "x")
		if st == http.StatusTooManyRequests {
			limited = bytes.Contains(body, []byte("rate_limited")) && bytes.Contains(body, []byte("max_publish_rate"))
			if !limited {
				t.Fatalf("refusal does not name the limit: %s", body)
			}
		}
	}
	if !limited {
		t.Fatal("20 publishes at once passed a max_publish_rate of 2")
	}
	if st, body := publishAs(t, s.APIBase(), servertest.APIKey, "x", "x"); st != http.StatusOK {
		t.Fatalf("default app limited by another app's rate: %d %s", st, body)
	}
}

// The apps API takes the operator key only, and is off without one.
func TestAppsAPIAuth(t *testing.T) {
	s := appsServer(t)
	for _, key := range []string{"", servertest.APIKey, servertest.AdminKey} {
		if st, body := call(t, http.MethodGet, s.APIBase()+"/api/v1/apps", key, nil); st != http.StatusUnauthorized {
			t.Fatalf("key %q: %d %s", key, st, body)
		}
	}
	createApp(t, s.APIBase(), "one", nil)
	st, body := call(t, http.MethodGet, s.APIBase()+"/api/v1/apps/one", testOperatorKey, nil)
	var v createdApp
	if err := json.Unmarshal(body, &v); err != nil || st != http.StatusOK || !bytes.HasSuffix([]byte(v.APIKeys[0].Key), []byte("…")) || !bytes.HasSuffix([]byte(v.JWTKeys[0].Secret), []byte("…")) {
		t.Fatalf("show: keys not masked: %d %s", st, body)
	}
	for _, bad := range []map[string]any{{"id": "Bad_Id"}, {"id": "default"}, {"id": "one"}, {"id": "x", "limits": map[string]any{"max_connections": -1}}, {"id": "y", "surprise": 1}} {
		if st, body := call(t, http.MethodPost, s.APIBase()+"/api/v1/apps", testOperatorKey, bad); st/100 != 4 || !bytes.Contains(body, []byte(`"message"`)) {
			t.Fatalf("create %v: %d %s", bad, st, body)
		}
	}
	off := servertest.Start(t)
	if st, body := call(t, http.MethodGet, off.APIBase()+"/api/v1/apps", testOperatorKey, nil); st != http.StatusForbidden || !bytes.Contains(body, []byte("apps_disabled")) {
		t.Fatalf("without operator_key: %d %s", st, body)
	}
}

// GET /api/v1/info shows the asking app's connections, subscriptions and
// publishes, and only its own; /metrics has them by app.
func TestAppInfoAndMetrics(t *testing.T) {
	s := appsServer(t)
	a := createApp(t, s.APIBase(), "app-a", nil)
	b := createApp(t, s.APIBase(), "app-b", nil)
	for _, u := range []string{"u1", "u2"} {
		ws := servertest.Connect(t, s.WSURL, appToken(t, a, u))
		ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "news"})
	}
	for i := 0; i < 3; i++ {
		publishAs(t, s.APIBase(), a.APIKeys[0].Key, "news", "x")
	}
	for key, want := range map[string]string{
		a.APIKeys[0].Key:  `{"id":"app-a","connections":2,"subscriptions":2,"published":3,`,
		b.APIKeys[0].Key:  `{"id":"app-b","connections":0,"subscriptions":0,"published":0,`,
		servertest.APIKey: `{"id":"default","connections":0,"subscriptions":0,"published":0,`,
	} {
		st, body := call(t, http.MethodGet, s.APIBase()+"/api/v1/info", key, nil)
		if st != http.StatusOK || !bytes.Contains(body, []byte(want)) || bytes.Count(body, []byte(`"id":"app-`))+bytes.Count(body, []byte(`"id":"default"`)) != 1 {
			t.Fatalf("info: %d %s, want only %s", st, body, want)
		}
	}
	_, body := call(t, http.MethodGet, s.APIBase()+"/metrics", servertest.APIKey, nil)
	for _, want := range []string{`eddy_app_connections{app="app-a"} 2`, `eddy_app_subscriptions{app="app-a"} 2`, `eddy_app_messages_published_total{app="app-a"} 3`, `eddy_app_connections{app="app-b"} 0`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Each app's allowed_origins holds for its tokens: an origin only app A
// allows gets through the handshake, then A's token is accepted from it and
// the default app's refused; the default app keeps its own list.
func TestAppAllowedOrigins(t *testing.T) {
	s := appsServer(t, func(c *config.Config) { c.AllowedOrigins = []string{"https://default.example"} })
	a := createApp(t, s.APIBase(), "app-a", map[string]any{"allowed_origins": []string{"https://a.example"}})
	if _, st := sseTry(t, s.Base, http.Header{"Origin": {"https://evil.example"}}); st != http.StatusForbidden {
		t.Fatalf("an origin no app allows: status %d, want 403", st)
	}
	for _, c := range []struct {
		origin, token string
		ok            bool
	}{
		{"https://a.example", appToken(t, a, "u"), true},
		{"https://a.example", servertest.Token(t, "u", nil, nil), false},
		{"https://default.example", appToken(t, a, "u"), false},
		{"https://default.example", servertest.Token(t, "u", nil, nil), true},
	} {
		sc := sseOpen(t, s.Base, http.Header{"Origin": {c.origin}})
		sc.post(map[string]any{"type": "auth", "token": c.token})
		if c.ok {
			sc.expect("ready")
			continue
		}
		if f := sc.expect("error"); f.Str("code") != "unauthorized" || !strings.Contains(f.Str("message"), "allowed_origins") {
			t.Fatalf("origin %s: %v", c.origin, f)
		}
		sc.expectClose(4001)
	}
}

// A refresh must stay in the connection's app.
func TestAppRefreshStaysInItsApp(t *testing.T) {
	s := appsServer(t)
	a := createApp(t, s.APIBase(), "app-a", nil)
	b := createApp(t, s.APIBase(), "app-b", nil)
	ws := servertest.Connect(t, s.WSURL, appToken(t, a, "u"))
	if f := ws.Request(map[string]any{"type": "refresh", "id": 1, "token": appToken(t, b, "u")}); f.Str("code") != "unauthorized" || !strings.Contains(f.Str("message"), `app "app-b"`) {
		t.Fatalf("refresh with another app's token: %v", f)
	}
	if f := ws.Request(map[string]any{"type": "refresh", "id": 2, "token": appToken(t, a, "u")}); f.Type() != "refreshed" {
		t.Fatalf("refresh with the app's own token: %v", f)
	}
}

// Join and leave events reach the members of the app's channel only.
func TestAppJoinLeaveStaysInItsApp(t *testing.T) {
	s := appsServer(t)
	joinLeave := map[string]any{"namespaces": map[string]any{"chat": map[string]any{"presence": true, "join_leave": true}}}
	a := createApp(t, s.APIBase(), "app-a", joinLeave)
	b := createApp(t, s.APIBase(), "app-b", joinLeave)
	wb := servertest.Connect(t, s.WSURL, appToken(t, b, "bob"))
	wb.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:lobby"})
	a1 := servertest.Connect(t, s.WSURL, appToken(t, a, "ann"))
	a1.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:lobby"})
	a2 := servertest.Connect(t, s.WSURL, appToken(t, a, "art"))
	a2.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:lobby"})
	// ann's own join may come first; art's follows.
	f := a1.Expect("presence")
	if strings.Contains(fmt.Sprint(f["member"]), "ann") {
		f = a1.Expect("presence")
	}
	if f.Str("action") != "join" || !strings.Contains(fmt.Sprint(f["member"]), "art") {
		t.Fatalf("A's member saw %v, want art's join", f)
	}
	publishAs(t, s.APIBase(), b.APIKeys[0].Key, "chat:lobby", "only B")
	for {
		f := wb.Next()
		if f.Type() == "message" {
			break
		}
		if f.Type() != "presence" || !strings.Contains(fmt.Sprint(f["member"]), "bob") {
			t.Fatalf("B's member got %v before its own app's message: another app's presence leaked", f)
		}
	}
}
