package redis

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/brokertest"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
)

// The contract suite on one redis-server; each broker gets a key prefix
// of its own, so each test starts from an empty store.
func TestBrokerContract(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		b, err := New(Options{Addrs: []string{srv.URL()}, Prefix: fmt.Sprintf("contract%d", n.Add(1)), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}

func TestBrokerContractAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	brokertest.RunPeers(t, func(t *testing.T) (broker.Broker, broker.Broker, time.Duration) {
		const ttl = time.Second
		prefix := fmt.Sprintf("peers%d", n.Add(1))
		mk := func(id string) broker.Broker {
			b, err := New(Options{Addrs: []string{srv.URL()}, Prefix: prefix, NodeID: id, PresenceTTL: ttl, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		}
		return mk("a"), mk("b"), ttl
	})
}
