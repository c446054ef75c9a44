package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/servertest"
)

// getJSON calls the admin API with the admin key and decodes the answer.
func getJSON(t *testing.T, method, url, body string, into any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+servertest.AdminKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK && into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	return res.StatusCode
}

// The console's routes take the admin key, refuse the API key and say
// they are off without an admin_key; the admin key also opens the API.
func TestConsoleAPIKeys(t *testing.T) {
	s := servertest.Start(t)
	routes := [][2]string{{"GET", "/api/v1/stats"}, {"GET", "/api/v1/stats?follow=1"}, {"GET", "/api/v1/channels"}, {"GET", "/api/v1/channels/chat:a"},
		{"POST", "/api/v1/channels/chat:a/publish"}, {"GET", "/api/v1/connections"}, {"POST", "/api/v1/users/alice/disconnect"}}
	for _, r := range routes {
		for _, key := range []string{"", servertest.APIKey, "nope"} {
			status, eb, raw := doRaw(t, r[0], s.Base+r[1], key, "")
			if status != http.StatusUnauthorized || eb.Error.Code != protocol.CodeUnauthorized || !strings.Contains(eb.Error.Message, "admin key") {
				t.Errorf("%s %s with key %q: %d %s, want 401 naming the admin key", r[0], r[1], key, status, raw)
			}
		}
	}
	// The keys stay apart: the admin key does not open the API key's routes.
	if status, _, raw := doRaw(t, "POST", s.Base+"/api/v1/publish", servertest.AdminKey, `{"channel":"a","event":"e","data":1}`); status != http.StatusUnauthorized {
		t.Errorf("publish with the admin key: %d %s, want 401", status, raw)
	}

	off := servertest.Start(t, func(c *config.Config) { c.AdminKey = "" })
	status, eb, raw := doRaw(t, "GET", off.Base+"/api/v1/stats", servertest.AdminKey, "")
	if status != http.StatusForbidden || eb.Error.Code != "admin_disabled" {
		t.Errorf("stats without an admin_key: %d %s, want 403 admin_disabled", status, raw)
	}
}

// The console's pages are on the API listener when api_listen is set (not
// on the client listener), with a policy that allows only their own scripts.
func TestConsolePagesOnTheAPIListener(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.APIListen = "127.0.0.1:0" })
	for _, path := range []string{"/admin/", "/admin/console.js", "/admin/console.css"} {
		res, err := http.Get(s.APIBase() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || len(b) < 500 || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET %s: %d, %d bytes, CSP %q", path, res.StatusCode, len(b), res.Header.Get("Content-Security-Policy"))
		}
		if path == "/admin/" && !strings.Contains(string(b), "Eddy console") {
			t.Errorf("GET /admin/ is not the console: %.200s", b)
		}
	}
	res, err := http.Get(s.Base + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /admin/ on the client listener: %d, want 404 (the console is on the API listener)", res.StatusCode)
	}
}

// Channels are listed by prefix with their subscribers and messages, and
// connections by user with their channels and since when.
func TestConsoleChannelsAndConnections(t *testing.T) {
	s := servertest.Start(t)
	alice := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	alice.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:a"})
	alice.Request(map[string]any{"type": "subscribe", "id": 2, "channel": "chat:b"})
	bob := servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", nil, nil))
	bob.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "news"})
	for i := 0; i < 3; i++ {
		if _, err := s.API().Publish(context.Background(), "chat:a", "e", i); err != nil {
			t.Fatal(err)
		}
	}

	var chans api.ChannelsResponse
	servertest.Eventually(t, "chat:a counted 3 messages", func() bool {
		if getJSON(t, "GET", s.Base+"/api/v1/channels?prefix=chat:", "", &chans) != http.StatusOK {
			return false
		}
		return chans.Total == 2 && len(chans.Channels) == 2 && chans.Channels[0].Channel == "chat:a" && chans.Channels[0].Messages == 3
	})
	if c := chans.Channels[1]; c.Channel != "chat:b" || c.Subscribers != 1 || c.Messages != 0 || chans.Node != s.NodeID() {
		t.Errorf("channels: %+v", chans)
	}
	if getJSON(t, "GET", s.Base+"/api/v1/channels?prefix=chat:&limit=1", "", &chans); len(chans.Channels) != 1 || chans.Total != 2 {
		t.Errorf("limit 1: %+v", chans)
	}
	if status, eb, _ := doRaw(t, "GET", s.Base+"/api/v1/channels?limit=0", servertest.AdminKey, ""); status != 400 || !strings.Contains(eb.Error.Message, "limit") {
		t.Errorf("limit=0: %d %+v", status, eb)
	}

	var conns api.ConnectionsResponse
	if getJSON(t, "GET", s.Base+"/api/v1/connections?user=alice", "", &conns) != http.StatusOK || conns.Total != 1 {
		t.Fatalf("alice's connections: %+v", conns)
	}
	c := conns.Connections[0]
	since, err := time.Parse(time.RFC3339, c.ConnectedAt)
	if c.User != "alice" || c.Transport != "websocket" || strings.Join(c.Channels, ",") != "chat:a,chat:b" || err != nil || time.Since(since) > time.Minute {
		t.Errorf("alice's connection: %+v (%v)", c, err)
	}
	if getJSON(t, "GET", s.Base+"/api/v1/connections", "", &conns); conns.Total != 2 {
		t.Errorf("everyone: %+v", conns)
	}
	if getJSON(t, "GET", s.Base+"/api/v1/connections?user=carol", "", &conns); conns.Total != 0 || conns.Connections == nil {
		t.Errorf("carol has none, listed as []: %+v", conns)
	}
}

