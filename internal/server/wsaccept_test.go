package server_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/wsframe"
)

const wsHandshake = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

func maskedText(v any) []byte {
	payload, _ := json.Marshal(v)
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	return wsframe.AppendClientFrame(nil, true, wsframe.OpText, payload, mask)
}

func dialTCP(t *testing.T, s *servertest.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// TestWebSocketAcceptPath: the client listener upgrades WebSockets before
// net/http and hands everything else to it unchanged.
func TestWebSocketAcceptPath(t *testing.T) {
	s := servertest.Start(t)

	t.Run("frames sent with the handshake are read", func(t *testing.T) {
		c := dialTCP(t, s)
		tok := servertest.Token(t, "early", nil, nil)
		msg := append([]byte(wsHandshake), maskedText(map[string]any{"type": "auth", "token": tok})...)
		msg = append(msg, maskedText(map[string]any{"type": "ping", "id": 7})...)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		ws := &rawWS{t: t, conn: c, br: bufio.NewReader(c)}
		resp, err := http.ReadResponse(ws.br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		got := map[string]bool{}
		for !got["ready"] || !got["pong"] {
			frames, _, _ := ws.next()
			for _, f := range frames {
				got[f["type"].(string)] = true
			}
		}
	})

	t.Run("other requests reach net/http, keep-alive included", func(t *testing.T) {
		c := dialTCP(t, s)
		br := bufio.NewReader(c)
		for _, path := range []string{"/healthz", "/wsx", "/ws/more", "/healthz"} {
			if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			want := http.StatusOK
			if path != "/healthz" {
				want = http.StatusNotFound
			}
			if resp.StatusCode != want {
				t.Fatalf("%s: %d, want %d", path, resp.StatusCode, want)
			}
		}
		if _, err := s.API().Publish(context.Background(), "a", "e", 1); err != nil {
			t.Fatalf("API on the client listener: %v", err)
		}
	})

	t.Run("malformed handshake is refused", func(t *testing.T) {
		c := dialTCP(t, s)
		if _, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nno colon here\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("got %v %v, want 400", resp, err)
		}
		if _, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
			if n, _ := c.Read(make([]byte, 1)); n != 0 {
				t.Fatal("connection still served after a malformed handshake")
			}
		}
	})

	t.Run("endless headers are cut off", func(t *testing.T) {
		c := dialTCP(t, s)
		go func() {
			_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nX-Long: ")
			chunk := strings.Repeat("x", 64<<10)
			for i := 0; i < 64; i++ { // 4 MiB, far past the limit
				if _, err := io.WriteString(c, chunk); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %v %v, want 431", resp, err)
		}
	})

	t.Run("not a WebSocket request", func(t *testing.T) {
		c := dialTCP(t, s)
		if _, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("got %v %v, want 400", resp, err)
		}
	})
}

// TestSilentConnectionClosedAtShutdown: a connection that never sends its
// request does not outlive the server.
func TestSilentConnectionClosedAtShutdown(t *testing.T) {
	s := servertest.Start(t)
	c := dialTCP(t, s)
	// Make sure the server accepted it before shutting down.
	if _, err := io.WriteString(c, "GET"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read %d, %v: want the connection closed", n, err)
	}
}
