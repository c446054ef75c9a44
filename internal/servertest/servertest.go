// Package servertest starts real Eddy servers on loopback ports for tests
// and speaks the raw wire protocol to them, so tests exercise real sockets.
package servertest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/node"
	"github.com/eddyrt/eddy/internal/server"
)

// Secret, APIKey and AdminKey are the credentials of every test server.
const (
	Secret   = "test-secret-test-secret-test-secret-0123"
	APIKey   = "test-api-key"
	AdminKey = "test-admin-key"
)

// Server is a running test server.
type Server struct {
	*server.Server
	Config config.Config
	Base   string // http://127.0.0.1:port
	WSURL  string // ws://127.0.0.1:port/ws
	t      testing.TB
	// http is this server's own pool: a server restarted on the same port
	// must not get requests on connections the previous one closed.
	http *http.Client
}

// Config returns a test configuration listening on a free loopback port.
func Config() config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Secret = Secret
	cfg.APIKey = APIKey
	cfg.AdminKey = AdminKey
	cfg.ShutdownTimeout = 5 * time.Second
	// Tests close their clients at once unless they test the drain.
	cfg.DrainDuration = 0
	return cfg
}

// Logger writes server logs to the test log when EDDY_TEST_LOG is set, else discards them.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("EDDY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Start runs a server with Config() changed by mutate, stopped at test end.
func Start(t testing.TB, mutate ...func(*config.Config)) *Server {
	t.Helper()
	cfg := Config()
	for _, m := range mutate {
		m(&cfg)
	}
	return StartWith(t, server.Options{Config: cfg})
}

// StartWith runs a server from opts (Logger defaulted), stopped at test end.
func StartWith(t testing.TB, opts server.Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = Logger(t)
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("start server: %v", err)
	}
	s := &Server{Server: srv, Config: opts.Config, t: t, http: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}}
	s.Base = "http://" + srv.Addr().String()
	s.WSURL = "ws://" + srv.Addr().String() + "/ws"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		s.http.CloseIdleConnections()
	})
	return s
}

// API returns an API client for the server.
func (s *Server) API() *api.Client {
	c := api.NewClient(s.APIBase(), APIKey)
	c.HTTP = s.http
	return c
}

// Admin returns an API client holding the admin key (functions, associations).
func (s *Server) Admin() *api.Client {
	c := api.NewClient(s.APIBase(), AdminKey)
	c.HTTP = s.http
	return c
}

// APIBase is the base URL of the API listener.
func (s *Server) APIBase() string { return "http://" + s.APIAddr().String() }

// Token mints a token for sub that may subscribe to channels (nil: the
// server's default) and publish to publish.
func Token(t testing.TB, sub string, channels, publish []string) string {
	t.Helper()
	tok, err := auth.Mint([]byte(Secret), auth.TokenSpec{Subject: sub, Channels: channels, Publish: publish, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Frame is a decoded server frame.
type Frame map[string]any

// Type is the frame's type.
func (f Frame) Type() string { s, _ := f["type"].(string); return s }

// Str returns a string field.
func (f Frame) Str(k string) string { s, _ := f[k].(string); return s }

// Num returns a numeric field.
func (f Frame) Num(k string) float64 { n, _ := f[k].(float64); return n }

// WS is a raw protocol connection: every frame received, split on newlines.
type WS struct {
	t        testing.TB
	Conn     *gws.Conn
	Frames   chan Frame
	closed   chan struct{}
	mu       sync.Mutex
	closeErr error
	Messages int     // WebSocket messages received (frames may be batched)
	backlog  []Frame // frames Request passed over, for Next to return first
	pings    atomic.Int64
}

// Pings is how many WebSocket pings the server sent (each was answered).
func (ws *WS) Pings() int64 { return ws.pings.Load() }

type wsHandler struct{ ws *WS }

func (h wsHandler) OnOpen(*gws.Conn) {}
func (h wsHandler) OnPing(c *gws.Conn, p []byte) {
	h.ws.pings.Add(1)
	_ = c.WritePong(p)
}
func (h wsHandler) OnPong(*gws.Conn, []byte) {}
func (h wsHandler) OnClose(_ *gws.Conn, err error) {
	h.ws.mu.Lock()
	h.ws.closeErr = err
	h.ws.mu.Unlock()
	close(h.ws.closed)
}

func (h wsHandler) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	h.ws.mu.Lock()
	h.ws.Messages++
	h.ws.mu.Unlock()
	for _, line := range strings.Split(m.Data.String(), "\n") {
		if line == "" {
			continue
		}
		var f Frame
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			h.ws.t.Errorf("server sent invalid JSON %q: %v", line, err)
			continue
		}
		h.ws.Frames <- f
	}
}

// Dial opens a raw connection without authenticating. The connection does
// not read until ReadLoop is started, which Dial does unless paused.
func Dial(t testing.TB, url string) *WS {
	t.Helper()
	ws := &WS{t: t, Frames: make(chan Frame, 100000), closed: make(chan struct{})}
	conn, _, err := gws.NewClient(wsHandler{ws}, &gws.ClientOption{Addr: url, ReadMaxPayloadSize: 64 << 20})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.Conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { _ = conn.NetConn().Close() })
	return ws
}

// DialTLS opens a raw wss:// connection trusting what tc trusts, without
// authenticating, and starts reading.
func DialTLS(t testing.TB, url string, tc *tls.Config) *WS {
	t.Helper()
	ws := &WS{t: t, Frames: make(chan Frame, 100000), closed: make(chan struct{})}
	conn, _, err := gws.NewClient(wsHandler{ws}, &gws.ClientOption{Addr: url, TlsConfig: tc, ReadMaxPayloadSize: 64 << 20})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.Conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { _ = conn.NetConn().Close() })
	return ws
}

