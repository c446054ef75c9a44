package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/memory"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// outageClients is how many clients the broker outage tests spread over
// their two nodes, each subscribed to outageChannels.
const outageClients = 500

var outageChannels = []string{"feed:out-a", "feed:out-b"}

// outageClient is one Go client of the outage tests: what it received per
// channel, how often it lost its connection, and its recover events.
type outageClient struct {
	got         map[string]*collected
	disconnects atomic.Int64
	unrecovered atomic.Int64 // recover events with recovered:false
	recovered   atomic.Int64 // recover events with recovered:true
}

func dialOutageClients(t *testing.T, nodes []*servertest.Server) []*outageClient {
	t.Helper()
	clients := make([]*outageClient, outageClients)
	var wg sync.WaitGroup
	errs := make(chan error, outageClients)
	for i := range clients {
		oc := &outageClient{got: map[string]*collected{}}
		clients[i] = oc
		for _, ch := range outageChannels {
			oc.got[ch] = &collected{}
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := client.Dial(context.Background(), client.Config{
				URL: nodes[i%len(nodes)].WSURL, Token: servertest.Token(t, fmt.Sprintf("u%d", i), nil, nil),
				MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
				OnState: func(s client.State, _ error) {
					if s == client.StateDisconnected {
						oc.disconnects.Add(1)
					}
				},
			})
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { c.Close() })
			for _, ch := range outageChannels {
				got := oc.got[ch]
				_, err := c.Subscribe(context.Background(), ch,
					client.WithHandler(func(m *client.Message) {
						var n int
						fmt.Sscan(string(m.Data), &n)
						got.mu.Lock()
						got.nums = append(got.nums, n)
						got.offs = append(got.offs, m.Offset)
						got.mu.Unlock()
					}),
					client.WithRecoverHandler(func(ok bool) {
						if ok {
							oc.recovered.Add(1)
						} else {
							oc.unrecovered.Add(1)
						}
					}))
				if err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return clients
}

// TestBrokerOutageDurableNoReconnect: 500 clients on two nodes, a Redis
// that keeps what it acknowledged (fsynced append-only file) stopped and
// started while a publisher keeps going. No connection closes, no client
// resubscribes, and every subscriber gets every acknowledged message
// exactly once, in order: each node resynchronised its subscriptions from
// history by itself.
func TestBrokerOutageDurableNoReconnect(t *testing.T) {
	rs := redistest.StartDurable(t)
	nodes := clusterOn(t, rs, 2)
	clients := dialOutageClients(t, nodes)
	ctx := context.Background()

	var mu sync.Mutex
	acked := map[string][]int{}
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
			ch := outageChannels[i%len(outageChannels)]
			_, err := nodes[i%2].API().Publish(ctx, ch, "e", i)
			if err == nil {
				mu.Lock()
				acked[ch] = append(acked[ch], i)
				mu.Unlock()
			}
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked[outageChannels[0]]) + len(acked[outageChannels[1]])
	}
	// Publishes to 500 subscribers over an fsynced Redis are slow under
	// -race on a shared machine: the waits for them are counts, not times.
	publishing := func(what string, n int) {
		t.Helper()
		servertest.EventuallyWithin(t, time.Minute, what, func() bool { return count() >= n })
	}
	publishing("publishing", 20)
	rs.Stop()
	rs.Restart()
	servertest.Eventually(t, "nodes ready again", func() bool {
		return status(nodes[0].Base+"/readyz") == 200 && status(nodes[1].Base+"/readyz") == 200
	})
	before := count()
	publishing("publishing after the restart", before+20)
	close(stop)
	<-published

	mu.Lock()
	defer mu.Unlock()
	for _, ch := range outageChannels {
		want := acked[ch]
		last := want[len(want)-1]
		servertest.Eventually(t, fmt.Sprintf("every client has every acknowledged message of %s (last %d)", ch, last), func() bool {
			for _, oc := range clients {
				v := oc.got[ch].values()
				if len(v) == 0 || v[len(v)-1] < last {
					return false
				}
			}
			return true
		})
		for i, oc := range clients {
			v := oc.got[ch].values()
			seen := map[int]bool{}
			for k, n := range v {
				if seen[n] || (k > 0 && n <= v[k-1]) {
					t.Fatalf("client %d, %s: message %d out of order or twice: %v", i, ch, n, v)
				}
				seen[n] = true
			}
			for _, n := range want {
				if !seen[n] {
					t.Fatalf("client %d, %s: acknowledged message %d lost (%d acknowledged, %d delivered)", i, ch, n, len(want), len(v))
				}
			}
			if offs := oc.got[ch].offsets(); !contiguous(offs) {
				t.Fatalf("client %d, %s: offsets not contiguous: %v", i, ch, offs)
			}
		}
	}
	for i, oc := range clients {
		if d, r, u := oc.disconnects.Load(), oc.recovered.Load(), oc.unrecovered.Load(); d != 0 || r != 0 || u != 0 {
			t.Fatalf("client %d: %d disconnects, %d resubscribes recovered, %d not: want none", i, d, r, u)
		}
	}
}