// Disconnecting a user closes each of its connections with 4012 and the
// reason, and no one else's.
func TestConsoleDisconnectUser(t *testing.T) {
	s := servertest.Start(t)
	a1 := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	a2 := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	bob := servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", nil, nil))

	if status, eb, _ := doRaw(t, "POST", s.Base+"/api/v1/users/alice/disconnect", servertest.AdminKey, `{"reason":"`+strings.Repeat("x", 121)+`"}`); status != 400 || !strings.Contains(eb.Error.Message, "reason") {
		t.Fatalf("a too long reason: %d %+v", status, eb)
	}
	var out api.DisconnectResponse
	if getJSON(t, "POST", s.Base+"/api/v1/users/alice/disconnect", `{"reason":"spamming"}`, &out) != http.StatusOK || out.Disconnected != 2 {
		t.Fatalf("disconnect alice: %+v", out)
	}
	for _, ws := range []*servertest.WS{a1, a2} {
		if code := ws.CloseCode(); code != protocol.CloseByOperator {
			t.Errorf("alice's connection closed with %d, want %d", code, protocol.CloseByOperator)
		}
	}
	if f := bob.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "still:here"}); f.Type() != "subscribed" {
		t.Errorf("bob's connection after alice's disconnect: %v", f)
	}
	if getJSON(t, "POST", s.Base+"/api/v1/users/alice/disconnect", "", &out) != http.StatusOK || out.Disconnected != 0 {
		t.Errorf("alice again: %+v", out)
	}
}

// The stats stream sends the node's figures once a second, with the
// history first, and the rate of a channel being published to rises.
func TestConsoleStatsStream(t *testing.T) {
	s := servertest.Start(t)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "busy"})

	var snap api.Stats
	if getJSON(t, "GET", s.Base+"/api/v1/stats", "", &snap) != http.StatusOK || snap.Broker.Kind != "memory" || !snap.Broker.Ready ||
		len(snap.Nodes) != 1 || !snap.Nodes[0].Self || snap.Nodes[0].Connections != 1 || snap.Nodes[0].Subscriptions != 1 || snap.Node != s.NodeID() {
		t.Fatalf("stats: %+v", snap)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.Base+"/api/v1/stats?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+servertest.AdminKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream: %d %s", res.StatusCode, ct)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			_, _ = s.API().Publish(context.Background(), "busy", "e", i)
		}
	}()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	events := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "event: stats" {
			events++
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var st api.Stats
		if err := json.Unmarshal([]byte(data), &st); err != nil {
			t.Fatalf("event data: %v: %s", err, data)
		}
		if events == 1 && st.History == nil {
			t.Errorf("the first event carries no history")
		}
		self := st.Nodes[0]
		if self.MessagesInPerS > 0 && self.MessagesOutPerS > 0 && len(st.Busiest) > 0 && st.Busiest[0].Channel == "busy" && st.Busiest[0].PerS > 0 && st.Busiest[0].Subscribers == 1 {
			return // the rates rose while the test published
		}
	}
	t.Fatalf("stream ended after %d events without the rate rising: %v", events, sc.Err())
}

// In a cluster, the stats list every node with its figures and rates as
// the node last announced them over Redis.
func TestConsoleStatsAcrossACluster(t *testing.T) {
	_, nodes := cluster(t, 2)
	b := servertest.Connect(t, nodes[1].WSURL, servertest.Token(t, "bob", nil, nil))
	b.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:b"})
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond) // a steady load on node 1
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			_, _ = nodes[1].API().Publish(context.Background(), "feed:b", "e", i)
		}
	}()
	defer func() { close(done); <-stopped }()
	var st api.Stats
	servertest.EventuallyWithin(t, 30*time.Second, "node 0 sees node 1's connection and rate", func() bool {
		if getJSON(t, "GET", nodes[0].Base+"/api/v1/stats", "", &st) != http.StatusOK || len(st.Nodes) != 2 {
			return false
		}
		other := st.Nodes[1]
		return st.Nodes[0].Self && st.Nodes[0].ID == nodes[0].NodeID() && !other.Self && other.ID == nodes[1].NodeID() &&
			other.Connections == 1 && other.Subscriptions == 1 && other.MessagesInPerS > 0
	})
	if st.Broker.Kind != "redis" || !st.Broker.Ready {
		t.Errorf("broker: %+v", st.Broker)
	}
}

