package nats

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/nats/natstest"
	"github.com/eddyrt/eddy/internal/protocol"
)

// BenchmarkPublish: sequential publishes to one channel through one node.
func BenchmarkPublish(b *testing.B) {
	srv := natstest.Start(b)
	br, err := New(Options{URL: srv.URL(), Prefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	for !br.Ready() {
		time.Sleep(10 * time.Millisecond) // polling a readiness flag
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		m := &protocol.Message{Channel: "bench", Event: "e", Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		if _, err := br.Publish(ctx, m, broker.ChannelOptions{HistorySize: 10}); err != nil {
			b.Fatal(err)
		}
	}
}