// TestBrokerOutageLostStreamNoReconnect: 500 clients on two nodes, a Redis
// without persistence stopped and started: the streams are gone. Every
// client learns recovered:false for each of its channels over its open
// connection, none reconnects, and live delivery goes on.
func TestBrokerOutageLostStreamNoReconnect(t *testing.T) {
	rs, nodes := cluster(t, 2)
	clients := dialOutageClients(t, nodes)
	ctx := context.Background()
	for i, ch := range outageChannels {
		if _, err := nodes[i%2].API().Publish(ctx, ch, "e", 1); err != nil {
			t.Fatal(err)
		}
	}
	servertest.Eventually(t, "messages before the outage", func() bool {
		for _, oc := range clients {
			for _, ch := range outageChannels {
				if len(oc.got[ch].values()) != 1 {
					return false
				}
			}
		}
		return true
	})
	rs.Stop()
	rs.Restart()
	servertest.Eventually(t, "every client told recovered:false for each channel", func() bool {
		for _, oc := range clients {
			if oc.unrecovered.Load() < int64(len(outageChannels)) {
				return false
			}
		}
		return true
	})
	servertest.Eventually(t, "publishes accepted again", func() bool {
		_, err := nodes[0].API().Publish(ctx, outageChannels[0], "e", 2)
		return err == nil
	})
	servertest.Eventually(t, "live messages after the restart", func() bool {
		for _, oc := range clients {
			v := oc.got[outageChannels[0]].values()
			if len(v) == 0 || v[len(v)-1] != 2 {
				return false
			}
		}
		return true
	})
	for i, oc := range clients {
		if d, u := oc.disconnects.Load(), oc.unrecovered.Load(); d != 0 || u != int64(len(outageChannels)) {
			t.Fatalf("client %d: %d disconnects, %d recovered:false: want 0 and %d", i, d, u, len(outageChannels))
		}
	}
}

// holeBroker is the memory broker with a node that does not receive some
// messages live (as when its broker connection breaks): they are in the
// history but never reach the hub.
type holeBroker struct {
	*memory.Broker
	drop map[uint64]bool // offsets not delivered live
}

type holeHandler struct {
	broker.Handler
	drop map[uint64]bool
}

func (h holeHandler) HandleMessage(m *protocol.Message) {
	if !h.drop[m.Offset] {
		h.Handler.HandleMessage(m)
	}
}

func (b *holeBroker) Start(ctx context.Context, h broker.Handler) error {
	return b.Broker.Start(ctx, holeHandler{Handler: h, drop: b.drop})
}

// TestLiveHoleFilledFromHistory: a subscriber whose node misses messages
// live gets them from history, in order, before what follows, and its
// connection stays open.
func TestLiveHoleFilledFromHistory(t *testing.T) {
	cfg := servertest.Config()
	cfg.Namespaces["feed"] = config.ChannelOptions{HistorySize: 100}
	b := &holeBroker{Broker: memory.New(), drop: map[uint64]bool{3: true, 4: true, 7: true}}
	s := servertest.StartWith(t, server.Options{Config: cfg, Broker: b})
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:hole"})
	for i := 1; i <= 10; i++ {
		if _, err := s.API().Publish(context.Background(), "feed:hole", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	for want := 1; want <= 10; want++ {
		f := ws.Expect("message")
		if int(f.Num("offset")) != want || f["data"] != float64(want) {
			t.Fatalf("got %v, want offset and data %d", f, want)
		}
	}
	expectNoMessages(t, ws)
	select {
	case <-ws.Closed():
		t.Fatal("connection closed")
	default:
	}
}
