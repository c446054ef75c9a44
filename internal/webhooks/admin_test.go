package webhooks_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/webhooks"
)

type listed struct {
	Webhooks []webhooks.Listed `json:"webhooks"`
}

func list(t *testing.T, s *servertest.Server) []webhooks.Listed {
	t.Helper()
	var out listed
	if err := s.Admin().Do(context.Background(), http.MethodGet, "/api/v1/webhooks", nil, &out); err != nil {
		t.Fatal(err)
	}
	return out.Webhooks
}

// TestAdminAPIChangesReachEveryNode: a receiver added through one node's
// admin API is in force on every node of the cluster (kept in Redis), gets
// events signed with its secret, is listed with the secret masked, and is
// gone everywhere once deleted through another node.
func TestAdminAPIChangesReachEveryNode(t *testing.T) {
	rs := redistest.Start(t)
	rcv := newReceiver(t)
	var nodes []*servertest.Server
	for range 2 {
		s, _ := startNode(t, func(c *config.Config) { c.Redis = []string{rs.URL()} })
		nodes = append(nodes, s)
	}
	ctx := context.Background()
	var added webhooks.Listed
	in := map[string]any{"url": rcv.URL(), "secret": "added-secret", "events": []string{"channel_occupied"}}
	if err := nodes[0].Admin().Do(ctx, http.MethodPost, "/api/v1/webhooks", in, &added); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(added.ID, "wh_") || added.Secret != webhooks.SecretMask || added.Source != "api" {
		t.Fatalf("added %+v, want an id, the secret masked, source api", added)
	}
	servertest.Eventually(t, "node 1 lists the receiver", func() bool {
		l := list(t, nodes[1])
		return len(l) == 1 && l[0].ID == added.ID && l[0].Secret == webhooks.SecretMask
	})
	ws := servertest.Connect(t, nodes[1].WSURL, servertest.Token(t, "frank", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:admin"})
	servertest.Eventually(t, "occupied at the added receiver", func() bool { return len(rcv.events(t)) == 1 })
	p := rcv.posts()[0]
	if !verifyEddySignature("added-secret", p.body, p.header.Get("X-Eddy-Signature")) {
		t.Fatal("the POST is not signed with the added receiver's secret")
	}
	if err := nodes[1].Admin().Do(ctx, http.MethodDelete, "/api/v1/webhooks/"+added.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "node 0 no longer lists it", func() bool { return len(list(t, nodes[0])) == 0 })
}

// TestAdminAPIRefusesWhatIsWrong: each refusal names its cause.
func TestAdminAPIRefusesWhatIsWrong(t *testing.T) {
	rcv := newReceiver(t)
	s, _ := startNode(t, func(c *config.Config) {
		c.Webhooks = []config.Webhook{{URL: rcv.URL(), Secret: hookSecret, Events: []string{"channel_vacated"}}}
	})
	ctx := context.Background()
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		says         string
	}{
		{http.MethodPost, "/api/v1/webhooks", map[string]any{"url": rcv.URL(), "events": []string{"channel_occupied"}}, 400, "secret"},
		{http.MethodPost, "/api/v1/webhooks", map[string]any{"url": rcv.URL(), "secret": "s", "events": []string{"channel_occupied", "nope"}}, 400, `"nope"`},
		{http.MethodPost, "/api/v1/webhooks", map[string]any{"url": "ftp://x", "secret": "s", "events": []string{"channel_occupied"}}, 400, "url"},
		{http.MethodPost, "/api/v1/webhooks", map[string]any{"url": rcv.URL(), "secret": "s", "events": []string{"function_error"}, "format": "pusher", "key": "k"}, 400, "function_error"},
		{http.MethodPost, "/api/v1/webhooks", map[string]any{"url": rcv.URL(), "secret": "s", "events": []string{"cache_miss"}, "format": "pusher"}, 400, "key"},
		{http.MethodPost, "/api/v1/webhooks", map[string]any{"url": rcv.URL(), "secret": "s", "events": []string{"cache_miss"}, "color": "red"}, 400, "color"},
		{http.MethodDelete, "/api/v1/webhooks/config-1", nil, 400, "eddy.yaml"},
		{http.MethodDelete, "/api/v1/webhooks/wh_nosuch", nil, 404, "wh_nosuch"},
	} {
		err := s.Admin().Do(ctx, c.method, c.path, c.body, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != c.status || !strings.Contains(ae.Message, c.says) {
			t.Errorf("%s %s %v: %v, want %d naming %s", c.method, c.path, c.body, err, c.status, c.says)
		}
	}
	err := s.API().Do(ctx, http.MethodGet, "/api/v1/webhooks", nil, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("the API key opened the webhooks admin API: %v", err)
	}
	if l := list(t, s); len(l) != 1 || l[0].ID != "config-1" || l[0].Source != "config" || l[0].Secret != webhooks.SecretMask {
		t.Fatalf("list %+v, want eddy.yaml's receiver, masked", l)
	}
}
