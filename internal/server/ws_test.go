package server_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/servertest"
)

// TestFramesSentWithTheUpgradeRequest: a client may send its first frames
// in the same packet as the HTTP upgrade, before it has seen the 101. The
// server must not lose them in the HTTP server's read buffer.
func TestFramesSentWithTheUpgradeRequest(t *testing.T) {
	s := servertest.Start(t)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	auth := []byte(`{"type":"auth","token":"` + servertest.Token(t, "eager", nil, nil) + `"}`)
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	packet := append([]byte(req), clientFrame(auth)...)
	if _, err := conn.Write(packet); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(servertest.Timeout))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// One unmasked server frame: 2-byte header (short payload) then JSON.
	head := make([]byte, 2)
	if _, err := br.Read(head[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := br.Read(head[1:]); err != nil {
		t.Fatal(err)
	}
	n := int(head[1] & 0x7f)
	if n == 126 {
		b := make([]byte, 2)
		_, _ = br.Read(b)
		n = int(b[0])<<8 | int(b[1])
	}
	payload := make([]byte, n)
	for got := 0; got < n; {
		k, err := br.Read(payload[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += k
	}
	if !strings.Contains(string(payload), `"type":"ready"`) {
		t.Fatalf("first frame %s, want ready", payload)
	}
}

// clientFrame encodes p as one masked text frame (zero mask key).
func clientFrame(p []byte) []byte {
	b := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, p...)
}
