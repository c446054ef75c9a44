package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// dialNonReader opens a WebSocket connection that authenticates and
// subscribes to channel, then never reads: its receive buffer is as small
// as the kernel allows, so the server's socket to it fills after a few
// messages.
func dialNonReader(t testing.TB, addr, token, channel string) net.Conn {
	t.Helper()
	conn := dialSmallBuffer(t, addr)
	writeHandshakeAndSubscribe(t, conn, token, channel)
	return conn
}

// dialSmallBuffer connects to addr with a receive buffer as small as the
// kernel allows, so the server's socket to it fills after a few messages.
func dialSmallBuffer(t testing.TB, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// writeHandshakeAndSubscribe sends the upgrade request, auth and subscribe
// in one write and reads nothing.
func writeHandshakeAndSubscribe(t testing.TB, conn net.Conn, token, channel string) {
	t.Helper()
	auth, _ := json.Marshal(map[string]any{"type": "auth", "token": token})
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "id": 1, "channel": channel})
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	packet := append(append([]byte(req), clientFrame(auth)...), clientFrame(sub)...)
	if _, err := conn.Write(packet); err != nil {
		t.Fatal(err)
	}
}

// countingReader counts the messages a healthy subscriber receives without
// decoding them, and the close code it gets.
type countingReader struct {
	messages  atomic.Int64
	closed    chan struct{}
	closeCode atomic.Int32
	ready     chan struct{}
	once      sync.Once
}

func (h *countingReader) OnOpen(*gws.Conn)             {}
func (h *countingReader) OnPing(c *gws.Conn, p []byte) { _ = c.WritePong(p) }
func (h *countingReader) OnPong(*gws.Conn, []byte)     {}
func (h *countingReader) OnClose(_ *gws.Conn, err error) {
	if ce, ok := err.(*gws.CloseError); ok {
		h.closeCode.Store(int32(ce.Code))
	}
	close(h.closed)
}
func (h *countingReader) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	b := m.Bytes()
	if bytes.Contains(b, []byte(`"type":"subscribed"`)) {
		h.once.Do(func() { close(h.ready) })
	}
	h.messages.Add(int64(bytes.Count(b, []byte(`"type":"message"`))))
}

func dialCounting(t testing.TB, url, token, channel string) (*countingReader, *gws.Conn) {
	t.Helper()
	h := &countingReader{closed: make(chan struct{}), ready: make(chan struct{})}
	conn, _, err := gws.NewClient(h, &gws.ClientOption{Addr: url, ReadMaxPayloadSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.NetConn().Close() })
	go conn.ReadLoop()
	auth, _ := json.Marshal(map[string]any{"type": "auth", "token": token})
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "id": 1, "channel": channel})
	_ = conn.WriteMessage(gws.OpcodeText, auth)
	_ = conn.WriteMessage(gws.OpcodeText, sub)
	select {
	case <-h.ready:
	case <-time.After(servertest.Timeout):
		t.Fatal("healthy subscriber: no subscribed reply")
	}
	return h, conn
}

// TestNonReadersDoNotHoldBackAHealthySubscriber: 50 subscribers that never
// read share a channel with one that does while 4 KB messages are
// published. Sockets that cannot take more must not hold the shared
// writers: the healthy subscriber receives every message and is never
// closed as a slow consumer (issue 12.6). The non-readers are closed with
// 4009 once their own queue passes max_queue_bytes.
func TestNonReadersDoNotHoldBackAHealthySubscriber(t *testing.T) {
	const nonReaders, n = 50, 1500
	s := servertest.Start(t, func(c *config.Config) {
		c.MaxQueueBytes = 256 << 10
	})
	tok := servertest.Token(t, "sub", nil, nil)
	for range nonReaders {
		dialNonReader(t, s.Addr().String(), tok, "slow")
	}
	healthy, _ := dialCounting(t, s.WSURL, tok, "slow")
	servertest.Eventually(t, "every subscriber registered", func() bool { return s.Hub().Subscribers("slow") == nonReaders+1 })

	data := json.RawMessage(`{"pad":"` + strings.Repeat("x", 4096) + `"}`)
	api := s.API()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= n; i = next.Add(1) {
				// Stay at most 32 messages (128 KiB) ahead of the healthy
				// subscriber, half its queue: on a loaded machine its
				// reader can be starved long enough for a publisher running
				// flat out to overflow even a reader's queue. Non-readers
				// still overflow theirs; a healthy subscriber held back by
				// them would stall this loop, and the test.
				deadline := time.Now().Add(time.Minute)
				for i-healthy.messages.Load() > 32 {
					if time.Now().After(deadline) {
						t.Errorf("the healthy subscriber is stuck at %d of %d", healthy.messages.Load(), i)
						return
					}
					time.Sleep(time.Millisecond)
				}
				if _, err := api.Publish(context.Background(), "slow", "e", data); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	t.Logf("published %d in %s; healthy has %d", n, time.Since(start), healthy.messages.Load())
	servertest.EventuallyWithin(t, time.Minute, "the healthy subscriber to receive every message", func() bool {
		select {
		case <-healthy.closed:
			t.Fatalf("healthy subscriber closed with %d after %d of %d messages", healthy.closeCode.Load(), healthy.messages.Load(), n)
		default:
		}
		return healthy.messages.Load() == n
	})
	t.Logf("healthy has all after %s", time.Since(start))
	select {
	case <-healthy.closed:
		t.Fatalf("healthy subscriber closed with %d", healthy.closeCode.Load())
	default:
	}
	// Each non-reader's own queue overflowed: they, and only they, were
	// closed as slow consumers.
	servertest.Eventually(t, "every non-reader closed with 4009", func() bool {
		return disconnects(t, s, "4009") == nonReaders
	})
}

// disconnects reads eddy_disconnects_total for one close code.
func disconnects(t testing.TB, s *servertest.Server, code string) int {
	t.Helper()
	mfs, err := s.Registry().(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eddy_disconnects_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}
