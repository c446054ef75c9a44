package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// redisClusterNodes starts n nodes over a Redis Cluster.
func redisClusterNodes(t *testing.T, rc *redistest.Cluster, n int, mutate ...func(*config.Config)) []*servertest.Server {
	t.Helper()
	nodes := make([]*servertest.Server, n)
	for i := range nodes {
		nodes[i] = servertest.StartNode(t, append([]func(*config.Config){func(c *config.Config) {
			c.Redis = rc.Seeds()[i%len(rc.Seeds()) : i%len(rc.Seeds())+1] // each node knows one seed
			c.RedisCluster = true
			c.NodeName = fmt.Sprintf("node-%d", i)
			c.PublishRate = 100000
			c.PublishRatePerUser = 100000
			c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 10000}
			c.Namespaces["chat"] = config.ChannelOptions{}
		}}, mutate...)...)
	}
	return nodes
}

// channelsOnEveryMaster picks one feed: channel served by each master.
func channelsOnEveryMaster(t *testing.T, rc *redistest.Cluster) []string {
	t.Helper()
	masters, err := rc.Topology()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range masters {
		for i := 0; ; i++ {
			ch := fmt.Sprintf("feed:room-%d", i)
			if m.Owns(rc.Slot("{" + ch + "}")) {
				out = append(out, ch)
				break
			}
		}
	}
	return out
}

