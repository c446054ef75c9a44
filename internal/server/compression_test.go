package server_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// rawWS is a WebSocket client written out by hand, so the test sees what a
// library would hide: the negotiated extensions and each frame's RSV1 bit
// (set on compressed messages).
type rawWS struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	ext  string // Sec-WebSocket-Extensions the server answered
}

func dialRaw(t *testing.T, s *servertest.Server, offerDeflate bool) *rawWS {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if offerDeflate {
		req += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return &rawWS{t: t, conn: conn, br: br, ext: resp.Header.Get("Sec-WebSocket-Extensions")}
}

// send writes one masked text frame; compressed deflates it with RSV1 set.
func (w *rawWS) send(v any, compressed bool) {
	w.t.Helper()
	payload, _ := json.Marshal(v)
	head := byte(0x81)
	if compressed {
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		_, _ = fw.Write(payload)
		_ = fw.Flush()
		payload = bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
		head |= 0x40
	}
	frame := []byte{head}
	switch n := len(payload); {
	case n < 126:
		frame = append(frame, 0x80|byte(n))
	default:
		frame = append(frame, 0x80|126, byte(n>>8), byte(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame = append(frame, mask[:]...)
	for i, c := range payload {
		frame = append(frame, c^mask[i%4])
	}
	if _, err := w.conn.Write(frame); err != nil {
		w.t.Fatal(err)
	}
}

// next reads one data message: its frames (split on newlines), and whether
// it came compressed and how long it was on the wire.
func (w *rawWS) next() (frames []map[string]any, compressed bool, wire int) {
	w.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		w.t.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(w.br, b[:])
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(w.br, b[:])
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(w.br, payload); err != nil {
		w.t.Fatal(err)
	}
	if op := h[0] & 0x0f; op != 1 {
		if op == 9 { // ping: skip it
			return w.next()
		}
		w.t.Fatalf("opcode %d, want a text message", op)
	}
	compressed = h[0]&0x40 != 0
	text := payload
	if compressed {
		r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader([]byte{0, 0, 0xff, 0xff})))
		var err error
		if text, err = io.ReadAll(r); err != nil && err != io.ErrUnexpectedEOF {
			w.t.Fatalf("inflate: %v", err)
		}
	}
	for _, line := range bytes.Split(text, []byte("\n")) {
		var f map[string]any
		if err := json.Unmarshal(line, &f); err != nil {
			w.t.Fatalf("frame %q: %v", line, err)
		}
		frames = append(frames, f)
	}
	return frames, compressed, n
}

func (w *rawWS) expect(typ string) (map[string]any, bool, int) {
	w.t.Helper()
	frames, compressed, wire := w.next()
	if len(frames) != 1 || frames[0]["type"] != typ {
		w.t.Fatalf("got %v, want one %s", frames, typ)
	}
	return frames[0], compressed, wire
}

// chatData is a chat-like payload long enough to be worth compressing.
func chatData(n int) map[string]any {
	var msgs []map[string]any
	for i := 0; i < n; i++ {
		msgs = append(msgs, map[string]any{"user": fmt.Sprintf("user-%d", i%7), "text": "hello everyone, how is it going today?", "room": "chat:lobby", "ts": 1700000000000 + i})
	}
	return map[string]any{"messages": msgs}
}

// TestCompressionNegotiation: permessage-deflate is agreed only when the
// server has compression on and the client offers it; compressed messages
// arrive intact, both ways.
func TestCompressionNegotiation(t *testing.T) {
	for _, c := range []struct {
		name       string
		on, offer  bool
		negotiated bool
	}{
		{"on and offered", true, true, true},
		{"on, not offered", true, false, false},
		{"off, offered", false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := servertest.Start(t, func(cfg *config.Config) { cfg.Compression = c.on })
			ws := dialRaw(t, s, c.offer)
			if got := strings.Contains(ws.ext, "permessage-deflate"); got != c.negotiated {
				t.Fatalf("extensions %q: negotiated %v, want %v", ws.ext, got, c.negotiated)
			}
			ws.send(map[string]any{"type": "auth", "token": servertest.Token(t, "u", nil, []string{"room:*"})}, false)
			ws.expect("ready")
			ws.send(map[string]any{"type": "subscribe", "id": 1, "channel": "room:1"}, false)
			ws.expect("subscribed")

			data := chatData(20)
			if _, err := s.API().Publish(context.Background(), "room:1", "say", data); err != nil {
				t.Fatal(err)
			}
			m, compressed, wire := ws.expect("message")
			if compressed != c.negotiated {
				t.Fatalf("message compressed %v, want %v", compressed, c.negotiated)
			}
			got, _ := json.Marshal(m["data"])
			want, _ := json.Marshal(data)
			if !bytes.Equal(got, want) {
				t.Fatalf("data arrived changed:\n%s\nwant\n%s", got, want)
			}
			if compressed && wire*2 > len(want) {
				t.Fatalf("compressed message is %d bytes for %d of data", wire, len(want))
			}
			if !c.negotiated {
				return
			}
			// A compressed publish from the client is read intact too.
			ws.send(map[string]any{"type": "publish", "id": 2, "channel": "room:1", "event": "say", "data": data}, true)
			var sawAck, sawMsg bool
			for !sawAck || !sawMsg {
				frames, _, _ := ws.next()
				for _, f := range frames {
					switch f["type"] {
					case "ack":
						sawAck = true
					case "message":
						got, _ := json.Marshal(f["data"])
						if !bytes.Equal(got, want) {
							t.Fatalf("client-compressed data arrived changed: %s", got)
						}
						sawMsg = true
					default:
						t.Fatalf("unexpected frame %v", f)
					}
				}
			}
		})
	}
}
