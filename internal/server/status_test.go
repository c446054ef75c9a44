package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

const statusChannel = "$admin:status"

// adminToken mints a token with the admin claim.
func adminToken(t testing.TB, sub string) string {
	t.Helper()
	tok, err := auth.Mint([]byte(servertest.Secret), auth.TokenSpec{Subject: sub, Admin: true, TTL: time.Hour, Publish: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// watchStatus connects an admin and subscribes it to the status channel.
func watchStatus(t testing.TB, s *servertest.Server) *servertest.WS {
	t.Helper()
	ws := servertest.Connect(t, s.WSURL, adminToken(t, "ops"))
	if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": statusChannel}); f.Type() != "subscribed" {
		t.Fatalf("subscribe to %s: %v", statusChannel, f)
	}
	return ws
}

// nextStatus returns the data of the next status event of type kind for
// which match holds, skipping others; it fails after servertest.Timeout.
func nextStatus(t testing.TB, ws *servertest.WS, kind string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(servertest.Timeout)
	for {
		var f servertest.Frame
		select {
		case f = <-ws.Frames:
		case <-deadline:
			t.Fatalf("no %s status event within %s", kind, servertest.Timeout)
		}
		if f.Type() != "message" || f.Str("channel") != statusChannel || f.Str("event") != kind {
			continue
		}
		data, _ := f["data"].(map[string]any)
		if data["type"] != kind || data["time"] == "" || data["node"] == "" {
			t.Fatalf("status event %v lacks its type, time or node", f)
		}
		if match == nil || match(data) {
			return data
		}
	}
}

// statusWithin reports whether a status event of type kind for which
// match holds arrives within d.
func statusWithin(ws *servertest.WS, d time.Duration, kind string, match func(map[string]any) bool) bool {
	deadline := time.After(d)
	for {
		select {
		case f := <-ws.Frames:
			data, _ := f["data"].(map[string]any)
			if f.Str("channel") == statusChannel && f.Str("event") == kind && match(data) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func field(k, v string) func(map[string]any) bool {
	return func(d map[string]any) bool { return d[k] == v }
}

// A status subscriber sees connections open and close, subscriptions come
// and go, functions fail and time out, and limits refuse, each with who,
// where and why.
func TestStatusChannelEvents(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) {
		c.MaxSubscriptions = 2
		c.MaxConnectionsPerUser = 1
	})
	ctx := context.Background()
	ops := watchStatus(t, s)

	bob := servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", nil, nil))
	opened := nextStatus(t, ops, "connection_opened", field("user", "bob"))
	if opened["node"] != s.NodeID() || opened["conn"] == "" {
		t.Fatalf("connection_opened %v: want node %s and a conn", opened, s.NodeID())
	}
	bob.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:a"})
	nextStatus(t, ops, "subscribed", field("channel", "chat:a"))
	bob.Request(map[string]any{"type": "unsubscribe", "id": 2, "channel": "chat:a"})
	nextStatus(t, ops, "unsubscribed", field("channel", "chat:a"))

	// max_subscriptions 2: the third is refused.
	bob.Request(map[string]any{"type": "subscribe", "id": 3, "channel": "chat:b"})
	bob.Request(map[string]any{"type": "subscribe", "id": 4, "channel": "chat:c"})
	if f := bob.Request(map[string]any{"type": "subscribe", "id": 5, "channel": "chat:d"}); f.Str("code") != "rate_limited" {
		t.Fatalf("third subscription: %v", f)
	}
	lim := nextStatus(t, ops, "limit_refused", field("limit", "rate_limited"))
	if !strings.Contains(lim["message"].(string), "subscription limit") || lim["conn"] != opened["conn"] {
		t.Fatalf("limit_refused %v: want the subscription limit named, on bob's connection", lim)
	}
	// max_connections_per_user 1: a second connection of bob's is refused.
	second := servertest.Dial(t, s.WSURL)
	second.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "bob", nil, nil)})
	second.ExpectError("limit_exceeded")
	nextStatus(t, ops, "limit_refused", func(d map[string]any) bool {
		return d["limit"] == "max_connections_per_user" && d["user"] == "bob"
	})

	// A function that throws and one that never ends.
	for name, src := range map[string]string{
		"thrower": `function handle(m){ return 42 }`, // not a message: a failure
		"looper":  `function handle(m){ while (true) {} }`,
	} {
		if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/functions/"+name, map[string]any{"runtime": "js", "source": src, "timeout_ms": 50}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for pattern, fn := range map[string]string{"boom:*": "thrower", "spin:*": "looper"} {
		if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/associations", map[string]any{"pattern": pattern, "functions": []string{fn}, "on_error": "pass"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.API().Publish(ctx, "boom:x", "e", "luck"); err != nil {
		t.Fatal(err)
	}
	fe := nextStatus(t, ops, "function_error", field("function", "thrower"))
	if fe["channel"] != "boom:x" || fe["error"] == "" {
		t.Fatalf("function_error %v: want channel boom:x and the error", fe)
	}
	if _, err := s.API().Publish(ctx, "spin:x", "e", 1); err != nil {
		t.Fatal(err)
	}
	nextStatus(t, ops, "function_timeout", func(d map[string]any) bool { return d["function"] == "looper" && d["channel"] == "spin:x" })

	_ = bob.Conn.WriteClose(1000, nil)
	closed := nextStatus(t, ops, "connection_closed", field("user", "bob"))
	if closed["conn"] != opened["conn"] || closed["reason"] == "" {
		t.Fatalf("connection_closed %v: want bob's conn and a reason", closed)
	}
}

