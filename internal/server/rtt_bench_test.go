package server_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// BenchmarkRequestRTT measures request round trips over a real socket on an
// otherwise idle server with the default write_delay: each op is a fresh
// connection that authenticates, then in sequence subscribes (right after
// ready, when the coalescing window of the ready write is open), publishes
// with an ack and pings. It reports p50/p99 of each in microseconds.
// EDDY_BENCH_NODELAY=1 runs it with write_delay 0, for comparison.
//
//	go test -run '^$' -bench RequestRTT -benchtime 300x ./internal/server/
func BenchmarkRequestRTT(b *testing.B) {
	s := servertest.Start(b, func(c *config.Config) {
		if os.Getenv("EDDY_BENCH_NODELAY") != "" {
			c.WriteDelay = 0
		}
	})
	tok := servertest.Token(b, "rtt", nil, []string{"rtt-*"})
	var sub, pub, ping []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ws := servertest.Connect(b, s.WSURL, tok)
		ch := fmt.Sprintf("rtt-%d", i)
		t0 := time.Now()
		if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": ch}); f.Type() != "subscribed" {
			b.Fatalf("subscribe: %v", f)
		}
		t1 := time.Now()
		if f := ws.Request(map[string]any{"type": "publish", "id": 2, "channel": ch, "event": "e", "data": 1}); f.Type() != "ack" {
			b.Fatalf("publish: %v", f)
		}
		t2 := time.Now()
		if f := ws.Request(map[string]any{"type": "ping", "id": 3}); f.Type() != "pong" {
			b.Fatalf("ping: %v", f)
		}
		t3 := time.Now()
		sub, pub, ping = append(sub, t1.Sub(t0)), append(pub, t2.Sub(t1)), append(ping, t3.Sub(t2))
		_ = ws.Conn.NetConn().Close()
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"subscribe", sub}, {"publish-ack", pub}, {"ping", ping}} {
		slices.Sort(m.d)
		b.ReportMetric(float64(pct(m.d, 50).Microseconds()), m.name+"-p50-us")
		b.ReportMetric(float64(pct(m.d, 99).Microseconds()), m.name+"-p99-us")
	}
}

// pct is the p-th percentile of sorted d.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, len(d)*p/100)]
}
