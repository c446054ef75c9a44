package server_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// latencyReader is a minimal subscriber: it counts message frames and
// records publish-to-receive latency from the payload's send time.
type latencyReader struct {
	mu       sync.Mutex
	got      int
	lat      []time.Duration
	want     int
	done     chan struct{}
	sawReady bool
}

func (r *latencyReader) OnOpen(*gws.Conn)             {}
func (r *latencyReader) OnClose(*gws.Conn, error)     {}
func (r *latencyReader) OnPing(c *gws.Conn, p []byte) { _ = c.WritePong(p) }
func (r *latencyReader) OnPong(*gws.Conn, []byte)     {}
func (r *latencyReader) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, line := range splitLines(m.Bytes()) {
		var f struct {
			Type string `json:"type"`
			Data struct {
				T int64 `json:"t"`
			} `json:"data"`
		}
		if json.Unmarshal(line, &f) != nil || f.Type != "message" {
			continue
		}
		r.got++
		r.lat = append(r.lat, time.Duration(now-f.Data.T))
		if r.got == r.want {
			close(r.done)
		}
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}

// benchFanOut publishes b.N messages from one client connection on pubNode
// to subs subscribers on subNode and reports delivered messages per second
// and publish-to-receive latency.
func benchFanOut(b *testing.B, pubNode, subNode *servertest.Server, subs int) {
	readers := make([]*latencyReader, subs)
	for i := range readers {
		r := &latencyReader{want: b.N, done: make(chan struct{})}
		readers[i] = r
		conn, _, err := gws.NewClient(r, &gws.ClientOption{Addr: subNode.WSURL})
		if err != nil {
			b.Fatal(err)
		}
		go conn.ReadLoop()
		b.Cleanup(func() { _ = conn.NetConn().Close() })
		_ = conn.WriteString(`{"type":"auth","token":"` + servertest.Token(b, "r", nil, nil) + `"}`)
		_ = conn.WriteString(`{"type":"subscribe","id":1,"channel":"bench:fan"}`)
	}
	servertest.Eventually(b, "subscribers registered", func() bool { return subNode.Hub().Subscribers("bench:fan") == subs })
	pub := servertest.Connect(b, pubNode.WSURL, servertest.Token(b, "p", nil, []string{"bench:*"}))
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := 0; i < b.N; i++ {
			_ = pub.Conn.WriteString(`{"type":"publish","id":` + strconv.Itoa(i+1) + `,"channel":"bench:fan","event":"e","data":{"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}}`)
		}
	}()
	for _, r := range readers {
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
			r.mu.Lock()
			b.Fatalf("subscriber got %d of %d messages", r.got, b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, r := range readers {
		all = append(all, r.lat...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(b.N*subs)/elapsed.Seconds(), "delivered/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}

func fastPublish(c *config.Config) {
	c.PublishRate = 1e9
	c.PublishRatePerUser = 1e9
	c.MaxQueueBytes = 256 << 20
}

// BenchmarkFanOutSingleNode vs BenchmarkFanOutCrossNode: the same load on
// one memory node, and published on one Redis node to subscribers on another.
func BenchmarkFanOutSingleNode(b *testing.B) {
	for _, subs := range []int{10, 100} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			s := servertest.Start(b, fastPublish)
			benchFanOut(b, s, s, subs)
		})
	}
}

func BenchmarkFanOutCrossNode(b *testing.B) {
	for _, subs := range []int{10, 100} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			_, nodes := clusterB(b, 2, fastPublish)
			benchFanOut(b, nodes[0], nodes[1], subs)
		})
	}
}
