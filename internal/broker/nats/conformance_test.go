package nats

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/brokertest"
	"github.com/eddyrt/eddy/internal/broker/nats/natstest"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// The contract suite on one nats-server; each broker gets a prefix (so a
// stream and bucket) of its own, so each test starts from an empty store.
func TestBrokerContract(t *testing.T) {
	srv := natstest.Start(t)
	var n atomic.Int64
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		b, err := New(Options{URL: srv.URL(), Prefix: fmt.Sprintf("contract%d", n.Add(1)), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}

func TestBrokerContractAcrossNodes(t *testing.T) {
	srv := natstest.Start(t)
	var n atomic.Int64
	brokertest.RunPeers(t, func(t *testing.T) (broker.Broker, broker.Broker, time.Duration) {
		const ttl = time.Second
		prefix := fmt.Sprintf("peers%d", n.Add(1))
		mk := func(id string) broker.Broker {
			b, err := New(Options{URL: srv.URL(), Prefix: prefix, NodeID: id, PresenceTTL: ttl, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		}
		return mk("a"), mk("b"), ttl
	})
}

// Announcements of two nodes are listed by both; a closed node's goes.
func TestNodeRegistry(t *testing.T) {
	srv := natstest.Start(t)
	mk := func(id string) *Broker {
		b, err := New(Options{URL: srv.URL(), Prefix: "reg", NodeID: id, NodeTTL: time.Minute, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		deadline := time.Now().Add(10 * time.Second)
		for !b.Ready() {
			if time.Now().After(deadline) {
				t.Fatal("broker not ready")
			}
			time.Sleep(10 * time.Millisecond) // polling a readiness flag
		}
		return b
	}
	a, b := mk("a"), mk("b")
	ctx := context.Background()
	for _, br := range []*Broker{a, b} {
		if err := br.Announce(ctx, api.NodeInfo{Name: br.NodeID() + "-name"}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func() []string {
		ns, err := b.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range ns {
			out = append(out, n.ID+"="+n.Name)
		}
		return out
	}
	if got := ids(); !slices.Equal(got, []string{"a=a-name", "b=b-name"}) {
		t.Fatalf("nodes %v", got)
	}
	_ = a.Close()
	if got := ids(); !slices.Equal(got, []string{"b=b-name"}) {
		t.Fatalf("nodes after a closed: %v", got)
	}
}
