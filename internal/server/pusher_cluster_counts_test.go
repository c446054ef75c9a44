package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	redisbroker "github.com/eddyrt/eddy/internal/broker/redis"
	"github.com/eddyrt/eddy/internal/pusher"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// pusherQuery is a signed GET of the Pusher HTTP API that also returns the
// response's headers and decodes its JSON body.
func pusherQuery(t *testing.T, s *servertest.Server, path string, query url.Values) (map[string]any, http.Header) {
	t.Helper()
	if query == nil {
		query = url.Values{}
	}
	pusher.SignRequest(testPusherKey, testPusherSecret, http.MethodGet, path, query, nil, time.Now())
	resp, err := http.Get(s.APIBase() + path + "?" + query.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s?%s: %d %s", path, query.Encode(), resp.StatusCode, body)
	}
	var out map[string]any
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&out); err != nil {
		t.Fatalf("GET %s: %q: %v", path, body, err)
	}
	return out, resp.Header
}

// channelsOf returns GET /channels's channels object, as JSON text.
func channelsOf(t *testing.T, s *servertest.Server, query url.Values) string {
	t.Helper()
	out, h := pusherQuery(t, s, "/apps/"+testPusherApp+"/channels", query)
	if v := h.Get("X-Eddy-Nodes-Unanswered"); v != "" {
		t.Fatalf("GET /channels: %s nodes did not answer", v)
	}
	b, _ := json.Marshal(out["channels"])
	return string(b)
}

