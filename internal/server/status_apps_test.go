package server_test

import (
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/servertest"
)

// appAdminToken signs a token of app a with the admin claim.
func appAdminToken(t *testing.T, a createdApp, sub string) string {
	t.Helper()
	k := a.JWTKeys[0]
	tok, err := auth.Mint([]byte(k.Secret), auth.TokenSpec{Subject: sub, Admin: true, TTL: time.Hour, App: a.ID, KeyID: k.ID,
		Channels: []string{"*"}, Publish: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// statusUntil reads ws's status events until user's connection_opened,
// failing on any event that is not of app (its "app" field; "" the
// default app) or names a user not in users.
func statusUntil(t *testing.T, ws *servertest.WS, who, app, user string, users ...string) {
	t.Helper()
	allowed := map[string]bool{user: true}
	for _, u := range users {
		allowed[u] = true
	}
	deadline := time.After(servertest.Timeout)
	for {
		var f servertest.Frame
		select {
		case f = <-ws.Frames:
		case <-deadline:
			t.Fatalf("%s's admin: no connection_opened of %s within %s", who, user, servertest.Timeout)
		}
		if f.Type() != "message" || f.Str("channel") != statusChannel {
			continue
		}
		data, _ := f["data"].(map[string]any)
		got, _ := data["app"].(string)
		u, _ := data["user"].(string)
		if got != app || (u != "" && !allowed[u]) {
			t.Fatalf("%s's admin got %v: another app's event", who, data)
		}
		if data["type"] == "connection_opened" && u == user {
			return
		}
	}
}

// An admin token of an app sees that app's status events only; the
// default app's admin sees the default app's (and no other app's).
func TestStatusChannelPerApp(t *testing.T) {
	s := appsServer(t)
	a := createApp(t, s.APIBase(), "app-a", nil)
	b := createApp(t, s.APIBase(), "app-b", nil)
	watch := func(tok string) *servertest.WS {
		ws := servertest.Connect(t, s.WSURL, tok)
		if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": statusChannel}); f.Type() != "subscribed" {
			t.Fatalf("subscribe to %s: %v", statusChannel, f)
		}
		return ws
	}
	wa, wb, wd := watch(appAdminToken(t, a, "ops-a")), watch(appAdminToken(t, b, "ops-b")), watch(adminToken(t, "ops"))

	// One round in one order, one in another: every event an admin reads
	// before its own app's is checked, so another app's would be seen.
	for _, round := range []struct{ order []string }{{[]string{"b", "a", "d"}}, {[]string{"d", "a", "b"}}} {
		for _, who := range round.order {
			switch who {
			case "a":
				c := servertest.Connect(t, s.WSURL, appToken(t, a, "alan"))
				c.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room"})
			case "b":
				c := servertest.Connect(t, s.WSURL, appToken(t, b, "bella"))
				c.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room"})
			case "d":
				c := servertest.Connect(t, s.WSURL, servertest.Token(t, "dora", nil, []string{"*"}))
				c.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room"})
			}
		}
		statusUntil(t, wa, "A", "app-a", "alan", "ops-a")
		statusUntil(t, wb, "B", "app-b", "bella", "ops-b")
		statusUntil(t, wd, "default", "", "dora", "ops")
	}
	// The last round's events: each admin's next events are its own app's.
	servertest.Connect(t, s.WSURL, appToken(t, b, "bella"))
	servertest.Connect(t, s.WSURL, servertest.Token(t, "dora2", nil, []string{"*"}))
	servertest.Connect(t, s.WSURL, appToken(t, a, "alan2"))
	statusUntil(t, wa, "A", "app-a", "alan2", "alan", "ops-a")
	statusUntil(t, wd, "default", "", "dora2", "dora", "ops")
}
