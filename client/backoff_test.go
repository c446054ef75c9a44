package client_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/servertest"
)

// closingServer is a WebSocket server on loopback that authenticates every
// connection and closes it with 1012 right after ready: a server in a
// crash loop, or one that cannot serve what the client asks on connect.
type closingServer struct {
	url      string
	accepted atomic.Int64
}

type closeAfterReady struct{ s *closingServer }

func (h closeAfterReady) OnOpen(*gws.Conn)             {}
func (h closeAfterReady) OnClose(*gws.Conn, error)     {}
func (h closeAfterReady) OnPing(c *gws.Conn, p []byte) { _ = c.WritePong(p) }
func (h closeAfterReady) OnPong(*gws.Conn, []byte)     {}
func (h closeAfterReady) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	var f struct{ Type string }
	if json.Unmarshal(m.Bytes(), &f) != nil || f.Type != "auth" {
		return
	}
	_ = c.WriteMessage(gws.OpcodeText, []byte(`{"type":"ready","conn":"c-1","user":"u"}`))
	_ = c.WriteClose(1012, []byte("restarting"))
}

func startClosingServer(t *testing.T) *closingServer {
	t.Helper()
	s := &closingServer{}
	up := gws.NewUpgrader(closeAfterReady{s}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		socket, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		s.accepted.Add(1)
		go socket.ReadLoop()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.url = "ws://" + ln.Addr().String() + "/ws"
	return s
}

// TestBackoffGrowsWhenConnectionsDieAtOnce: a connection that the server
// closes right after ready does not reset the backoff, so the reconnects
// follow it (delays up to 50, 100, 200, 400 ms... capped at 1 s) instead
// of a tight loop. Within a 2 s window that is a handful of connections
// (about 6 on average; more than 15 needs ten 1-second-capped delays to sum
// under 1.5 s), where resetting on every connect made dozens (delays under
// 50 ms each: up to 40 per second).
func TestBackoffGrowsWhenConnectionsDieAtOnce(t *testing.T) {
	s := startClosingServer(t)
	var connected, disconnected atomic.Int64
	c, err := client.Dial(context.Background(), client.Config{
		URL: s.url, Token: servertest.Token(t, "u", nil, nil),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
		OnState: func(st client.State, _ error) {
			switch st {
			case client.StateConnected:
				connected.Add(1)
			case client.StateDisconnected:
				disconnected.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A window of wall time is what this test is about: how many attempts
	// fit in it. A slow machine only makes fewer.
	time.Sleep(2 * time.Second)
	n := s.accepted.Load()
	t.Logf("%d connections accepted in 2 s (%d connected, %d disconnected states)", n, connected.Load(), disconnected.Load())
	if n < 2 || disconnected.Load() < 1 {
		t.Fatalf("only %d connections: the client did not reconnect at all", n)
	}
	if n > 15 {
		t.Fatalf("%d connections in 2 s: the backoff was reset by connections that died at once", n)
	}
}
