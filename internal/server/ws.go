package server

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/idleread"
	"github.com/eddyrt/eddy/internal/outbox"
	"github.com/eddyrt/eddy/internal/protocol"
)

// writeTimeout bounds how long a peer may go without reading what was
// written to it: the non-blocking socket's remainder waits at most this
// long (a blocking write, where the socket cannot be non-blocking, too).
const writeTimeout = 10 * time.Second

// readBufferSize is each connection's read buffer where it cannot be
// borrowed (connReader): an auth frame with its token fits.
const readBufferSize = 512

// connReader returns the reader of a new WebSocket connection, for gws's
// read loop where the connection is not polled (upgradeWith, wsread.go).
// Over plain TCP it holds no buffer while the client is silent (idleread
// borrows one of idleread.BufferSize, the size an auth frame with its
// token fits in, only while bytes wait), so an idle connection's read side
// costs a 16-byte bufio.Reader, the least gws can read through, instead of
// readBufferSize. Over TLS it is a readBufferSize bufio.Reader.
func connReader(c net.Conn) *bufio.Reader {
	if r, ok := idleread.New(c); ok {
		return bufio.NewReaderSize(r, 16)
	}
	return bufio.NewReaderSize(c, readBufferSize)
}

func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	netConn, br, ip, ok := s.hijackWebSocket(w, r)
	if !ok {
		return
	}
	s.upgrade(netConn, br, r, ip)
}

// hijackWebSocket admits a WebSocket request (origin, draining, connection
// limits) and takes its connection from net/http, with the reader to
// upgrade it through; ok false means the request was answered. The caller
// owns the connection-limit slots of ip from then on.
func (s *Server) hijackWebSocket(w http.ResponseWriter, r *http.Request) (net.Conn, *bufio.Reader, string, bool) {
	if status, msg := s.refuseWebSocket(r); status != 0 {
		http.Error(w, msg, status)
		return nil, nil, "", false
	}
	ip, ok := s.admit(w, r)
	if !ok {
		return nil, nil, "", false
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		s.limits.release(ip)
		http.Error(w, "websocket upgrade not supported here", http.StatusInternalServerError)
		return nil, nil, "", false
	}
	netConn, brw, err := hj.Hijack()
	if err != nil {
		s.limits.release(ip)
		s.log.Debug("websocket hijack failed", "remote", r.RemoteAddr, "err", err)
		return nil, nil, "", false
	}
	// The HTTP server's read timeout is still armed on the hijacked
	// connection (gws clears it after its handshake too; we do not rely on
	// that): a WebSocket lives as long as it answers pings.
	_ = netConn.SetDeadline(time.Time{})
	// Our own small read buffer: gws would take one of its 4 KiB default,
	// held by every idle connection, while client frames are a few hundred
	// bytes (a longer frame just takes more reads). A client that sent
	// frames before our 101 left them in the HTTP server's buffer: keep
	// reading from that one then.
	br := brw.Reader
	if br.Buffered() == 0 {
		br = nil // upgradeWith picks the reader
	}
	return netConn, br, ip, true
}

// refuseWebSocket says why a WebSocket request is refused before the
// upgrade (status and message), or returns 0.
func (s *Server) refuseWebSocket(r *http.Request) (int, string) {
	if s.draining.Load() {
		return http.StatusServiceUnavailable, "server is shutting down"
	}
	if !s.originAllowed(r.Header.Get("Origin")) {
		s.metrics.errorsFor(protocol.CodeForbidden).Inc()
		return http.StatusForbidden, "origin not allowed: " + r.Header.Get("Origin")
	}
	return 0, ""
}

// upgrade completes the handshake on netConn and starts the connection,
// which holds the connection-limit slots of ip (admitted). br holds what
// the client sent past its handshake; nil when nothing was (the usual
// case: the connection's reader is then chosen here).
func (s *Server) upgrade(netConn net.Conn, br *bufio.Reader, r *http.Request, ip string) {
	s.upgradeWith(netConn, br, r, ip, nil, s.newConn)
}