// Only a token with the admin claim may subscribe to the status channel;
// nobody may publish to it, through the socket or the API.
func TestStatusChannelIsForAdminsOnly(t *testing.T) {
	s := servertest.Start(t)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "mallory", []string{"*"}, []string{"*"}))
	f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": statusChannel})
	if f.Str("code") != "forbidden" || !strings.Contains(f.Str("message"), "admin claim") {
		t.Fatalf("non-admin subscribe to %s: %v, want forbidden naming the admin claim", statusChannel, f)
	}
	if f := ws.Request(map[string]any{"type": "unsubscribe", "id": 2, "channel": statusChannel}); f.Str("code") != "not_found" {
		t.Fatalf("unsubscribe without a subscription: %v", f)
	}
	admin := servertest.Connect(t, s.WSURL, adminToken(t, "ops"))
	if f := admin.Request(map[string]any{"type": "publish", "id": 1, "channel": statusChannel, "event": "e", "data": 1}); f.Str("code") != "forbidden" || !strings.Contains(f.Str("message"), "reserved") {
		t.Fatalf("client publish to %s: %v, want forbidden (reserved)", statusChannel, f)
	}
	_, err := s.API().Publish(context.Background(), statusChannel, "e", 1)
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "forbidden" || !strings.Contains(apiErr.Message, "reserved") {
		t.Fatalf("API publish to %s: %v, want forbidden (reserved)", statusChannel, err)
	}
	// '$' stays refused in every other channel name.
	if f := admin.Request(map[string]any{"type": "subscribe", "id": 2, "channel": "$admin:other"}); f.Str("code") != "bad_request" {
		t.Fatalf("subscribe to $admin:other: %v", f)
	}
	// The admin's own subscription works, and twice is an error.
	if f := admin.Request(map[string]any{"type": "subscribe", "id": 3, "channel": statusChannel}); f.Type() != "subscribed" || f.Str("epoch") == "" {
		t.Fatalf("admin subscribe: %v", f)
	}
	if f := admin.Request(map[string]any{"type": "subscribe", "id": 4, "channel": statusChannel}); f.Str("code") != "bad_request" {
		t.Fatalf("second admin subscribe: %v", f)
	}
	if f := admin.Request(map[string]any{"type": "unsubscribe", "id": 5, "channel": statusChannel}); f.Type() != "unsubscribed" {
		t.Fatalf("admin unsubscribe: %v", f)
	}
}

// Under a storm of 500 connections the feed sends at most
// status_sample_rate connection_opened events a second, and counts every
// one it left out: sent + omitted is exactly the number of connections.
func TestStatusChannelSamplesAConnectionStorm(t *testing.T) {
	const storm, rate = 500, 20
	s := servertest.Start(t, func(c *config.Config) { c.StatusSampleRate = rate })
	ops := watchStatus(t, s)
	tok := servertest.Token(t, "storm", nil, nil)
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan struct{})
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				ws := servertest.Connect(t, s.WSURL, tok)
				_ = ws.Conn.NetConn().Close()
			}
		}()
	}
	for i := 0; i < storm; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)

	var sent, omitted int
	deadline := time.After(servertest.Timeout)
	for sent+omitted < storm {
		select {
		case f := <-ops.Frames:
			if f.Type() != "message" {
				continue
			}
			data, _ := f["data"].(map[string]any)
			switch f.Str("event") {
			case "connection_opened":
				sent++
			case "events_omitted":
				counts, _ := data["omitted"].(map[string]any)
				n, _ := counts["connection_opened"].(float64)
				omitted += int(n)
			}
		case <-deadline:
			t.Fatalf("after the storm: %d connection_opened sent + %d omitted, want %d", sent, omitted, storm)
		}
	}
	if sent+omitted != storm {
		t.Fatalf("%d sent + %d omitted = %d, want exactly %d", sent, omitted, sent+omitted, storm)
	}
	// A token bucket of rate per second with a burst of rate.
	if most := rate + int(float64(rate)*(elapsed.Seconds()+1)); sent > most || omitted == 0 {
		t.Fatalf("%d connection_opened sent in %s (at most %d), %d omitted", sent, elapsed, most, omitted)
	}
}

