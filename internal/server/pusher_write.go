package server

import (
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/outbox"
)

// Pusher has no batching: every event is its own WebSocket message. Written
// one by one through gws, each would be a write system call, the cost of
// fan-out (bench/README.md). So a Pusher connection's queued events are
// framed here, one WebSocket frame each, and leave in one write. gws's own
// writes (pong, close, ping) and these share a lock on the wire, so frames
// never interleave; after gws wrote a close frame nothing more is written.
// Under permessage-deflate this path is off (gws keeps the compression
// state): each event goes through gws as one message.

// frameWire is what gws writes to, shared with the frame writer.
type frameWire struct {
	net.Conn
	mu     sync.Mutex
	frames bool // the handshake is over: writes are WebSocket frames
	closed bool // a close frame went out
}

// upgraded marks the end of the HTTP handshake.
func (w *frameWire) upgraded() {
	w.mu.Lock()
	w.frames = true
	w.mu.Unlock()
}

func (w *frameWire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// gws writes one whole frame per call: its first byte has the opcode.
	if w.frames && len(p) > 0 && p[0]&0x0f == byte(gws.OpcodeCloseConnection) {
		w.closed = true
	}
	return w.Conn.Write(p)
}

// writeFrames writes data frames the caller built, unless the connection closed.
func (w *frameWire) writeFrames(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return gws.ErrConnClosed
	}
	_, err := w.Conn.Write(b)
	return err
}

// offersDeflate reports whether the connection may negotiate
// permessage-deflate (the server allows it and the client offers it).
func (s *Server) offersDeflate(r *http.Request) bool {
	return s.cfg.Compression && strings.Contains(strings.ToLower(r.Header.Get("Sec-WebSocket-Extensions")), "permessage-deflate")
}

// appendTextFrame appends one unmasked, final text frame holding payload.
func appendTextFrame(b, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, 0x81, byte(n))
	case n < 1<<16:
		b = append(b, 0x81, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x81, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, payload...)
}

// pusherWriter writes each frame as one WebSocket message: all in one write
// through wire, or through gws one by one when wire is nil (deflate).
type pusherWriter struct {
	socketWriter
	wire *frameWire
	buf  []byte
}

func (w *pusherWriter) WriteFrames(frames [][]byte) error {
	w.armDeadline()
	return w.each(frames)
}

func (w *pusherWriter) each(frames [][]byte) error {
	frames = w.onlyText(frames)
	if w.wire == nil {
		for _, f := range frames {
			if err := w.socket.WriteMessage(gws.OpcodeText, f); err != nil {
				return err
			}
		}
		return nil
	}
	b := w.buf[:0]
	for _, f := range frames {
		b = appendTextFrame(b, f)
	}
	err := w.wire.writeFrames(b)
	if cap(b) <= 64<<10 {
		w.buf = b[:0]
	} else {
		w.buf = nil
	}
	return err
}

type pusherNBWriter struct {
	pusherWriter
	sock *outbox.Socket
}

func (w *pusherNBWriter) WriteFrames(frames [][]byte) error { return w.each(frames) }
func (w *pusherNBWriter) WritePing() error                  { return w.socket.WritePing(nil) }
func (w *pusherNBWriter) Backlog() int                      { return w.sock.Backlog() }
func (w *pusherNBWriter) WhenWritten(f func()) bool         { return w.sock.WhenWritten(f) }
