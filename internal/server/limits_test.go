package server_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// upgradeFrom attempts a WebSocket handshake from the local address
// localIP and returns the status and, for a refusal, its JSON error. A
// 101 leaves the connection open until the test ends.
func upgradeFrom(t *testing.T, s *servertest.Server, localIP string) (int, api.ErrorDetail) {
	t.Helper()
	d := net.Dialer{Timeout: servertest.Timeout}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	nc, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(servertest.Timeout))
	_, err = io.WriteString(nc, "GET /ws HTTP/1.1\r\nHost: eddy\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	var eb api.ErrorBody
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		nc.Close()
	}
	return resp.StatusCode, eb.Error
}

// metricValue scrapes one sample of the server's /metrics, e.g.
// `eddy_connections_refused_total{reason="max_connections"}`.
func metricValue(t *testing.T, s *servertest.Server, sample string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.APIBase()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+servertest.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// TestIdleKeepAliveClosedByServer: an HTTP connection left idle after a
// request is closed by the server once http_idle_timeout passes.
func TestIdleKeepAliveClosedByServer(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.HTTPIdleTimeout = 200 * time.Millisecond })
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	if _, err := io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: eddy\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The read deadline only guards against a hang: a server that keeps
	// the connection fails with a timeout instead of io.EOF.
	_ = nc.SetReadDeadline(time.Now().Add(servertest.Timeout))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle keep-alive connection: read %v, want io.EOF (closed by the server)", err)
	}
}

// TestWebSocketOutlivesHTTPTimeouts: the HTTP server's read and idle
// timeouts do not reach a connection once it is a WebSocket.
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.HTTPReadTimeout = 100 * time.Millisecond
		c.HTTPIdleTimeout = 300 * time.Millisecond
	})
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	// Await a keep-alive connection's idle close: by then both timeouts
	// have passed for the WebSocket too.
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	_, _ = io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: eddy\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_ = nc.SetReadDeadline(time.Now().Add(servertest.Timeout))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("keep-alive connection: %v, want closed", err)
	}
	if f := ws.Request(map[string]any{"type": "ping", "id": 1}); f.Type() != "pong" {
		t.Fatalf("WebSocket after the HTTP timeouts: %v, want pong", f)
	}
}

// TestMaxConnectionsRefusesTheNextWith503: the node refuses the
// connection past max_connections before upgrading, with a JSON error
// naming the limit, counts it, and accepts again once one closes.
func TestMaxConnectionsRefusesTheNextWith503(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxConnections = 2 })
	a := servertest.Connect(t, s.WSURL, servertest.Token(t, "a", nil, nil))
	servertest.Connect(t, s.WSURL, servertest.Token(t, "b", nil, nil))
	status, e := upgradeFrom(t, s, "")
	if status != http.StatusServiceUnavailable || e.Code != "limit_exceeded" || !strings.Contains(e.Message, "max_connections (2)") {
		t.Fatalf("third connection: %d %+v, want 503 limit_exceeded naming max_connections", status, e)
	}
	if v := metricValue(t, s, `eddy_connections_refused_total{reason="max_connections"}`); v != "1" {
		t.Fatalf("refusals counted: %q, want 1", v)
	}
	_ = a.Conn.NetConn().Close()
	servertest.Eventually(t, "a connection accepted after one closed", func() bool {
		status, _ := upgradeFrom(t, s, "")
		return status == http.StatusSwitchingProtocols
	})
}

// TestMaxConnectionsPerIPRefusesTheNextWith429: one address past
// max_connections_per_ip is refused with a named error while another
// address still connects; closing one lets the first in again.
func TestMaxConnectionsPerIPRefusesTheNextWith429(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxConnectionsPerIP = 2 })
	if st, _ := upgradeFrom(t, s, "127.0.0.1"); st != http.StatusSwitchingProtocols {
		t.Fatalf("first: %d", st)
	}
	a := servertest.Connect(t, s.WSURL, servertest.Token(t, "a", nil, nil)) // from 127.0.0.1 too
	status, e := upgradeFrom(t, s, "127.0.0.1")
	if status != http.StatusTooManyRequests || e.Code != "limit_exceeded" || !strings.Contains(e.Message, "max_connections_per_ip (2)") {
		t.Fatalf("third from one address: %d %+v, want 429 limit_exceeded naming max_connections_per_ip", status, e)
	}
	if st, e := upgradeFrom(t, s, "127.0.0.2"); st != http.StatusSwitchingProtocols {
		t.Fatalf("from another address: %d %+v, want accepted", st, e)
	}
	if v := metricValue(t, s, `eddy_connections_refused_total{reason="max_connections_per_ip"}`); v != "1" {
		t.Fatalf("refusals counted: %q, want 1", v)
	}
	_ = a.Conn.NetConn().Close()
	servertest.Eventually(t, "the address accepted again after one closed", func() bool {
		status, _ := upgradeFrom(t, s, "127.0.0.1")
		return status == http.StatusSwitchingProtocols
	})
}

// tryConnect dials and authenticates, returning the first frame and the
// connection.
func tryConnect(t *testing.T, s *servertest.Server, user string) (servertest.Frame, *servertest.WS) {
	t.Helper()
	ws := servertest.Dial(t, s.WSURL)
	ws.Send(map[string]any{"type": "auth", "token": servertest.Token(t, user, nil, nil)})
	return ws.Next(), ws
}

// TestMaxConnectionsPerUserClosesTheNextWith4010: a user's connection
// past max_connections_per_user is told limit_exceeded and closed with
// 4010; other users are unaffected, and the user gets in again once one of
// its connections closes.
func TestMaxConnectionsPerUserClosesTheNextWith4010(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxConnectionsPerUser = 2 })
	a1 := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	f, ws := tryConnect(t, s, "alice")
	if f.Type() != "error" || f.Str("code") != "limit_exceeded" || !strings.Contains(f.Str("message"), "max_connections_per_user (2)") {
		t.Fatalf("third connection of alice: %v, want error limit_exceeded naming max_connections_per_user", f)
	}
	if code := ws.CloseCode(); code != 4010 {
		t.Fatalf("close code %d, want 4010", code)
	}
	servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", nil, nil))
	if v := metricValue(t, s, `eddy_connections_refused_total{reason="max_connections_per_user"}`); v != "1" {
		t.Fatalf("refusals counted: %q, want 1", v)
	}
	if v := metricValue(t, s, `eddy_disconnects_total{code="4010"}`); v != "1" {
		t.Fatalf("4010 disconnects counted: %q, want 1", v)
	}
	_ = a1.Conn.NetConn().Close()
	servertest.Eventually(t, "alice accepted again after one of hers closed", func() bool {
		f, ws := tryConnect(t, s, "alice")
		_ = ws.Conn.NetConn().Close()
		return f.Type() == "ready"
	})
}