// In a cluster over a real Redis, a status subscriber on one node sees the
// events of another node's connections, and nodes joining and leaving.
func TestStatusChannelAcrossTheCluster(t *testing.T) {
	rs := redistest.Start(t)
	nodes := clusterOn(t, rs, 2)
	a, b := nodes[0], nodes[1]
	ops := watchStatus(t, a)

	// B learns that someone listens within a relay round; until then its
	// events are not sent, so connect until one comes through.
	seen := false
	for try := 0; !seen && try < 50; try++ {
		ws := servertest.Connect(t, b.WSURL, servertest.Token(t, "remote", nil, nil))
		seen = statusWithin(ops, 300*time.Millisecond, "connection_opened", func(d map[string]any) bool {
			return d["user"] == "remote" && d["node"] == b.NodeID()
		})
		_ = ws.Conn.NetConn().Close()
	}
	if !seen {
		t.Fatalf("no connection_opened from node B reached the subscriber on node A")
	}

	c := servertest.StartNode(t, func(cfg *config.Config) {
		cfg.Redis = []string{rs.URL()}
		cfg.NodeName = "node-c"
		cfg.NodeTTL = 2 * time.Second
	})
	nextStatus(t, ops, "node_joined", field("node", c.NodeID()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	nextStatus(t, ops, "node_left", field("node", c.NodeID()))

	// A node cut off from Redis says nothing: the others notice when its
	// announcements expire (node_ttl).
	proxy := startCutProxy(t, rs.Addr())
	d := servertest.StartNode(t, func(cfg *config.Config) {
		cfg.Redis = []string{proxy.URL()}
		cfg.NodeName = "node-d"
		cfg.NodeTTL = 2 * time.Second
	})
	nextStatus(t, ops, "node_joined", field("node", d.NodeID()))
	proxy.setCut(true)
	nextStatus(t, ops, "node_left", field("node", d.NodeID()))
}

// A status subscriber that stops reading misses events, counted in
// eddy_status_events_dropped_total{reason="slow_subscriber"}, and is not
// disconnected: when it reads again, events flow.
func TestStatusChannelSlowSubscriberMissesEventsAndStays(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.StatusSampleRate = 10000
		c.MaxMessageBytes = 4096
		c.MaxQueueBytes = 16 << 10
	})
	slow, resume := servertest.DialPaused(t, s.WSURL)
	slow.Send(map[string]any{"type": "auth", "token": adminToken(t, "ops")})
	slow.Send(map[string]any{"type": "subscribe", "id": 1, "channel": statusChannel})

	busy := servertest.Connect(t, s.WSURL, servertest.Token(t, "busy", nil, nil))
	dropped := func() float64 { return metricFloat(t, s, `eddy_status_events_dropped_total{reason="slow_subscriber"}`) }
	servertest.EventuallyWithin(t, 60*time.Second, "status events dropped for the slow subscriber", func() bool {
		// Each round: 100 status events of about 200 bytes each, more
		// than the slow subscriber's half queue. Not more: the busy
		// client's own 100 replies (about 4.5 KB) must fit its 16 KB
		// queue even when the server answers faster than the writer
		// drains, or busy is closed as a slow consumer itself (4009).
		for i := 0; i < 50; i++ {
			busy.Send(map[string]any{"type": "subscribe", "id": 2*i + 1, "channel": "chat:busy"})
			busy.Send(map[string]any{"type": "unsubscribe", "id": 2*i + 2, "channel": "chat:busy"})
		}
		busy.Request(map[string]any{"type": "ping", "id": 100000})
		return dropped() > 0
	})
	resume()
	if f := slow.Expect("ready"); f.Str("user") != "ops" {
		t.Fatalf("ready: %v", f)
	}
	if f := slow.Expect("subscribed"); f.Str("channel") != statusChannel {
		t.Fatalf("subscribed: %v", f)
	}
	// Events flow again once its queue has drained.
	seen := false
	for i := 0; !seen && i < 50; i++ {
		ch := fmt.Sprintf("chat:after-%d", i)
		busy.Request(map[string]any{"type": "subscribe", "id": 300000 + i, "channel": ch})
		seen = statusWithin(slow, 300*time.Millisecond, "subscribed", func(d map[string]any) bool { return d["channel"] == ch })
	}
	if !seen {
		t.Fatal("no status event reached the subscriber after it read again")
	}
	select {
	case <-slow.Closed():
		t.Fatal("the slow status subscriber was disconnected")
	default:
	}
}