// pausedReadBuffer is the kernel receive buffer of a paused connection.
// Set before connecting, it turns off the kernel's autotuning (up to 32 MiB
// on Linux), so a reader that does not read stops the server's writes after
// about this much, like a slow client, rather than after tens of megabytes.
const pausedReadBuffer = 64 << 10

// DialPaused opens a raw connection that reads nothing until Resume, with a
// small kernel receive buffer (pausedReadBuffer).
func DialPaused(t testing.TB, url string) (*WS, func()) {
	t.Helper()
	ws := &WS{t: t, Frames: make(chan Frame, 100000), closed: make(chan struct{})}
	dialer := &net.Dialer{Timeout: Timeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, pausedReadBuffer)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, _, err := gws.NewClient(wsHandler{ws}, &gws.ClientOption{Addr: url, ReadMaxPayloadSize: 64 << 20,
		NewDialer: func() (gws.Dialer, error) { return dialer, nil }})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.Conn = conn
	t.Cleanup(func() { _ = conn.NetConn().Close() })
	return ws, func() { go conn.ReadLoop() }
}

// Connect dials and authenticates with token, failing the test unless ready.
func Connect(t testing.TB, url, token string) *WS {
	t.Helper()
	ws := Dial(t, url)
	ws.Send(map[string]any{"type": "auth", "token": token})
	ws.Expect("ready")
	return ws
}

// Send writes v as one JSON text message.
func (ws *WS) Send(v any) {
	ws.t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			ws.t.Fatal(err)
		}
	}
	if err := ws.Conn.WriteMessage(gws.OpcodeText, b); err != nil {
		ws.t.Fatalf("send: %v", err)
	}
}

// Timeout bounds every wait for a frame; generous because CI machines are
// slow, and only reached when a test is failing anyway.
var Timeout = 10 * time.Second

// Next returns the next frame.
func (ws *WS) Next() Frame {
	ws.t.Helper()
	if len(ws.backlog) > 0 {
		f := ws.backlog[0]
		ws.backlog = ws.backlog[1:]
		return f
	}
	select {
	case f := <-ws.Frames:
		return f
	case <-time.After(Timeout):
		ws.t.Fatalf("no frame within %s", Timeout)
		return nil
	}
}

// Expect returns the next frame, failing unless it has type typ.
func (ws *WS) Expect(typ string) Frame {
	ws.t.Helper()
	f := ws.Next()
	if f.Type() != typ {
		ws.t.Fatalf("got frame %v, want type %q", f, typ)
	}
	return f
}

// ExpectError returns the next frame, failing unless it is an error with code.
func (ws *WS) ExpectError(code string) Frame {
	ws.t.Helper()
	f := ws.Expect("error")
	if f.Str("code") != code {
		ws.t.Fatalf("got error %v, want code %q", f, code)
	}
	if f.Str("message") == "" {
		ws.t.Fatalf("error %v has no message", f)
	}
	return f
}

// Request sends a request and returns its reply (the next frame with that
// id); frames passed over on the way stay queued for Next.
func (ws *WS) Request(req map[string]any) Frame {
	ws.t.Helper()
	ws.Send(req)
	id := fmt.Sprint(req["id"])
	var skipped []Frame
	defer func() { ws.backlog = append(ws.backlog, skipped...) }()
	deadline := time.After(Timeout)
	for {
		var f Frame
		select {
		case f = <-ws.Frames:
		case <-ws.closed:
			// Frames that arrived before the close are still to be read.
			select {
			case f = <-ws.Frames:
			default:
				ws.t.Fatalf("no reply to %v: the connection closed (%v)", req, ws.CloseErr())
			}
		case <-deadline:
			ws.t.Fatalf("no reply to %v within %s", req, Timeout)
		}
		if fid, ok := f["id"].(float64); ok && fmt.Sprint(fid) == id && f.Type() != "message" {
			return f
		}
		skipped = append(skipped, f)
	}
}

// CloseCode waits for the connection to close and returns the close code
// the server sent (0 if it closed without one).
func (ws *WS) CloseCode() uint16 {
	ws.t.Helper()
	select {
	case <-ws.closed:
	case <-time.After(Timeout):
		ws.t.Fatalf("connection still open after %s", Timeout)
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var ce *gws.CloseError
	if errors.As(ws.closeErr, &ce) {
		return ce.Code
	}
	return 0
}

// CloseErr is why the connection closed (nil while it is open): a
// *gws.CloseError when a close frame arrived, else the read error.
func (ws *WS) CloseErr() error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.closeErr
}

// Closed reports whether the connection has closed.
func (ws *WS) Closed() <-chan struct{} { return ws.closed }

// MessagesReceived is how many WebSocket messages arrived.
func (ws *WS) MessagesReceived() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.Messages
}

// Eventually polls cond until it holds or Timeout passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Timeout, what, cond)
}

// EventuallyWithin polls cond until it holds or d passes, for long runs
// that Timeout would cut short under the race detector.
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// StartNode runs a node assembled as `eddy serve` assembles it (broker,
// functions store, admin API) from Config() changed by mutate. With
// cfg.Redis set it is a cluster node.
func StartNode(t testing.TB, mutate ...func(*config.Config)) *Server {
	t.Helper()
	cfg := Config()
	cfg.DataDir = t.TempDir()
	for _, m := range mutate {
		m(&cfg)
	}
	n, err := node.Build(cfg, Logger(t))
	if err != nil {
		t.Fatalf("build node: %v", err)
	}
	t.Cleanup(n.Close)
	return StartWith(t, n.Options)
}
