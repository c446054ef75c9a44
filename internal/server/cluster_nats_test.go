package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/broker/nats/natstest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// natsCluster starts n nodes sharing one real nats-server with JetStream.
func natsCluster(t *testing.T, n int) (*natstest.Server, []*servertest.Server) {
	t.Helper()
	ns := natstest.Start(t)
	nodes := make([]*servertest.Server, n)
	for i := range nodes {
		nodes[i] = servertest.StartNode(t, func(c *config.Config) {
			c.NATS = ns.URL()
			c.NodeName = fmt.Sprintf("node-%d", i)
			c.PresenceTTL = 2 * time.Second
			c.PublishRate = 100000
			c.PublishRatePerUser = 100000
			c.Namespaces["chat"] = config.ChannelOptions{HistorySize: 1000, Presence: true, JoinLeave: true}
			c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 1000}
		})
	}
	return ns, nodes
}

// TestNATSClusterEveryMessageOnceInOrder: three nodes over NATS, two
// subscribers on each, publishers through every node's API and from
// clients on every node, concurrently. Every subscriber gets every message
// exactly once, in offset order, with offsets 1..total although three nodes
// numbered them.
func TestNATSClusterEveryMessageOnceInOrder(t *testing.T) {
	_, nodes := natsCluster(t, 3)
	const perPublisher = 40
	var subs []*servertest.WS
	for _, n := range nodes {
		for range 2 {
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
			for k := range perPublisher {
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
			for k := range perPublisher {
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

// TestNATSClusterServerRestart: the nats-server is stopped and started
// again (same store) while a publisher keeps going through one node and a
// reconnecting client listens on another. Publishes during the outage are
// refused, never acknowledged and lost: the subscriber ends with every
// acknowledged message exactly once, in offset order, and new publishes
// flow again.
func TestNATSClusterServerRestart(t *testing.T) {
	ns, nodes := natsCluster(t, 2)
	ctx := context.Background()
	got, _ := subscribeCollecting(t, nodes[1], "feed:durable")

	var mu sync.Mutex
	var acked []int
	refused := 0
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
			_, err := nodes[0].API().Publish(ctx, "feed:durable", "e", i)
			mu.Lock()
			if err == nil {
				acked = append(acked, i)
			} else {
				refused++
			}
			mu.Unlock()
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	servertest.Eventually(t, "publishing", func() bool { return count() >= 50 })
	ns.Stop()
	servertest.Eventually(t, "node 0 not ready", func() bool { return status(nodes[0].Base+"/readyz") == 503 })
	ns.Restart()
	servertest.Eventually(t, "nodes ready again", func() bool {
		return status(nodes[0].Base+"/readyz") == 200 && status(nodes[1].Base+"/readyz") == 200
	})
	before := count()
	servertest.Eventually(t, "publishing after the restart", func() bool { return count() >= before+50 })
	close(stop)
	<-published
	mu.Lock()
	want := append([]int(nil), acked...)
	t.Logf("%d publishes acknowledged, %d refused during the outage", len(acked), refused)
	mu.Unlock()
	last := want[len(want)-1]
	servertest.Eventually(t, fmt.Sprintf("every acknowledged message (last %d)", last), func() bool {
		v := got.values()
		return len(v) > 0 && v[len(v)-1] >= last
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
}

// TestNATSClusterPresenceAndInfoFromEveryNode: joins on two nodes reach a
// watcher on a third, every node lists the same members, and every node's
// /api/v1/info lists the three nodes.
func TestNATSClusterPresenceAndInfoFromEveryNode(t *testing.T) {
	_, nodes := natsCluster(t, 3)
	watcher := servertest.Connect(t, nodes[2].WSURL, servertest.Token(t, "watcher", nil, nil))
	watcher.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	a := servertest.Connect(t, nodes[0].WSURL, servertest.Token(t, "alice", nil, nil))
	a.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	b := servertest.Connect(t, nodes[1].WSURL, servertest.Token(t, "bob", nil, nil))
	b.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	joined := map[string]bool{}
	for !joined["alice"] || !joined["bob"] {
		f := watcher.Expect("presence")
		if f.Str("action") == "join" {
			joined[f["member"].(map[string]any)["user"].(string)] = true
		}
	}
	for i, n := range nodes {
		p, err := n.API().Presence(context.Background(), "chat:room")
		if err != nil {
			t.Fatal(err)
		}
		users := map[string]bool{}
		for _, m := range p.Members {
			users[m.User] = true
		}
		if !users["alice"] || !users["bob"] || !users["watcher"] || len(p.Members) != 3 {
			t.Fatalf("presence seen from node %d: %+v", i, p.Members)
		}
	}
	for i, n := range nodes {
		servertest.Eventually(t, fmt.Sprintf("three live nodes in node %d's info", i), func() bool {
			info, err := n.API().Info(context.Background())
			return err == nil && len(info.Nodes) == 3
		})
	}
}
