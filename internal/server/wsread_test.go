package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/wsframe"
)

// clientFrame builds a masked client frame (RFC 6455 5.2) by hand, so a
// test can split, interleave and malform frames as no client library would.
func rawFrame(fin bool, op byte, payload []byte) []byte {
	return wsframe.AppendClientFrame(nil, fin, wsframe.Opcode(op), payload, [4]byte{0x5a, 0x01, 0xc3, 0x7e})
}

func jsonFrame(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return rawFrame(true, 0x1, b)
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(entries)
}

// Frames reach the handlers whole and in order however the client's bytes
// are cut: byte by byte, many frames in one write, a frame longer than a
// read buffer, and a fragmented message with a ping between its fragments.
func TestPolledReaderFramesCutAnywhere(t *testing.T) {
	s := servertest.Start(t)
	ws := servertest.Dial(t, s.WSURL)
	raw := ws.Conn.NetConn()
	write := func(b []byte) {
		t.Helper()
		if _, err := raw.Write(b); err != nil {
			t.Fatalf("write: %v", err)
		}
	}

	for _, c := range jsonFrame(t, map[string]any{"type": "auth", "token": servertest.Token(t, "cut", nil, nil)}) {
		write([]byte{c})
	}
	ws.Expect("ready")

	var many []byte
	for id := 100; id < 150; id++ {
		many = append(many, jsonFrame(t, map[string]any{"type": "ping", "id": id})...)
	}
	write(many)
	for id := 100; id < 150; id++ {
		if f := ws.Expect("pong"); f.Num("id") != float64(id) {
			t.Fatalf("pong %v, want id %d: frames out of order", f, id)
		}
	}

	long := jsonFrame(t, map[string]any{"type": "ping", "id": 7, "pad": strings.Repeat("x", 3*4096)})
	write(long[:5000])
	write(long[5000:])
	if f := ws.Expect("pong"); f.Num("id") != 7 {
		t.Fatalf("pong %v after a long frame, want id 7", f)
	}

	msg := []byte(`{"type":"ping","id":8}`)
	write(rawFrame(false, 0x1, msg[:9]))
	write(rawFrame(true, 0x9, []byte("between")))
	write(rawFrame(false, 0x0, msg[9:15]))
	write(rawFrame(true, 0x0, msg[15:]))
	if f := ws.Expect("pong"); f.Num("id") != 8 {
		t.Fatalf("pong %v after a fragmented message, want id 8", f)
	}
}

// Protocol errors close with gws's codes on the polled path too.
func TestPolledReaderProtocolErrors(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxMessageBytes = 1024 })
	for _, tc := range []struct {
		name  string
		bytes []byte
		code  uint16
	}{
		{"unmasked frame", []byte{0x81, 0x02, 'h', 'i'}, 1002},
		{"reserved bit", []byte{0xc1, 0x80, 1, 2, 3, 4}, 1002},
		{"continuation first", rawFrame(true, 0x0, []byte("x")), 1002},
		{"fragmented ping", rawFrame(false, 0x9, nil), 1002},
		{"reserved opcode", rawFrame(true, 0x3, nil), 1002},
		{"new message mid-message", append(rawFrame(false, 0x1, []byte("a")), rawFrame(true, 0x1, []byte("b"))...), 1002},
		{"frame past the hard cap", rawFrame(true, 0x1, bytes.Repeat([]byte("x"), 2*1024+4097)), 1009},
		{"invalid UTF-8 text", rawFrame(true, 0x1, []byte{0xff, 0xfe}), 1007},
		{"client close", rawFrame(true, 0x8, []byte{0x0f, 0xa0}), 4000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := servertest.Dial(t, s.WSURL)
			if _, err := ws.Conn.NetConn().Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			if code := ws.CloseCode(); code != tc.code {
				t.Fatalf("close code %d (%v), want %d", code, ws.CloseErr(), tc.code)
			}
		})
	}
}

