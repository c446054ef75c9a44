package memory_test

import (
	"testing"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/brokertest"
	"github.com/eddyrt/eddy/internal/broker/memory"
)

func TestBrokerContract(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		b := memory.New()
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}
