package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// startHAProxy runs Debian's haproxy in front of backends (host:port) as
// deploy/haproxy.cfg does: leastconn, health checks on /readyz, a long
// tunnel timeout for WebSockets, and a connection refused by a node that
// stopped listening retried on another node. It returns the frontend's
// address. scripts/test installs haproxy; without it the test fails.
func startHAProxy(t *testing.T, backends []string) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy not found (scripts/test installs the Debian package): %v", err)
	}
	front := servertest.FreeAddr(t)
	var servers strings.Builder
	for i, b := range backends {
		fmt.Fprintf(&servers, "    server n%d %s\n", i, b)
	}
	cfg := fmt.Sprintf(`global
    maxconn 8000
defaults
    mode http
    maxconn 8000
    option http-server-close
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout client-fin 5s
    # A check answered late on a busy machine is not a dead node; a refused
    # connection or a 503 from /readyz (a draining node) is, at once.
    timeout check 5s
    # A node that closed its listener refuses connections until the health
    # check marks it down; retry those on another node.
    retries 3
    option redispatch 1
frontend eddy
    bind %s
    default_backend nodes
backend nodes
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 100ms fall 1 rise 1 check
%s`, front, servers.String())
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-f", path, "-db")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", logs.String())
		}
	})
	return front
}