// TestRedisClusterEveryMessageOnceInOrder: three nodes over a Redis
// Cluster of three masters with a replica each; one channel on each
// master; two subscribers of every channel on each node; publishers
// through every node's API and from clients on every node, concurrently.
// Every subscriber gets every message of every channel exactly once, in
// offset order, offsets 1..total. Then a function deployed through one
// node is applied by another: the functions store, its change notices and
// the node registry work in a Cluster.
func TestRedisClusterEveryMessageOnceInOrder(t *testing.T) {
	rc := redistest.StartCluster(t, 3, 1)
	nodes := redisClusterNodes(t, rc, 3)
	chans := channelsOnEveryMaster(t, rc)
	const perPublisher = 20
	var subs []*servertest.WS
	for _, n := range nodes {
		for range 2 {
			ws := servertest.Connect(t, n.WSURL, servertest.Token(t, "reader", nil, nil))
			for k, ch := range chans {
				ws.Request(map[string]any{"type": "subscribe", "id": k + 1, "channel": ch})
			}
			subs = append(subs, ws)
		}
	}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for k := range perPublisher {
				for _, ch := range chans {
					if _, err := n.API().Publish(context.Background(), ch, "api", map[string]int{"node": i, "k": k}); err != nil {
						t.Error(err)
						return
					}
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
			for k := range perPublisher {
				for _, ch := range chans {
					if _, err := c.Publish(context.Background(), ch, "client", map[string]int{"node": i, "k": k}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	total := len(nodes) * 2 * perPublisher
	for si, ws := range subs {
		next := map[string]int{}
		seen := map[string]bool{}
		for range total * len(chans) {
			m := ws.Expect("message")
			ch := m.Str("channel")
			next[ch]++
			if int(m.Num("offset")) != next[ch] {
				t.Fatalf("subscriber %d: %s: got offset %v, want %d", si, ch, m["offset"], next[ch])
			}
			key := fmt.Sprint(ch, m.Str("event"), m["data"])
			if seen[key] {
				t.Fatalf("subscriber %d: duplicate %s", si, key)
			}
			seen[key] = true
		}
		for _, ch := range chans {
			if next[ch] != total {
				t.Fatalf("subscriber %d: %s: %d messages, want %d", si, ch, next[ch], total)
			}
		}
	}

	adminPut(t, nodes[0], "/api/v1/functions/stars", `{"runtime":"js","source":"function handle(m){ m.data = \"***\"; return m }"}`)
	adminPut(t, nodes[0], "/api/v1/associations", `{"pattern":"chat:*","functions":["stars"]}`)
	ws := servertest.Connect(t, nodes[2].WSURL, servertest.Token(t, "reader", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:x"})
	servertest.Eventually(t, "node 2 applies the function deployed through node 0", func() bool {
		if _, err := nodes[2].API().Publish(context.Background(), "chat:x", "e", "darn"); err != nil {
			t.Fatal(err)
		}
		return ws.Expect("message")["data"] == "***"
	})
	info, err := nodes[1].API().Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Nodes) != len(nodes) {
		t.Fatalf("node 1 lists %d nodes, want %d: %+v", len(info.Nodes), len(nodes), info.Nodes)
	}
}

// failoverRun publishes 1, 2, 3, ... through pub's API while kill runs,
// and checks what a subscriber on sub received. Every publish is
// acknowledged or refused with an error. The failover starts a new epoch
// for the channel (the promoted replica may lack the last writes), so the
// subscriber, whose WebSocket stays open, gets recovered:false for it, as
// after a Redis restart without persistence, and reloads from history as
// an app does: then it has every acknowledged message (WAIT: the replica
// had each before it was acknowledged), none twice. Messages published
// before the subscriber's node subscribed at the new master reach it only
// through that history (recovered:false places it at the channel's
// position), so live delivery after the failover is checked with messages
// published once the subscriber was told recovered:false.
func failoverRun(t *testing.T, pub, sub *servertest.Server, channel string, kill func()) {
	t.Helper()
	ctx := context.Background()
	got, recovered := subscribeCollecting(t, sub, channel)
	var mu sync.Mutex
	var acked []int
	refused := 0
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := pub.API().Publish(ctx, channel, "e", i)
			mu.Lock()
			if err == nil {
				acked = append(acked, i)
			} else {
				refused++
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // pace the load: the machine is shared
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	servertest.Eventually(t, "publishing", func() bool { return count() >= 50 })
	kill()
	before := count()
	servertest.EventuallyWithin(t, 60*time.Second, "publishing after the failover", func() bool { return count() >= before+50 })
	close(stop)
	<-done
	select {
	case ok := <-recovered:
		if ok {
			t.Fatalf("the subscriber was told recovered:true across a takeover")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the subscriber was not told recovered:false after the takeover")
	}
	// Live delivery through the promoted master.
	mu.Lock()
	next := len(acked) + refused + 1 // every number tried so far is below
	mu.Unlock()
	for range 5 {
		servertest.Eventually(t, "a publish acknowledged after the failover", func() bool {
			// A new number each time: a refused publish may still be
			// stored (outcome_unknown).
			i := next
			next++
			_, err := pub.API().Publish(ctx, channel, "e", i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused++
				return false
			}
			acked = append(acked, i)
			return true
		})
	}
	mu.Lock()
	want := append([]int(nil), acked...)
	t.Logf("%d publishes acknowledged, %d refused with an error", len(acked), refused)
	mu.Unlock()
	last := want[len(want)-1]
	servertest.Eventually(t, fmt.Sprintf("the last acknowledged message (%d) delivered", last), func() bool {
		v := got.values()
		return len(v) > 0 && v[len(v)-1] >= last
	})
	if d := got.disconnects.Load(); d != 0 {
		t.Fatalf("the subscriber's WebSocket closed %d times", d)
	}
	h, err := pub.API().History(ctx, channel, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]bool{}
	prev := 0
	for _, n := range got.values() {
		if have[n] {
			t.Fatalf("message %d delivered twice", n)
		}
		if n < prev {
			t.Fatalf("message %d delivered after %d", n, prev)
		}
		have[n], prev = true, n
	}
	live := 0
	for _, n := range want {
		if have[n] {
			live++
		}
	}
	for _, m := range h.Messages {
		var n int
		if err := json.Unmarshal(m.Data, &n); err != nil {
			t.Fatal(err)
		}
		have[n] = true
	}
	for _, n := range want {
		if !have[n] {
			t.Fatalf("acknowledged message %d neither delivered nor in history (%d acknowledged, %d delivered live)", n, len(want), live)
		}
	}
	t.Logf("%d of the %d acknowledged delivered live, the rest read from history", live, len(want))
}

// TestRedisSentinelMasterKilled: the same over one master, one replica and
// three Sentinels.
func TestRedisSentinelMasterKilled(t *testing.T) {
	rs := redistest.StartSentinels(t)
	nodes := make([]*servertest.Server, 2)
	for i := range nodes {
		nodes[i] = servertest.StartNode(t, func(c *config.Config) {
			c.RedisSentinelMaster = rs.Name
			c.RedisSentinelAddrs = rs.Addrs()
			c.RedisWaitReplicas = 1
			c.NodeName = fmt.Sprintf("node-%d", i)
			c.PublishRate = 100000
			c.PublishRatePerUser = 100000
			c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 10000}
		})
	}
	failoverRun(t, nodes[0], nodes[1], "feed:failover", func() {
		rs.Master.Stop()
		rs.AwaitFailover()
		rs.Master.Restart()
		rs.AwaitReplicaOfNewMaster()
	})
}
