package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// cluster starts n nodes sharing one real redis-server.
func cluster(t *testing.T, n int, mutate ...func(*config.Config)) (*redistest.Server, []*servertest.Server) {
	return clusterB(t, n, mutate...)
}

func clusterB(t testing.TB, n int, mutate ...func(*config.Config)) (*redistest.Server, []*servertest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	return rs, clusterOn(t, rs, n, mutate...)
}

// clusterOn starts n nodes on the given redis-server.
func clusterOn(t testing.TB, rs *redistest.Server, n int, mutate ...func(*config.Config)) []*servertest.Server {
	t.Helper()
	nodes := make([]*servertest.Server, n)
	for i := range nodes {
		nodes[i] = servertest.StartNode(t, append([]func(*config.Config){func(c *config.Config) {
			c.Redis = []string{rs.URL()}
			c.NodeName = fmt.Sprintf("node-%d", i)
			c.PresenceTTL = 2 * time.Second
			c.NodeTTL = 2 * time.Second
			c.PublishRate = 100000
			c.PublishRatePerUser = 100000
			c.Namespaces["chat"] = config.ChannelOptions{HistorySize: 1000, Presence: true, JoinLeave: true}
			c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 1000}
		}}, mutate...)...)
	}
	return nodes
}

// TestClusterEveryMessageOnceInOrder: subscribers on every node, publishers
// through every node's API and from clients on every node, concurrently.
// Every subscriber gets every message exactly once, in offset order, and the
// offsets are contiguous although three nodes numbered them.
func TestClusterEveryMessageOnceInOrder(t *testing.T) {
	_, nodes := cluster(t, 3)
	const perPublisher = 40
	var subs []*servertest.WS
	for _, n := range nodes {
		for j := 0; j < 2; j++ {
			ws := servertest.Connect(t, n.WSURL, servertest.Token(t, "reader", nil, nil))
			ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:all"})
			subs = append(subs, ws)
		}
	}
	var wg sync.WaitGroup
	total := 0
	for i, n := range nodes {
		wg.Add(2)
		total += 2 * perPublisher
		go func() {
			defer wg.Done()
			for k := 0; k < perPublisher; k++ {
				if _, err := n.API().Publish(context.Background(), "feed:all", "api", map[string]int{"node": i, "k": k}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			c, err := client.Dial(context.Background(), client.Config{URL: n.WSURL, Token: servertest.Token(t, fmt.Sprint("writer", i), nil, []string{"feed:*"})})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for k := 0; k < perPublisher; k++ {
				if _, err := c.Publish(context.Background(), "feed:all", "client", map[string]int{"node": i, "k": k}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for si, ws := range subs {
		seen := map[string]bool{}
		for off := 1; off <= total; off++ {
			m := ws.Expect("message")
			if int(m.Num("offset")) != off {
				t.Fatalf("subscriber %d: got offset %v, want %d", si, m["offset"], off)
			}
			key := fmt.Sprint(m.Str("event"), m["data"])
			if seen[key] {
				t.Fatalf("subscriber %d: duplicate %s", si, key)
			}
			seen[key] = true
		}
	}
}

func TestClusterPresenceAndInfoFromEveryNode(t *testing.T) {
	_, nodes := cluster(t, 3)
	watcher := servertest.Connect(t, nodes[2].WSURL, servertest.Token(t, "watcher", nil, nil))
	watcher.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	a := servertest.Connect(t, nodes[0].WSURL, servertest.Token(t, "alice", nil, nil))
	a.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	b := servertest.Connect(t, nodes[1].WSURL, servertest.Token(t, "bob", nil, nil))
	b.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	joined := map[string]bool{}
	for len(joined) < 2 {
		f := watcher.Expect("presence")
		if f.Str("action") == "join" {
			joined[f["member"].(map[string]any)["user"].(string)] = true
		}
	}
	delete(joined, "watcher")
	for _, n := range nodes {
		p, err := n.API().Presence(context.Background(), "chat:room")
		if err != nil {
			t.Fatal(err)
		}
		users := map[string]bool{}
		for _, m := range p.Members {
			users[m.User] = true
		}
		if !users["alice"] || !users["bob"] || !users["watcher"] || len(p.Members) != 3 {
			t.Fatalf("presence seen from a node: %+v", p.Members)
		}
	}
	servertest.Eventually(t, "three live nodes in info", func() bool {
		info, err := nodes[1].API().Info(context.Background())
		return err == nil && len(info.Nodes) == 3
	})
}

// TestClusterRecoverOnAnotherNode: a client cut off from node A reconnects
// to node B with its last position and gets exactly what it missed.
func TestClusterRecoverOnAnotherNode(t *testing.T) {
	_, nodes := cluster(t, 2)
	a := servertest.Connect(t, nodes[0].WSURL, servertest.Token(t, "mobile", nil, nil))
	a.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:train"})
	for i := 1; i <= 5; i++ {
		if _, err := nodes[0].API().Publish(context.Background(), "feed:train", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	var last servertest.Frame
	for i := 0; i < 5; i++ {
		last = a.Expect("message")
	}
	_ = a.Conn.NetConn().Close() // the train enters a tunnel
	for i := 6; i <= 9; i++ {
		if _, err := nodes[1].API().Publish(context.Background(), "feed:train", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	b := servertest.Connect(t, nodes[1].WSURL, servertest.Token(t, "mobile", nil, nil))
	sub := b.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:train",
		"since": map[string]any{"epoch": last.Str("epoch"), "offset": last.Num("offset")}})
	if sub["recovered"] != true || sub.Num("offset") != 9 {
		t.Fatalf("subscribe on node B: %v", sub)
	}
	for off := 6; off <= 9; off++ {
		if m := b.Expect("message"); int(m.Num("offset")) != off {
			t.Fatalf("recovered offset %v, want %d", m["offset"], off)
		}
	}
	if _, err := nodes[0].API().Publish(context.Background(), "feed:train", "e", 10); err != nil {
		t.Fatal(err)
	}
	if m := b.Expect("message"); m.Num("offset") != 10 {
		t.Fatalf("live after recovery: %v", m)
	}
}

// TestClusterFunctionDeployedOnOneNodeRunsOnAnother.
func TestClusterFunctionDeployedOnOneNodeRunsOnAnother(t *testing.T) {
	_, nodes := cluster(t, 3)
	ctx := context.Background()
	admin := nodes[0].Admin()
	if err := admin.Do(ctx, http.MethodPut, "/api/v1/functions/shout", map[string]any{
		"runtime": "js", "source": `function handle(m){ m.data = String(m.data).toUpperCase(); return m }`,
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, http.MethodPut, "/api/v1/associations", map[string]any{"pattern": "loud:*", "functions": []string{"shout"}}, nil); err != nil {
		t.Fatal(err)
	}
	ws := servertest.Connect(t, nodes[2].WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "loud:x"})
	// The change is in force on node C as soon as its reload ran; publish
	// until the first transformed message shows it (each publish is one
	// offset, so the count of plain ones is bounded by the wait).
	servertest.Eventually(t, "function applied on node C", func() bool {
		if _, err := nodes[2].API().Publish(ctx, "loud:x", "e", "hello"); err != nil {
			t.Fatal(err)
		}
		return ws.Expect("message")["data"] == "HELLO"
	})
}

// TestClusterRedisRestart: Redis goes away and comes back empty (no
// persistence). Publishes fail with 503 while it is away (never a silent
// loss), nodes report not ready and come back by themselves, and the
// subscriber learns over its open connection that the stream was lost
// (an unsolicited subscribed with recovered:false): it never reconnects.
func TestClusterRedisRestart(t *testing.T) {
	rs, nodes := cluster(t, 2)
	ctx := context.Background()
	got, recovered := subscribeCollecting(t, nodes[1], "feed:stream")
	for i := 1; i <= 20; i++ {
		if _, err := nodes[0].API().Publish(ctx, "feed:stream", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	servertest.Eventually(t, "messages before the outage", func() bool { return len(got.values()) == 20 })
	rs.Stop()
	servertest.Eventually(t, "nodes not ready", func() bool { return status(nodes[0].Base+"/readyz") == 503 })
	if _, err := nodes[0].API().Publish(ctx, "feed:stream", "e", 999); !isStatus(err, 503) {
		t.Fatalf("publish while Redis is down: %v, want 503", err)
	}
	rs.Restart()
	servertest.Eventually(t, "nodes ready again", func() bool {
		return status(nodes[0].Base+"/readyz") == 200 && status(nodes[1].Base+"/readyz") == 200
	})
	select {
	case ok := <-recovered:
		if ok {
			t.Fatal("recovered across a Redis restart that lost the stream")
		}
	case <-time.After(servertest.Timeout):
		t.Fatal("subscriber was not told recovered:false after the outage")
	}
	servertest.Eventually(t, "publishes accepted again", func() bool {
		_, err := nodes[0].API().Publish(ctx, "feed:stream", "e", 1000)
		return err == nil
	})
	servertest.Eventually(t, "live messages after the restart", func() bool {
		v := got.values()
		return len(v) > 0 && v[len(v)-1] == 1000
	})
	for _, n := range got.values() {
		if n == 999 {
			t.Fatal("a refused publish was delivered")
		}
	}
	if d := got.disconnects.Load(); d != 0 {
		t.Fatalf("subscriber lost its connection %d times, want none", d)
	}
}

// TestClusterRedisRestartDurable: with a Redis that keeps what it
// acknowledged (append-only file), killed and restarted while a publisher
// keeps going, no 200-acknowledged message is lost for the subscriber: its
// node resynchronises it from history over its open connection (no
// reconnect, no resubscribe), and it ends with every acknowledged message
// exactly once, in offset order.
func TestClusterRedisRestartDurable(t *testing.T) {
	rs := redistest.StartDurable(t)
	nodes := clusterOn(t, rs, 2)
	ctx := context.Background()
	got, recovered := subscribeCollecting(t, nodes[1], "feed:durable")

	var mu sync.Mutex
	var acked []int
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := nodes[0].API().Publish(ctx, "feed:durable", "e", i); err == nil {
				mu.Lock()
				acked = append(acked, i)
				mu.Unlock()
			}
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	servertest.Eventually(t, "publishing", func() bool { return count() >= 50 })
	rs.Stop()
	rs.Restart()
	servertest.Eventually(t, "nodes ready again", func() bool {
		return status(nodes[0].Base+"/readyz") == 200 && status(nodes[1].Base+"/readyz") == 200
	})
	before := count()
	servertest.Eventually(t, "publishing after the restart", func() bool { return count() >= before+50 })
	close(stop)
	<-published
	mu.Lock()
	want := append([]int(nil), acked...)
	mu.Unlock()
	last := want[len(want)-1]
	var logged time.Time
	servertest.Eventually(t, fmt.Sprintf("every acknowledged message (last %d)", last), func() bool {
		v := got.values()
		if len(v) > 0 && v[len(v)-1] >= last {
			return true
		}
		if time.Since(logged) > time.Second { // what a failure will want to know
			logged = time.Now()
			t.Logf("so far %d messages, ending %v", len(v), v[max(0, len(v)-3):])
		}
		return false
	})
	seen := map[int]bool{}
	for _, n := range got.values() {
		if seen[n] {
			t.Fatalf("message %d delivered twice", n)
		}
		seen[n] = true
	}
	for _, n := range want {
		if !seen[n] {
			t.Fatalf("acknowledged message %d lost (%d acknowledged, %d delivered)", n, len(want), len(seen))
		}
	}
	if offs := got.offsets(); !contiguous(offs) {
		t.Fatalf("offsets not contiguous: %v", offs)
	}
	if d := got.disconnects.Load(); d != 0 {
		t.Fatalf("subscriber lost its connection %d times, want none", d)
	}
	select {
	case ok := <-recovered:
		t.Fatalf("subscriber resubscribed or was told recovered:%v, although Redis kept the stream", ok)
	default:
	}
}

// collected is what a Go client subscriber received: the integer payloads
// and their offsets.
type collected struct {
	mu          sync.Mutex
	nums        []int
	offs        []uint64
	disconnects atomic.Int64 // times the client lost its connection
}

func (c *collected) values() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.nums...)
}

func (c *collected) offsets() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.offs...)
}

func contiguous(offs []uint64) bool {
	for i := 1; i < len(offs); i++ {
		if offs[i] != offs[i-1]+1 {
			return false
		}
	}
	return true
}

// subscribeCollecting subscribes a reconnecting Go client on node to
// channel; recovered reports each resubscribe's outcome.
func subscribeCollecting(t *testing.T, node *servertest.Server, channel string) (*collected, chan bool) {
	t.Helper()
	got := &collected{}
	recovered := make(chan bool, 10)
	c, err := client.Dial(context.Background(), client.Config{
		URL: node.WSURL, Token: servertest.Token(t, "sub", nil, nil),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnState: func(s client.State, _ error) {
			if s == client.StateDisconnected {
				got.disconnects.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, err = c.Subscribe(context.Background(), channel,
		client.WithHandler(func(m *client.Message) {
			var n int
			fmt.Sscan(string(m.Data), &n)
			got.mu.Lock()
			got.nums = append(got.nums, n)
			got.offs = append(got.offs, m.Offset)
			got.mu.Unlock()
		}),
		client.WithRecoverHandler(func(ok bool) { recovered <- ok }))
	if err != nil {
		t.Fatal(err)
	}
	return got, recovered
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A subscribe without since starts at the channel's position: in cluster
// mode too, the kept history is not replayed to it.
func TestClusterSubscribeWithoutSinceReplaysNothing(t *testing.T) {
	_, nodes := cluster(t, 1)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		if _, err := nodes[0].API().Publish(ctx, "feed:old", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	ws := servertest.Connect(t, nodes[0].WSURL, servertest.Token(t, "u", nil, nil))
	if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:old"}); f.Type() != "subscribed" || f.Num("offset") != 3 {
		t.Fatalf("subscribe: %v", f)
	}
	if _, err := nodes[0].API().Publish(ctx, "feed:old", "e", 4); err != nil {
		t.Fatal(err)
	}
	// Frames passed over by Request stay queued: a replayed message would
	// come first here.
	if m := ws.Expect("message"); m.Num("offset") != 4 {
		t.Fatalf("first message %v, want offset 4 (the kept history was replayed)", m)
	}
}
