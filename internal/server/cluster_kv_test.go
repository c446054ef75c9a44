package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestClusterKVCounterIsExact: the counter example, deployed on a three
// node cluster with eight VMs per function on each node, counts 10,000
// messages published concurrently through all three nodes exactly: its
// ctx.kv.incr is one atomic Redis operation, so every multiple of 100 is
// reported exactly once and the last report is 10,000. (With per-VM
// globals, as the counter was written before, no total is exact.)
func TestClusterKVCounterIsExact(t *testing.T) {
	const total, batch, perNode = 10_000, 50, 10 // perNode concurrent publishers > 8 VMs
	rs := redistest.Start(t)
	nodes := clusterOn(t, rs, 3, func(c *config.Config) {
		c.FunctionsPool = 8
		c.Namespaces["stats"] = config.ChannelOptions{}
	})
	src, err := os.ReadFile("../../examples/functions/counter.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"runtime": "js", "source": string(src), "timeout_ms": 2000})
	adminPut(t, nodes[0], "/api/v1/functions/counter", string(body))
	adminPut(t, nodes[0], "/api/v1/associations", `{"pattern":"feed:*","functions":["counter"]}`)

	ws := servertest.Connect(t, nodes[2].WSURL, servertest.Token(t, "reader", nil, nil))
	if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "stats:feed:x"}); f.Type() != "subscribed" {
		t.Fatalf("subscribe: %v", f)
	}
	// Every node runs the function before publishing.
	for i, n := range nodes {
		servertest.Eventually(t, fmt.Sprintf("node %d has the counter", i), func() bool {
			var out struct {
				Associations []json.RawMessage `json:"associations"`
			}
			c := api.NewClient(n.APIBase(), n.Config.AdminKey)
			return c.Do(context.Background(), "GET", "/api/v1/associations", nil, &out) == nil && len(out.Associations) == 1
		})
	}

	work := make(chan struct{}, total/batch)
	for range total / batch {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	for _, n := range nodes {
		for range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msgs := make([]api.BatchMessage, batch)
				for i := range msgs {
					msgs[i], _ = api.NewBatchMessage("feed:x", "m", i)
				}
				for range work {
					res, err := n.API().Batch(context.Background(), msgs)
					if err != nil {
						t.Error(err)
						return
					}
					for _, r := range res {
						if r.Error != nil {
							t.Errorf("publish refused: %+v", r.Error)
							return
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	seen := map[float64]int{}
	deadline := time.After(servertest.Timeout)
	for len(seen) < total/100 {
		select {
		case f := <-ws.Frames:
			if f.Type() != "message" {
				continue
			}
			d, _ := f["data"].(map[string]any)
			c, _ := d["count"].(float64)
			seen[c]++
			if seen[c] > 1 || c <= 0 || c > total || int(c)%100 != 0 {
				t.Fatalf("report %v (seen %d times): counts are not exact", d, seen[c])
			}
		case <-deadline:
			t.Fatalf("got %d of the %d reports", len(seen), total/100)
		}
	}
	if seen[total] != 1 {
		t.Fatalf("no report of %d", total)
	}
}