// TestPusherClusterChannelQueries: three nodes over a real redis-server,
// raw Pusher clients on different nodes on the same and different
// channels. The channel listing (filter_by_prefix, info=user_count and
// subscription_count), the single-channel query and a trigger's info,
// each answered by one node, count every node's subscribers; a channel
// occupied only on another node is listed; a node that is registered but
// never answers is reported in X-Eddy-Nodes-Unanswered, not waited on
// forever and not counted; with Redis down the query answers 503.
func TestPusherClusterChannelQueries(t *testing.T) {
	rs, nodes := cluster(t, 3, withPusher)
	a0, b0 := dialPusher(t, nodes[0]), dialPusher(t, nodes[0])
	a1 := dialPusher(t, nodes[1])
	a2, b2 := dialPusher(t, nodes[2]), dialPusher(t, nodes[2])

	a0.join("orders", "")
	b0.join("orders", "")
	a1.join("orders", "")
	a1.join("orders-eu", "") // on node 1 only
	a2.join("private-audit", "")
	a0.join("presence-room", `{"user_id":"ann"}`)
	a2.join("presence-room", `{"user_id":"bob"}`)
	b2.join("presence-room", `{"user_id":"bob"}`) // bob's second tab: one user, two subscriptions

	// Node 0 has no subscriber of orders-eu or private-audit.
	if got, want := channelsOf(t, nodes[0], nil), `{"orders":{},"orders-eu":{},"presence-room":{},"private-audit":{}}`; got != want {
		t.Fatalf("GET /channels through node 0:\n got %s\nwant %s", got, want)
	}
	if got, want := channelsOf(t, nodes[0], url.Values{"filter_by_prefix": {"orders"}, "info": {"subscription_count"}}),
		`{"orders":{"subscription_count":3},"orders-eu":{"subscription_count":1}}`; got != want {
		t.Fatalf("GET /channels?filter_by_prefix=orders through node 0:\n got %s\nwant %s", got, want)
	}
	if got, want := channelsOf(t, nodes[1], url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count,subscription_count"}}),
		`{"presence-room":{"subscription_count":3,"user_count":2}}`; got != want {
		t.Fatalf("GET /channels?filter_by_prefix=presence- through node 1:\n got %s\nwant %s", got, want)
	}

	for _, tc := range []struct {
		node    int
		channel string
		info    string
		want    string
	}{
		{0, "private-audit", "subscription_count", `{"occupied":true,"subscription_count":1}`},
		{1, "orders", "subscription_count", `{"occupied":true,"subscription_count":3}`},
		{1, "presence-room", "user_count,subscription_count", `{"occupied":true,"subscription_count":3,"user_count":2}`},
		{2, "orders-eu", "", `{"occupied":true}`},
		{2, "nobody-here", "subscription_count", `{"occupied":false,"subscription_count":0}`},
	} {
		out, h := pusherQuery(t, nodes[tc.node], "/apps/"+testPusherApp+"/channels/"+tc.channel, url.Values{"info": {tc.info}})
		if b, _ := json.Marshal(out); string(b) != tc.want || h.Get("X-Eddy-Nodes-Unanswered") != "" {
			t.Errorf("GET /channels/%s?info=%s through node %d: %s (unanswered %q), want %s", tc.channel, tc.info, tc.node, b, h.Get("X-Eddy-Nodes-Unanswered"), tc.want)
		}
	}

	// A trigger's info counts the whole cluster too.
	out := trigger(t, nodes[2], map[string]any{"name": "n", "channels": []string{"orders", "orders-eu", "private-audit"}, "data": "d", "info": "subscription_count"})
	if b, _ := json.Marshal(out); string(b) != `{"channels":{"orders":{"subscription_count":3},"orders-eu":{"subscription_count":1},"private-audit":{"subscription_count":1}}}` {
		t.Errorf("trigger info through node 2: %s", b)
	}
	status, body := pusherCall(t, nodes[1], http.MethodPost, "/apps/"+testPusherApp+"/batch_events", nil, map[string]any{"batch": []map[string]any{
		{"name": "n", "channel": "orders", "data": "d", "info": "subscription_count"},
		{"name": "n", "channel": "private-audit", "data": "d"},
		{"name": "n", "channel": "private-audit", "data": "d", "info": "subscription_count"},
	}})
	if status != http.StatusOK || body != `{"batch":[{"subscription_count":3},{},{"subscription_count":1}]}` {
		t.Errorf("batch info through node 1: %d %s", status, body)
	}

	// Subscribers leaving another node leave the counts.
	a1.Send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "orders-eu"}})
	_ = a2.Conn.NetConn().Close()
	servertest.Eventually(t, "node 0 to see node 1 and 2's subscribers leave", func() bool {
		return channelsOf(t, nodes[0], url.Values{"info": {"subscription_count"}}) ==
			`{"orders":{"subscription_count":3},"presence-room":{"subscription_count":2}}`
	})

	// A listing is bounded: each node reports its first channels by name,
	// and the merged listing keeps the cluster's first ones and says so.
	dialPusher(t, nodes[0]).join("zz-0", "")
	dialPusher(t, nodes[1]).join("aa-1", "")
	dialPusher(t, nodes[2]).join("mm-2", "")
	restore := server.SetPusherChannelLimit(2)
	defer restore()
	all, h := pusherQuery(t, nodes[0], "/apps/"+testPusherApp+"/channels", url.Values{"info": {"subscription_count"}})
	if b, _ := json.Marshal(all); string(b) != `{"channels":{"aa-1":{"subscription_count":1},"mm-2":{"subscription_count":1}}}` || h.Get("X-Eddy-Channels-Truncated") != "2" {
		t.Fatalf("listing cut at 2: %s, truncated %q", b, h.Get("X-Eddy-Channels-Truncated"))
	}
	restore()

	// A node that is registered but never answers: the answer comes after
	// the reply window with what the others said, and says one is missing.
	rb, err := redisbroker.New(redisbroker.Options{Addrs: []string{rs.URL()}, NodeID: "silent", NodeTTL: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rb.Close() })
	if err := rb.Announce(context.Background(), api.NodeInfo{ID: "silent", Name: "silent"}); err != nil {
		t.Fatal(err)
	}
	got, h := pusherQuery(t, nodes[0], "/apps/"+testPusherApp+"/channels/orders", url.Values{"info": {"subscription_count"}})
	if b, _ := json.Marshal(got); string(b) != `{"occupied":true,"subscription_count":3}` || h.Get("X-Eddy-Nodes-Unanswered") != "1" {
		t.Fatalf("with a silent node: %s, unanswered %q; want the others' counts and 1", b, h.Get("X-Eddy-Nodes-Unanswered"))
	}

	// Redis gone: the node cannot ask, and says so rather than answer with
	// its own counts as if they were the cluster's.
	rs.Stop()
	status, body = pusherCall(t, nodes[0], http.MethodGet, "/apps/"+testPusherApp+"/channels", nil, nil)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("GET /channels with Redis down: %d %s, want 503", status, body)
	}
	t.Logf("with Redis down: %d %s", status, body)
}