// TestRollingRestartBehindHAProxy (issue 21): three nodes over a real Redis
// behind a real HAProxy, thousands of Go clients, and a rolling restart of
// all three nodes under a steady publish load. Each node drains its clients
// over drain_duration; they reconnect through HAProxy to the other nodes and
// recover from history. Every acknowledged message reaches every client, no
// client is ever refused, every recovery is complete, and the connections
// the other nodes accept while one drains never come faster, in any slice
// of time, than twice the draining node's clients over drain_duration
// (plus slack): a stream, not a wave.
func TestRollingRestartBehindHAProxy(t *testing.T) {
	const (
		clients  = 3000
		channels = 10
		drain    = 8 * time.Second
	)
	rs := redistest.Start(t)
	addrs := []string{servertest.FreeAddr(t), servertest.FreeAddr(t), servertest.FreeAddr(t)}
	var nodesMu sync.Mutex
	var everyNode []*servertest.Server // every node started, restarted ones too
	startNode := func(i int) *servertest.Server {
		n := servertest.StartNode(t, func(c *config.Config) {
			c.Listen = addrs[i]
			c.Redis = []string{rs.URL()}
			c.NodeName = fmt.Sprintf("node-%d", i)
			c.PublishRate = 100000
			c.PublishRatePerUser = 100000
			c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 1000}
			c.DrainDuration = drain
			c.ShutdownTimeout = drain + 4*time.Second
		})
		nodesMu.Lock()
		everyNode = append(everyNode, n)
		nodesMu.Unlock()
		return n
	}
	nodes := []*servertest.Server{startNode(0), startNode(1), startNode(2)}
	front := startHAProxy(t, addrs)
	servertest.Eventually(t, "HAProxy sees the three nodes ready", func() bool {
		return status("http://"+front+"/readyz") == http.StatusOK
	})
	pub := api.NewClient("http://"+front, servertest.APIKey)
	pub.HTTP = &http.Client{Timeout: 10 * time.Second}

	// Clients, each on one of the channels, counting what they get.
	type receiver struct {
		mu  sync.Mutex
		ids map[string]bool
	}
	var refused, unrecovered, connected atomic.Int64
	var firstRefusal atomic.Value
	recv := make([]*receiver, clients)
	conns := make([]*client.Client, clients)
	token := servertest.Token(t, "reader", nil, nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= clients {
					return
				}
				r := &receiver{ids: map[string]bool{}}
				recv[i] = r
				var up atomic.Bool // a failed dial reports disconnected without a connect
				c, err := client.Dial(context.Background(), client.Config{
					URL: "ws://" + front + "/ws", Token: token,
					OnState: func(s client.State, err error) {
						switch s {
						case client.StateConnected:
							if up.CompareAndSwap(false, true) {
								connected.Add(1)
							}
						case client.StateDisconnected:
							if up.CompareAndSwap(true, false) {
								connected.Add(-1)
							}
							// The only way a client may lose its connection
							// here is the node's 1012; anything else (a dial
							// HAProxy could not place, a refused upgrade) is
							// a refusal.
							var ce *client.CloseError
							if !errors.As(err, &ce) || ce.Code != 1012 {
								refused.Add(1)
								firstRefusal.CompareAndSwap(nil, fmt.Sprint(err))
							}
						}
					},
				})
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				conns[i] = c
				_, err = c.Subscribe(context.Background(), fmt.Sprintf("feed:%d", i%channels),
					client.WithHandler(func(m *client.Message) {
						r.mu.Lock()
						r.ids[m.ID] = true
						r.mu.Unlock()
					}),
					client.WithRecoverHandler(func(ok bool) {
						if !ok {
							unrecovered.Add(1)
						}
					}))
				if err != nil {
					errs <- fmt.Errorf("client %d: subscribe: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()

	// A steady publish load through HAProxy for the whole restart: one
	// publisher per channel, so one slow answer does not stall the others.
	var ackMu sync.Mutex
	acked := make([][]string, channels)
	var ackCount, pubErrors atomic.Int64
	stopPub := make(chan struct{})
	var pubs sync.WaitGroup
	for ch := range channels {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-stopPub:
					return
				case <-tick.C:
				}
				id, err := pub.Publish(context.Background(), fmt.Sprintf("feed:%d", ch), "tick", k)
				if err != nil {
					pubErrors.Add(1)
					continue
				}
				ackMu.Lock()
				acked[ch] = append(acked[ch], id)
				ackMu.Unlock()
				ackCount.Add(1)
			}
		}()
	}

	accepts := func() float64 {
		nodesMu.Lock()
		defer nodesMu.Unlock()
		sum := 0.0
		for _, n := range everyNode {
			sum += server.Connects(n.Server)
		}
		return sum
	}
	for i := range nodes {
		old := nodes[i]
		onOld := counterValue(t, old, "eddy_connections", "", "")
		// The draining node's clients spread over drain: twice that rate,
		// plus slack for a batch and the clients' reconnect jitter, in
		// slices long enough that clients slowed by the busy machine (they
		// share it with the nodes) do not make a burst of a stream. Closed
		// at once, the same clients come back in one or two slices.
		watch := watchRate(time.Second, onOld/drain.Seconds(), 30, accepts)
		ctx, cancel := context.WithTimeout(context.Background(), old.Config.ShutdownTimeout)
		ackedBefore := ackCount.Load()
		err := old.Shutdown(ctx)
		cancel()
		ackedDuring := ackCount.Load() - ackedBefore
		if err != nil {
			t.Fatalf("node %d: Shutdown did not finish within shutdown_timeout: %v", i, err)
		}
		// The last clients closed reconnect after Shutdown returns: watch
		// until every client is back.
		for back := time.Now().Add(60 * time.Second); connected.Load() != clients; time.Sleep(20 * time.Millisecond) {
			if n := refused.Load(); n > 0 {
				t.Fatalf("node %d's drain: %d connections lost or refused other than by the drain's 1012; first: %v", i, n, firstRefusal.Load())
			}
			if time.Now().After(back) {
				t.Fatalf("node %d's clients: %d of %d connected after 60s; %d refusals, first: %v", i, connected.Load(), clients, refused.Load(), firstRefusal.Load())
			}
		}
		worst, maxSlice, slices := watch.finish()
		t.Logf("node %d drained %g clients; the others accepted them over %d slices of about 1s, at most %d in one; %d messages acknowledged meanwhile", i, onOld, slices, maxSlice, ackedDuring)
		if worst != "" {
			t.Fatalf("node %d: reconnects came faster than drain_duration allows: %s", i, worst)
		}
		if ackedDuring == 0 {
			t.Fatalf("node %d: no publish acknowledged while it drained: the load was not steady", i)
		}
		nodes[i] = startNode(i)
		servertest.Eventually(t, fmt.Sprintf("node %d back and ready", i), func() bool {
			return status("http://"+addrs[i]+"/readyz") == http.StatusOK
		})
	}
	close(stopPub)
	pubs.Wait()

	servertest.EventuallyWithin(t, 60*time.Second, "every client connected again", func() bool {
		return connected.Load() == clients
	})
	ackMu.Lock()
	total := 0
	for _, ids := range acked {
		total += len(ids)
	}
	ackMu.Unlock()
	missing := func() (int, string) {
		n, example := 0, ""
		for i, r := range recv {
			r.mu.Lock()
			for _, id := range acked[i%channels] {
				if !r.ids[id] {
					n++
					if example == "" {
						example = fmt.Sprintf("client %d lacks %s", i, id)
					}
				}
			}
			r.mu.Unlock()
		}
		return n, example
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, example := missing()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries of acknowledged messages missing (%s)", n, example)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d clients, %d acknowledged messages (%d publishes refused), every one delivered to every client", clients, total, pubErrors.Load())
	if n := refused.Load(); n > 0 {
		t.Fatalf("%d connections lost or refused other than by the drain's 1012; first: %v", n, firstRefusal.Load())
	}
	if n := unrecovered.Load(); n > 0 {
		t.Fatalf("%d resubscribes did not recover every missed message", n)
	}
}
