package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/servertest"
)

// stampReader records publish-to-receive latency from the "t" (unix
// nanoseconds at publish) in each message's data.
type stampReader struct {
	mu    sync.Mutex
	lat   []time.Duration
	ready chan struct{}
	once  sync.Once
}

func (h *stampReader) OnOpen(*gws.Conn)             {}
func (h *stampReader) OnPing(c *gws.Conn, p []byte) { _ = c.WritePong(p) }
func (h *stampReader) OnPong(*gws.Conn, []byte)     {}
func (h *stampReader) OnClose(*gws.Conn, error)     {}
func (h *stampReader) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	now := time.Now().UnixNano()
	b := m.Bytes()
	if bytes.Contains(b, []byte(`"type":"subscribed"`)) {
		h.once.Do(func() { close(h.ready) })
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		i := bytes.Index(b, []byte(`"t":`))
		if i < 0 {
			return
		}
		b = b[i+4:]
		j := bytes.IndexAny(b, ",}")
		if t, err := strconv.ParseInt(string(b[:j]), 10, 64); err == nil {
			h.lat = append(h.lat, time.Duration(now-t))
		}
	}
}

// BenchmarkHealthySubscriberLatency publishes 4 KB messages at 250/s for
// 2 s to a channel with one healthy subscriber, alone and sharing the
// channel with 50 subscribers that never read, and reports the healthy
// one's publish-to-receive latency p50/p99 (issue 12.6: 21 ms alone, 1.8 s
// with the non-readers, before the socket writes stopped blocking).
//
//	go test -run '^$' -bench HealthySubscriberLatency -benchtime 1x ./internal/server/
func BenchmarkHealthySubscriberLatency(b *testing.B) {
	for _, nonReaders := range []int{0, 50} {
		b.Run(fmt.Sprint("non-readers=", nonReaders), func(b *testing.B) {
			for b.Loop() {
				s := servertest.Start(b)
				tok := servertest.Token(b, "sub", nil, nil)
				for range nonReaders {
					dialNonReader(b, s.Addr().String(), tok, "lat")
				}
				h := &stampReader{ready: make(chan struct{})}
				conn, _, err := gws.NewClient(h, &gws.ClientOption{Addr: s.WSURL, ReadMaxPayloadSize: 64 << 20})
				if err != nil {
					b.Fatal(err)
				}
				go conn.ReadLoop()
				auth, _ := json.Marshal(map[string]any{"type": "auth", "token": tok})
				sub, _ := json.Marshal(map[string]any{"type": "subscribe", "id": 1, "channel": "lat"})
				_ = conn.WriteMessage(gws.OpcodeText, auth)
				_ = conn.WriteMessage(gws.OpcodeText, sub)
				<-h.ready
				servertest.Eventually(b, "subscribers registered", func() bool { return s.Hub().Subscribers("lat") == nonReaders+1 })

				api := s.API()
				pad := strings.Repeat("x", 4096)
				const rate, n = 250, 500
				tick := time.NewTicker(time.Second / rate)
				for range n {
					<-tick.C
					data := json.RawMessage(fmt.Sprintf(`{"t":%d,"pad":"%s"}`, time.Now().UnixNano(), pad))
					if _, err := api.Publish(context.Background(), "lat", "e", data); err != nil {
						b.Fatal(err)
					}
				}
				tick.Stop()
				servertest.EventuallyWithin(b, time.Minute, "every message", func() bool {
					h.mu.Lock()
					defer h.mu.Unlock()
					return len(h.lat) >= n
				})
				_ = conn.NetConn().Close()
				slices.Sort(h.lat)
				b.ReportMetric(float64(pct(h.lat, 50).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(pct(h.lat, 99).Microseconds())/1000, "p99-ms")
			}
		})
	}
}