// In a cluster, a user's connections are listed, and disconnected, on
// every node through any one of them, and the answers count them all.
func TestConsoleUserAcrossACluster(t *testing.T) {
	_, nodes := cluster(t, 2)
	a0 := servertest.Connect(t, nodes[0].WSURL, servertest.Token(t, "alice", nil, nil))
	a1 := servertest.Connect(t, nodes[1].WSURL, servertest.Token(t, "alice", nil, nil))
	bob := servertest.Connect(t, nodes[1].WSURL, servertest.Token(t, "bob", nil, nil))
	servertest.Eventually(t, "both nodes registered", func() bool {
		info, err := nodes[0].API().Info(context.Background())
		return err == nil && len(info.Nodes) == 2
	})
	// Listed from either node: every node's connections of the user.
	var conns api.ConnectionsResponse
	if getJSON(t, "GET", nodes[1].Base+"/api/v1/connections?user=alice", "", &conns) != http.StatusOK || conns.Total != 2 || conns.Nodes != 2 ||
		len(conns.Connections) != 2 || conns.Connections[0].Node == conns.Connections[1].Node {
		t.Fatalf("alice's connections across the cluster: %+v", conns)
	}
	if getJSON(t, "GET", nodes[0].Base+"/api/v1/connections?limit=2", "", &conns) != http.StatusOK || conns.Total != 3 || len(conns.Connections) != 2 {
		t.Fatalf("everyone's, first 2: %+v", conns)
	}
	var out api.DisconnectResponse
	if getJSON(t, "POST", nodes[0].Base+"/api/v1/users/alice/disconnect", `{"reason":"bye"}`, &out) != http.StatusOK || out.Disconnected != 2 || out.Nodes != 2 {
		t.Fatalf("disconnect alice across the cluster: %+v, want 2 connections on 2 nodes", out)
	}
	for i, ws := range []*servertest.WS{a0, a1} {
		if code := ws.CloseCode(); code != protocol.CloseByOperator {
			t.Errorf("alice on node %d closed with %d, want %d", i, code, protocol.CloseByOperator)
		}
	}
	if f := bob.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "still:here"}); f.Type() != "subscribed" {
		t.Errorf("bob after alice's disconnect: %v", f)
	}
}

// A channel's page: subscribers, messages, presence members and the last
// 20 messages in one call; a test message published through the admin
// route reaches the subscriber like an API publish.
func TestConsoleChannelDetailAndTestPublish(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["chat"] = config.ChannelOptions{HistorySize: 100, Presence: true}
	})
	alice := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	alice.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	for i := 0; i < 25; i++ {
		if _, err := s.API().Publish(context.Background(), "chat:room", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	var pub api.PublishResponse
	if getJSON(t, "POST", s.Base+"/api/v1/channels/chat:room/publish", `{"event":"test","data":{"text":"from the console"}}`, &pub) != http.StatusOK || pub.Offsets["chat:room"] != 26 {
		t.Fatalf("test publish: %+v", pub)
	}
	for {
		if f := alice.Next(); f.Type() == "message" && f.Str("event") == "test" {
			break
		}
	}
	var d api.ChannelDetail
	servertest.Eventually(t, "26 messages counted", func() bool {
		return getJSON(t, "GET", s.Base+"/api/v1/channels/chat:room", "", &d) == http.StatusOK && d.Messages == 26
	})
	if d.Subscribers != 1 || !d.Presence || len(d.Members) != 1 || d.Members[0].User != "alice" || len(d.History) != 20 ||
		d.History[19].Offset != 26 || d.History[19].Event != "test" || d.HistorySize != 100 {
		t.Errorf("channel detail: %+v", d)
	}
	if getJSON(t, "GET", s.Base+"/api/v1/channels/quiet", "", &d) != http.StatusOK || d.Presence || d.Subscribers != 0 || len(d.History) != 0 || d.Members == nil {
		t.Errorf("a channel without presence or history: %+v", d)
	}
	for _, c := range []struct{ path, body, want string }{
		{"/api/v1/channels/bad%20name", "", "channel"},
		{"/api/v1/channels/chat:room/publish", `{"channel":"other","event":"e","data":1}`, "in the path"},
		{"/api/v1/channels/chat:room/publish", `{"event":"e","data":`, "body"},
	} {
		method := "GET"
		if c.body != "" {
			method = "POST"
		}
		if status, eb, raw := doRaw(t, method, s.Base+c.path, servertest.AdminKey, c.body); status != 400 || !strings.Contains(eb.Error.Message, c.want) {
			t.Errorf("%s %s %s: %d %s, want 400 naming %q", method, c.path, c.body, status, raw, c.want)
		}
	}
}
