package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// BenchmarkPresenceJoins connects EDDY_BENCH_MEMBERS (default 5,000) clients
// over real sockets, each joining one presence channel with join_leave on,
// and reports how fast they joined and what the server wrote to them.
// EDDY_BENCH_JOINERS (default 8) clients join at once; with 1, each waits
// for the previous one's subscribed reply (joins one after another).
//
//	go test -run '^$' -bench PresenceJoins -benchtime 1x ./internal/server/
func BenchmarkPresenceJoins(b *testing.B) {
	n := 5000
	if v := os.Getenv("EDDY_BENCH_MEMBERS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for i := 0; i < b.N; i++ {
		r := runPresenceJoins(b, n)
		b.ReportMetric(float64(n)/r.joined.Seconds(), "joins/s")
		b.ReportMetric(r.settled.Seconds(), "settle-s")
		b.ReportMetric(float64(r.messages)/float64(n), "ws-msgs/member")
		b.ReportMetric(float64(r.bytes)/float64(n)/1024, "KiB/member")
		b.ReportMetric(float64(r.dropped), "dropped")
	}
}

type joinRun struct {
	joined, settled time.Duration
	messages, bytes int64
	dropped         int64
}

// benchConn counts what one connection receives without parsing it.
type benchConn struct {
	messages, bytes *atomic.Int64
	dropped         *atomic.Int64
	subscribed      chan struct{}
	sawSentinel     chan struct{}
	once, sentinel  sync.Once
}

func (h *benchConn) OnOpen(*gws.Conn)               {}
func (h *benchConn) OnPing(c *gws.Conn, p []byte)   { _ = c.WritePong(p) }
func (h *benchConn) OnPong(*gws.Conn, []byte)       {}
func (h *benchConn) OnClose(_ *gws.Conn, err error) { h.dropped.Add(1) }
func (h *benchConn) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	data := m.Bytes()
	h.messages.Add(1)
	h.bytes.Add(int64(len(data)))
	if bytes.Contains(data, []byte(`"type":"subscribed"`)) {
		h.once.Do(func() { close(h.subscribed) })
	}
	if bytes.Contains(data, []byte(`"user":"sentinel"`)) {
		h.sentinel.Do(func() { close(h.sawSentinel) })
	}
}

func runPresenceJoins(b *testing.B, n int) joinRun {
	b.Helper()
	s := servertest.Start(b, func(c *config.Config) {
		c.Namespaces["room"] = config.ChannelOptions{Presence: true, JoinLeave: true}
	})
	var messages, byteCount, dropped atomic.Int64
	conns := make([]*benchConn, n+1)
	sockets := make([]*gws.Conn, n+1)
	tokens := make([]string, n+1)
	for i := range tokens {
		user := fmt.Sprintf("u%d", i)
		if i == n {
			user = "sentinel"
		}
		tokens[i] = servertest.Token(b, user, nil, nil)
	}
	join := func(i int) {
		h := &benchConn{messages: &messages, bytes: &byteCount, dropped: &dropped,
			subscribed: make(chan struct{}), sawSentinel: make(chan struct{})}
		conn, _, err := gws.NewClient(h, &gws.ClientOption{Addr: s.WSURL, ReadMaxPayloadSize: 64 << 20})
		if err != nil {
			b.Errorf("dial: %v", err)
			return
		}
		conns[i], sockets[i] = h, conn
		go conn.ReadLoop()
		auth, _ := json.Marshal(map[string]any{"type": "auth", "token": tokens[i]})
		sub, _ := json.Marshal(map[string]any{"type": "subscribe", "id": 1, "channel": "room:big"})
		_ = conn.WriteMessage(gws.OpcodeText, auth)
		_ = conn.WriteMessage(gws.OpcodeText, sub)
		select {
		case <-h.subscribed:
		case <-time.After(time.Minute):
			b.Errorf("member %d: no subscribed reply", i)
		}
	}
	defer func() {
		for _, c := range sockets {
			if c != nil {
				_ = c.NetConn().Close()
			}
		}
	}()

	b.ResetTimer()
	start := time.Now()
	workers := 8
	if v := os.Getenv("EDDY_BENCH_JOINERS"); v != "" {
		workers, _ = strconv.Atoi(v)
	}
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || b.Failed() {
					return
				}
				join(i)
			}
		}()
	}
	wg.Wait()
	joined := time.Since(start)
	if b.Failed() {
		b.FailNow()
	}
	// A last member's join, seen by everyone, marks the fan-out as done.
	join(n)
	for i, h := range conns[:n] {
		select {
		case <-h.sawSentinel:
		case <-time.After(2 * time.Minute):
			b.Fatalf("member %d never saw the sentinel's join (dropped: %d)", i, dropped.Load())
		}
	}
	settled := time.Since(start)
	b.StopTimer()
	return joinRun{joined: joined, settled: settled, messages: messages.Load(), bytes: byteCount.Load(), dropped: dropped.Load()}
}