// However a polled connection ends, its socket leaves the epoll set and its
// descriptor is closed.
func TestPolledConnectionsLeaveNoDescriptors(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.AuthTimeout = 300 * time.Millisecond })
	servertest.Eventually(t, "no connections left from earlier tests", func() bool { return server.PolledSockets() == 0 })
	fds := openFDs(t)
	token := servertest.Token(t, "fd", nil, nil)

	const each = 4
	var conns []*servertest.WS
	endings := map[string]func(ws *servertest.WS){
		"client close frame": func(ws *servertest.WS) { _ = ws.Conn.WriteClose(1000, nil) },
		"client hangs up":    func(ws *servertest.WS) { _ = ws.Conn.NetConn().Close() },
		"half a frame, then hangs up": func(ws *servertest.WS) {
			_, _ = ws.Conn.NetConn().Write(rawFrame(true, 0x1, []byte(`{"type":"ping","id":1}`))[:9])
			_ = ws.Conn.NetConn().Close()
		},
		"protocol error":  func(ws *servertest.WS) { _, _ = ws.Conn.NetConn().Write([]byte{0x81, 0x00}) },
		"auth timeout":    func(*servertest.WS) {},
		"refused token":   func(ws *servertest.WS) { ws.Send(map[string]any{"type": "auth", "token": "nope"}) },
		"too many errors": func(*servertest.WS) {},
	}
	for name, end := range endings {
		for i := 0; i < each; i++ {
			var ws *servertest.WS
			if name == "auth timeout" || name == "refused token" {
				ws = servertest.Dial(t, s.WSURL)
			} else {
				ws = servertest.Connect(t, s.WSURL, token)
			}
			if name == "too many errors" {
				for j := 0; j < 20; j++ {
					ws.Send(`{"type":"nonsense"}`)
				}
			} else {
				end(ws)
			}
			conns = append(conns, ws)
		}
	}
	for _, ws := range conns {
		select {
		case <-ws.Closed():
		case <-time.After(servertest.Timeout):
			_ = ws.Conn.NetConn().Close()
		}
	}
	servertest.Eventually(t, "every connection gone", func() bool { return server.ConnCount(s.Server) == 0 })
	servertest.Eventually(t, "the epoll set empty", func() bool { return server.PolledSockets() == 0 })
	for _, ws := range conns {
		_ = ws.Conn.NetConn().Close()
	}
	servertest.Eventually(t, fmt.Sprintf("descriptors back to %d", fds), func() bool { return openFDs(t) <= fds })
}

// Shutdown closes polled connections like any other, and with them their
// descriptors.
func TestPolledConnectionsClosedAtShutdown(t *testing.T) {
	s := servertest.Start(t)
	servertest.Eventually(t, "no connections left from earlier tests", func() bool { return server.PolledSockets() == 0 })
	var conns []*servertest.WS
	for i := 0; i < 10; i++ {
		conns = append(conns, servertest.Connect(t, s.WSURL, servertest.Token(t, fmt.Sprintf("u%d", i), nil, nil)))
	}
	if n := server.PolledSockets(); n != len(conns) {
		t.Fatalf("%d sockets polled, want %d", n, len(conns))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, ws := range conns {
		if code := ws.CloseCode(); code == 0 {
			t.Fatalf("closed without a close frame: %v", ws.CloseErr())
		}
	}
	servertest.Eventually(t, "the epoll set empty", func() bool { return server.PolledSockets() == 0 })
}

// A client that floods frames holds one reader: others are still answered.
func TestPolledFloodDoesNotStarveOthers(t *testing.T) {
	s := servertest.Start(t)
	flood := servertest.Connect(t, s.WSURL, servertest.Token(t, "flood", nil, nil))
	calm := servertest.Connect(t, s.WSURL, servertest.Token(t, "calm", nil, nil))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		batch := bytes.Repeat(rawFrame(true, 0x1, []byte(`{"type":"ping","id":1}`)), 200)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := flood.Conn.NetConn().Write(batch); err != nil {
				return
			}
		}
	}()
	// The flood's pongs are read (its frames channel is deep) so its
	// outbox does not overflow first.
	go func() {
		for {
			select {
			case <-flood.Frames:
			case <-done:
				return
			}
		}
	}()
	for i := 0; i < 20; i++ {
		if f := calm.Request(map[string]any{"type": "ping", "id": 1000 + i}); f.Type() != "pong" {
			t.Fatalf("calm client's ping answered with %v", f)
		}
	}
	close(stop)
	_ = flood.Conn.NetConn().Close()
	<-done
}

// A read deadline ends a polled connection's read side as it ends gws's
// read loop (teardown sets one so a peer that never answers a close frame
// does not keep its connection), and clearing it keeps the connection.
func TestPolledReadDeadline(t *testing.T) {
	s := servertest.Start(t)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "deadline", nil, nil))
	server.SetReadDeadlines(s.Server, time.Now().Add(time.Hour))
	server.SetReadDeadlines(s.Server, time.Time{})
	if f := ws.Request(map[string]any{"type": "ping", "id": 1}); f.Type() != "pong" {
		t.Fatalf("ping answered with %v after the deadline was cleared", f)
	}
	server.SetReadDeadlines(s.Server, time.Now().Add(20*time.Millisecond))
	if code := ws.CloseCode(); code != 1000 {
		t.Fatalf("close code %d (%v) after the read deadline, want 1000 as gws sends", code, ws.CloseErr())
	}
	servertest.Eventually(t, "the connection gone", func() bool { return server.ConnCount(s.Server) == 0 })
}
