package wsframe

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// The reference for the Reader is gws itself: the same bytes read by gws's
// read loop (a server without compression and UTF-8 checks, as the server
// runs it) must give the same messages, pings and pongs, in order, and the
// same close frame.

// outcome is what a connection's read side made of some bytes: its events
// and the close frame it answered with ("eof" when the bytes ran out).
type outcome struct {
	Events []string
	Close  string
}

// fuzzMax is the payload limit of both readers in the comparison.
const fuzzMax = 1000

// byGWS runs gws's read loop over in, ok false if gws panicked (a 64-bit
// length with its top bit set makes it index with a negative length).
func byGWS(t testing.TB, in []byte) (out outcome, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	h := &recorder{}
	up := gws.NewUpgrader(h, &gws.ServerOption{ReadMaxPayloadSize: fuzzMax, CheckUtf8Enabled: false})
	c := &memConn{in: bytes.NewReader(in)}
	req := &http.Request{Method: http.MethodGet, Header: http.Header{}}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	socket, err := up.UpgradeFromConn(c, bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("gws upgrade: %v", err)
	}
	socket.ReadLoop()
	out.Events = h.events
	out.Close = closeWritten(t, c.out.Bytes())
	return out, true
}

// closeWritten returns the payload of the close frame gws wrote after its
// handshake answer, "eof" for the one it writes when the bytes ran out.
func closeWritten(t testing.TB, w []byte) string {
	i := bytes.Index(w, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatalf("no handshake answer in %q", w)
	}
	f := w[i+4:]
	if len(f) < 2 || f[0] != 0x88 || int(f[1]) != len(f)-2 {
		t.Fatalf("gws wrote %x after the handshake, not one close frame", f)
	}
	p := f[2:]
	if len(p) >= 2 && p[0] == 0x03 && p[1] == 0xe8 && (string(p[2:]) == "EOF" || string(p[2:]) == "unexpected EOF") {
		return "eof"
	}
	return hex.EncodeToString(p)
}

// byReader feeds in to a Reader, chunks[i%len] bytes at a time (the sizes
// of successive reads), and answers as the server does.
func byReader(in []byte, chunks []int) outcome {
	var out outcome
	r := &Reader{Decoder: Decoder{MaxPayload: fuzzMax}}
	defer r.Reset()
	for i := 0; ; i++ {
		if len(in) == 0 {
			out.Close = "eof"
			return out
		}
		space := r.Buffer()
		n := len(space)
		if len(chunks) > 0 {
			n = min(n, max(chunks[i%len(chunks)], 1))
		}
		n = copy(space[:n], in)
		in = in[n:]
		r.Filled(n)
		if i%3 == 2 && r.Buffered() == 0 {
			r.Release() // as after a read that found nothing
		}
		for {
			ev, ok, err := r.Next()
			if err != nil {
				e := err.(*Error)
				p := append([]byte{byte(e.Code >> 8), byte(e.Code)}, e.Reason...)
				out.Close = hex.EncodeToString(p[:min(len(p), 125)])
				return out
			}
			if !ok {
				break
			}
			switch ev.Kind {
			case Message:
				out.Events = append(out.Events, fmt.Sprintf("message %d %x", ev.Op, ev.Payload))
			case Ping:
				out.Events = append(out.Events, fmt.Sprintf("ping %x", ev.Payload))
			case Pong:
				out.Events = append(out.Events, fmt.Sprintf("pong %x", ev.Payload))
			case Close:
				var p []byte
				if code := CloseReply(ev.Payload); code != 0 {
					p = []byte{byte(code >> 8), byte(code)}
				}
				out.Close = hex.EncodeToString(p)
				return out
			}
		}
	}
}

type recorder struct{ events []string }

func (r *recorder) OnOpen(*gws.Conn)         {}
func (r *recorder) OnClose(*gws.Conn, error) {}
func (r *recorder) OnPing(_ *gws.Conn, p []byte) {
	r.events = append(r.events, fmt.Sprintf("ping %x", p))
}
func (r *recorder) OnPong(_ *gws.Conn, p []byte) {
	r.events = append(r.events, fmt.Sprintf("pong %x", p))
}
func (r *recorder) OnMessage(_ *gws.Conn, m *gws.Message) {
	r.events = append(r.events, fmt.Sprintf("message %d %x", m.Opcode, m.Bytes()))
	m.Close()
}

// memConn is a connection whose peer sent in and then closed; what is
// written to it is kept.
type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// frame builds a masked client frame.
func frame(fin bool, op Opcode, payload []byte) []byte {
	return AppendClientFrame(nil, fin, op, payload, [4]byte{0x37, 0xfa, 0x21, 0x3d})
}

func seeds() [][]byte {
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	long := bytes.Repeat([]byte("x"), 300)
	return [][]byte{
		frame(true, OpText, []byte(`{"type":"auth","token":"abc"}`)),
		cat(frame(true, OpText, []byte("a")), frame(true, OpBinary, long), frame(true, OpPing, []byte("p"))),
		cat(frame(false, OpText, []byte("he")), frame(true, OpPing, nil), frame(false, OpContinuation, []byte("ll")), frame(true, OpContinuation, []byte("o"))),
		cat(frame(false, OpText, []byte("he")), frame(true, OpText, []byte("x"))),
		frame(true, OpContinuation, []byte("x")),
		frame(true, OpClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}),
		frame(true, OpClose, []byte{0x0f, 0xa0}),
		frame(true, OpClose, []byte{0x03}),
		frame(true, OpClose, nil),
		frame(true, OpClose, []byte{0x03, 0xed}),
		frame(false, OpPing, nil),
		frame(true, 3, []byte("r")),
		frame(true, OpText, bytes.Repeat([]byte("y"), fuzzMax+1)),
		cat(frame(false, OpText, bytes.Repeat([]byte("y"), 600)), frame(true, OpContinuation, bytes.Repeat([]byte("y"), 600))),
		{0x81, 0x03, 'a', 'b', 'c'}, // not masked
		{0xc1, 0x80, 1, 2, 3, 4},    // RSV1
		cat(frame(true, OpPong, []byte("q")), frame(true, OpText, []byte("after"))[:5]),
	}
}

func FuzzReaderMatchesGWS(f *testing.F) {
	for i, s := range seeds() {
		f.Add(s, uint16(i*37+1), uint16(7))
	}
	// Found by the fuzzer: a 64-bit length with its top bit set (gws panics).
	f.Add([]byte("0\xff\xff00000000000"), uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, c1, c2 uint16) {
		want, ok := byGWS(t, in)
		if !ok {
			t.Skip("gws panicked on this input")
		}
		for _, chunks := range [][]int{nil, {int(c1 % 300), int(c2 % 300)}, {1}} {
			got := byReader(in, chunks)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("input %x, reads of %v:\n got %+v\nwant %+v", in, chunks, got, want)
			}
		}
	})
}

func TestReaderMatchesGWSOnSeeds(t *testing.T) {
	for _, s := range seeds() {
		want, ok := byGWS(t, s)
		if !ok {
			t.Fatalf("gws panicked on %x", s)
		}
		for _, chunks := range [][]int{nil, {1}, {3, 5}, {200}} {
			if got := byReader(s, chunks); !reflect.DeepEqual(got, want) {
				t.Errorf("input %x, reads of %v:\n got %+v\nwant %+v", s, chunks, got, want)
			}
		}
	}
}
