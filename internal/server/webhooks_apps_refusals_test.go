package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// An app's failing function and the refusals of its connections
// (its own max_connections, and max_connections_per_user for its users)
// reach that app's receivers; eddy.yaml's receivers get the default app's
// only.
func TestAppWebhooksGetTheirFunctionErrorsAndRefusals(t *testing.T) {
	recvB, recvD := newHookReceiver(t), newHookReceiver(t)
	events := []string{"function_error", "connection_limit"}
	s := servertest.StartNode(t, func(c *config.Config) {
		c.OperatorKey = testOperatorKey
		c.WebhookWindow = 20 * time.Millisecond
		c.MaxConnectionsPerUser = 1
		c.Namespaces["chat"] = config.ChannelOptions{}
		c.Webhooks = []config.Webhook{{URL: recvD.URL(), Secret: "default-secret", Events: events}}
	})
	b := createApp(t, s.APIBase(), "app-b", map[string]any{
		"namespaces": map[string]any{"chat": map[string]any{}},
		"limits":     map[string]any{"max_connections": 2},
	})
	if st, body := call(t, http.MethodPatch, s.APIBase()+"/api/v1/apps/app-b", testOperatorKey, map[string]any{"webhooks": []map[string]any{
		{"url": recvB.URL(), "secret": "b-secret", "events": events},
	}}); st != http.StatusOK {
		t.Fatalf("PATCH app-b webhooks: %d %s", st, body)
	}
	failing := func(adminKey, name string) {
		t.Helper()
		// Returning a number is a failure (a throw is a rejection).
		fn := map[string]any{"runtime": "js", "source": `function handle(m){ return 42 }`}
		if st, body := call(t, http.MethodPut, s.APIBase()+"/api/v1/functions/"+name, adminKey, fn); st/100 != 2 {
			t.Fatalf("deploy %s: %d %s", name, st, body)
		}
		if st, body := call(t, http.MethodPut, s.APIBase()+"/api/v1/associations", adminKey, map[string]any{"pattern": "chat:*", "functions": []string{name}, "on_error": "pass"}); st/100 != 2 {
			t.Fatalf("associate %s: %d %s", name, st, body)
		}
	}
	failing(b.AdminKey, "b-fails")
	failing(servertest.AdminKey, "default-fails")

	// B's function fails on B's message: B's receiver hears of it.
	if st, body := publishAs(t, s.APIBase(), b.APIKeys[0].Key, "chat:lobby", "x"); st != http.StatusOK {
		t.Fatalf("publish past B's failing function (on_error pass): %d %s", st, body)
	}
	if e := recvB.next(t, "B", "function_error", "chat:lobby"); e.Function != "b-fails" {
		t.Fatalf("B's receiver got %+v, want b-fails's failure", e.Event)
	}
	// B's user over max_connections_per_user, then B over its max_connections.
	servertest.Connect(t, s.WSURL, appToken(t, b, "bob"))
	refused := func(token, code, limit string) {
		t.Helper()
		ws := servertest.Dial(t, s.WSURL)
		ws.Send(map[string]any{"type": "auth", "token": token})
		if f := ws.ExpectError(code); !strings.Contains(f.Str("message"), limit) {
			t.Fatalf("refusal %v does not name %s", f, limit)
		}
	}
	refused(appToken(t, b, "bob"), "limit_exceeded", "max_connections_per_user")
	if e := recvB.next(t, "B", "connection_limit", ""); e.Limit != "max_connections_per_user" {
		t.Fatalf("B's receiver got %+v, want max_connections_per_user", e.Event)
	}
	servertest.Connect(t, s.WSURL, appToken(t, b, "bea"))
	refused(appToken(t, b, "bo"), "limit_exceeded", "max_connections")
	if e := recvB.next(t, "B", "connection_limit", ""); e.Limit != "max_connections" {
		t.Fatalf("B's receiver got %+v, want max_connections", e.Event)
	}

	// The default app's own: the next events eddy.yaml's receiver gets are
	// these, so it got none of B's before them.
	if st, body := publishAs(t, s.APIBase(), servertest.APIKey, "chat:lobby", "x"); st != http.StatusOK {
		t.Fatalf("publish past the default app's failing function: %d %s", st, body)
	}
	if e := recvD.next(t, "default", "function_error", "chat:lobby"); e.Function != "default-fails" {
		t.Fatalf("the default receiver got %+v, want default-fails's failure", e.Event)
	}
	servertest.Connect(t, s.WSURL, servertest.Token(t, "dora", nil, nil))
	refused(servertest.Token(t, "dora", nil, nil), "limit_exceeded", "max_connections_per_user")
	if e := recvD.next(t, "default", "connection_limit", ""); e.Limit != "max_connections_per_user" {
		t.Fatalf("the default receiver got %+v, want max_connections_per_user", e.Event)
	}
	select {
	case e := <-recvB.events:
		t.Fatalf("B's receiver got the default app's %+v", e.Event)
	default:
	}
}