// upgradeWith is upgrade with the connection made by mk (Eddy's or
// Pusher's); wrap, when set, wraps what gws writes to.
func (s *Server) upgradeWith(netConn net.Conn, br *bufio.Reader, r *http.Request, ip string, wrap func(net.Conn) net.Conn, mk func(*gws.Conn, *outbox.Socket) *conn) {
	// Writes go through a non-blocking socket, so that a peer that stops
	// reading holds its own bytes, never a shared writer (outbox.Socket).
	// Under TLS the socket is already there, beneath the TLS connection
	// (wrapTLS), and gws writes TLS records through it.
	wire := netConn
	sock, nonBlocking := socketUnder(netConn)
	// A plain-TCP connection without compression, with nothing read ahead,
	// is read when the node's epoll set says bytes wait (wsread.go), not by
	// a goroutine of its own; its socket is then what the outbox writes to.
	var polled *pollConn
	if !nonBlocking && br == nil && !s.offersDeflate(r) {
		if polled = s.watchConn(netConn); polled != nil {
			netConn, wire, br = polled, polled, noReader
		}
	}
	if br == nil {
		br = connReader(netConn)
	}
	if !nonBlocking {
		sock, nonBlocking = outbox.NewSocket(netConn, writeTimeout)
		if nonBlocking {
			wire = sock
		}
	}
	if wrap != nil {
		wire = wrap(wire)
	}
	socket, err := s.upgrader.UpgradeFromConn(wire, br, r)
	if err != nil {
		if polled != nil {
			polled.stopBeforeReading()
		}
		s.limits.release(ip)
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := mk(socket, sock)
	c.ip = ip // before the read loop starts: cleanup gives the slot back
	c.origin = r.Header.Get("Origin")
	socket.Session().Store("", c)
	if polled != nil {
		polled.startReading(socket)
		return
	}
	// Reading in a fresh goroutine lets the handshake's stack go.
	go socket.ReadLoop()
}

// originAllowed checks the Origin header against allowed_origins; an empty
// list allows any origin (development default, documented).
func (s *Server) originAllowed(origin string) bool {
	return originIn(s.cfg.AllowedOrigins, origin) || s.anyAppAllowsOrigin(origin)
}

// originIn checks origin against patterns; an empty list allows any.
func originIn(patterns []string, origin string) bool {
	if len(patterns) == 0 || origin == "" {
		return true
	}
	for _, p := range patterns {
		if p == "*" || strings.EqualFold(p, origin) || auth.Match(p, origin) {
			return true
		}
	}
	return false
}

// wsHandler adapts gws events to connections.
type wsHandler struct{ s *Server }

func connOf(socket *gws.Conn) *conn {
	v, _ := socket.Session().Load("")
	c, _ := v.(*conn)
	return c
}

func (h *wsHandler) OnOpen(*gws.Conn) {}

func (h *wsHandler) OnClose(socket *gws.Conn, err error) {
	if c := connOf(socket); c != nil {
		c.cleanup()
	}
}

func (h *wsHandler) OnPing(socket *gws.Conn, payload []byte) {
	if c := connOf(socket); c != nil {
		c.touch()
	}
	_ = socket.WritePong(payload)
}

func (h *wsHandler) OnPong(socket *gws.Conn, _ []byte) {
	if c := connOf(socket); c != nil {
		c.touch()
	}
}

func (h *wsHandler) OnMessage(socket *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	c := connOf(socket)
	if c == nil || !c.acceptMessage(msg.Opcode == gws.OpcodeText, msg.Bytes()) {
		return
	}
	// Handling a frame (JSON, JWT, subscribe, functions) needs a deep stack.
	// A handler goroutine runs it while the reader waits: frames stay
	// strictly in order, and the reader, which lives as long as the
	// connection, keeps the small stack an idle connection needs instead of
	// the largest one it ever used. Handlers are reused, so their grown
	// stacks are too.
	h.s.handlers.run(func() { c.runFrame(msg.Bytes()) }, c.handled)
	<-c.handled
}

// acceptMessage notes that a message came and says whether to handle it:
// a text message that is not valid UTF-8 closes the connection instead.
func (c *conn) acceptMessage(text bool, b []byte) bool {
	c.touch()
	if text && !utf8.Valid(b) {
		// RFC 6455 8.1 says to fail the connection (gws's own check is off:
		// see the upgrader). Binary frames are not text: their JSON is
		// checked like any other frame's.
		c.closeWith(protocol.DisconnectInvalidText, false)
		return false
	}
	return true
}

// handlerPool runs frame handlers on reusable goroutines. A handler that
// finds no idle one starts another; idle ones leave after handlerIdle, so
// a burst of connections does not leave goroutines behind.
type handlerPool struct {
	work chan handlerJob
}

type handlerJob struct {
	f    func()
	done chan<- struct{}
}

const handlerIdle = 10 * time.Second

func newHandlerPool() *handlerPool { return &handlerPool{work: make(chan handlerJob)} }

// run runs f on a handler goroutine and signals done, unless nil, when it
// returned.
func (p *handlerPool) run(f func(), done chan<- struct{}) {
	job := handlerJob{f, done}
	select {
	case p.work <- job:
	default:
		go p.handle(job)
	}
}

func (p *handlerPool) handle(job handlerJob) {
	idle := time.NewTimer(handlerIdle)
	defer idle.Stop()
	for {
		job.f()
		if job.done != nil {
			job.done <- struct{}{}
		}
		idle.Reset(handlerIdle)
		select {
		case job = <-p.work:
		case <-idle.C:
			return
		}
	}
}

// connSlot is a one-entry gws session store: each socket only needs to find
// its *conn, and gws's default map costs far more per idle connection.
type connSlot struct{ c any }

func (s *connSlot) Len() int                       { return 1 }
func (s *connSlot) Load(string) (any, bool)        { return s.c, s.c != nil }
func (s *connSlot) Delete(string)                  { s.c = nil }
func (s *connSlot) Store(_ string, v any)          { s.c = v }
func (s *connSlot) Range(f func(string, any) bool) { f("", s.c) }

// socketWriter is the outbox's transport over a gws connection. Calls come
// from one goroutine at a time (the outbox's contract).
type socketWriter struct {
	socket   *gws.Conn
	deadline int64 // unix nanoseconds of the write deadline last set
	// onInvalid is told of each frame dropped for not being valid UTF-8.
	onInvalid func(frame []byte)
}

// nonBlockingWriter is a socketWriter over an outbox.Socket: its writes
// never block, and it tells the outbox what the socket still holds.
type nonBlockingWriter struct {
	socketWriter
	sock *outbox.Socket
}

func (w *nonBlockingWriter) WriteFrames(frames [][]byte) error {
	if frames = w.onlyText(frames); len(frames) == 0 {
		return nil
	}
	return w.writeFrames(frames)
}
func (w *nonBlockingWriter) WritePing() error          { return w.socket.WritePing(nil) }
func (w *nonBlockingWriter) Backlog() int              { return w.sock.Backlog() }
func (w *nonBlockingWriter) WhenWritten(f func()) bool { return w.sock.WhenWritten(f) }

var newline = []byte{'\n'}

// armDeadline keeps the write deadline between writeTimeout-1s and
// writeTimeout away, setting it at most once a second: setting it on every
// write cost a tenth of a busy fan-out's CPU.
func (w *socketWriter) armDeadline() {
	now := time.Now()
	if w.deadline-now.UnixNano() > int64(writeTimeout-time.Second) {
		return
	}
	d := now.Add(writeTimeout)
	w.deadline = d.UnixNano()
	_ = w.socket.SetWriteDeadline(d)
}

func (w *socketWriter) WriteFrames(frames [][]byte) error {
	if frames = w.onlyText(frames); len(frames) == 0 {
		return nil
	}
	w.armDeadline()
	return w.writeFrames(frames)
}

func (w *socketWriter) writeFrames(frames [][]byte) error {
	if len(frames) == 1 {
		return w.socket.WriteMessage(gws.OpcodeText, frames[0])
	}
	// The scratch for the parts is pooled, not kept per connection: an
	// idle connection would hold it for nothing (its ready and subscribed
	// replies leave together, so nearly every connection made one).
	pp := writeParts.Get().(*[][]byte)
	parts := (*pp)[:0]
	for i, f := range frames {
		if i > 0 {
			parts = append(parts, newline)
		}
		parts = append(parts, f)
	}
	err := w.socket.Writev(gws.OpcodeText, parts...)
	clear(parts)
	if cap(parts) <= 256 {
		*pp = parts[:0]
		writeParts.Put(pp)
	}
	return err
}

var writeParts = sync.Pool{New: func() any { return new([][]byte) }}

// onlyText returns frames without those that are not valid UTF-8. Such a
// text message fails the connection that receives it (a browser closes with
// 1007; gws, checking on write, closed it itself with 1001): one bad frame
// in a fan-out would disconnect every subscriber of its channel, and again
// each time they recovered it from history. Entry checks keep such frames
// out; this keeps a miss from costing more than the frame. It allocates
// only when it drops one. Other write errors are the socket's own and still
// close it (OnWriteError).
func (w *socketWriter) onlyText(frames [][]byte) [][]byte {
	for i, f := range frames {
		if utf8.Valid(f) {
			continue
		}
		kept := append(make([][]byte, 0, len(frames)-1), frames[:i]...)
		for _, f := range frames[i:] {
			if utf8.Valid(f) {
				kept = append(kept, f)
			} else if w.onInvalid != nil {
				w.onInvalid(f)
			}
		}
		return kept
	}
	return frames
}

func (w *socketWriter) WritePing() error {
	w.armDeadline()
	return w.socket.WritePing(nil)
}

// connSet is the node's set of open connections, sharded to keep the
// connect path off one lock.
type connSet struct {
	shards [32]struct {
		mu    sync.Mutex
		conns map[*conn]struct{}
	}
	mu    sync.Mutex
	cond  *sync.Cond
	count int
}

func (cs *connSet) init() {
	for i := range cs.shards {
		cs.shards[i].conns = make(map[*conn]struct{})
	}
	cs.cond = sync.NewCond(&cs.mu)
}

func (cs *connSet) add(c *conn) {
	sh := &cs.shards[c.seq%uint64(len(cs.shards))]
	sh.mu.Lock()
	sh.conns[c] = struct{}{}
	sh.mu.Unlock()
	cs.mu.Lock()
	cs.count++
	cs.mu.Unlock()
}

func (cs *connSet) remove(c *conn) {
	sh := &cs.shards[c.seq%uint64(len(cs.shards))]
	sh.mu.Lock()
	_, ok := sh.conns[c]
	delete(sh.conns, c)
	sh.mu.Unlock()
	if ok {
		cs.mu.Lock()
		cs.count--
		if cs.count == 0 {
			cs.cond.Broadcast()
		}
		cs.mu.Unlock()
	}
}

func (cs *connSet) len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.count
}

// each calls f for every connection, without holding a lock during f.
func (cs *connSet) each(f func(*conn)) {
	var batch []*conn
	for i := range cs.shards {
		sh := &cs.shards[i]
		sh.mu.Lock()
		batch = batch[:0]
		for c := range sh.conns {
			batch = append(batch, c)
		}
		sh.mu.Unlock()
		for _, c := range batch {
			f(c)
		}
	}
}

func (cs *connSet) waitEmpty(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		cs.mu.Lock()
		for cs.count > 0 && ctx.Err() == nil {
			cs.cond.Wait()
		}
		cs.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		cs.mu.Lock()
		cs.cond.Broadcast()
		cs.mu.Unlock()
		return ctx.Err()
	}
}
