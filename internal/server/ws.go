package server

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/protocol"
)

// writeTimeout bounds one socket write, so a peer that stopped reading
// cannot hold a flushing goroutine forever.
const writeTimeout = 10 * time.Second

// readBufferSize is each connection's read buffer: an auth frame with its
// token fits, and an idle connection holds no more than that.
const readBufferSize = 512

func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	if !s.originAllowed(r.Header.Get("Origin")) {
		s.metrics.errors.WithLabelValues(protocol.CodeForbidden).Inc()
		http.Error(w, "origin not allowed: "+r.Header.Get("Origin"), http.StatusForbidden)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "websocket upgrade not supported here", http.StatusInternalServerError)
		return
	}
	netConn, brw, err := hj.Hijack()
	if err != nil {
		s.log.Debug("websocket hijack failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// Our own small read buffer: gws would take one of its 4 KiB default,
	// held by every idle connection, while client frames are a few hundred
	// bytes (a longer frame just takes more reads). A client that sent
	// frames before our 101 left them in the HTTP server's buffer: keep
	// reading from that one then.
	br := brw.Reader
	if br.Buffered() == 0 {
		br = bufio.NewReaderSize(netConn, readBufferSize)
	}
	socket, err := s.upgrader.UpgradeFromConn(netConn, br, r)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := s.newConn(socket)
	socket.Session().Store("", c)
	// Reading in a fresh goroutine lets the HTTP handler's stack go.
	go socket.ReadLoop()
}

// originAllowed checks the Origin header against allowed_origins; an empty
// list allows any origin (development default, documented).
func (s *Server) originAllowed(origin string) bool {
	if len(s.cfg.AllowedOrigins) == 0 || origin == "" {
		return true
	}
	for _, p := range s.cfg.AllowedOrigins {
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
	if c == nil {
		return
	}
	c.touch()
	// Handling a frame (JSON, JWT, subscribe, functions) needs a deep stack.
	// A handler goroutine runs it while the reader waits: frames stay
	// strictly in order, and the reader, which lives as long as the
	// connection, keeps the small stack an idle connection needs instead of
	// the largest one it ever used. Handlers are reused, so their grown
	// stacks are too.
	h.s.handlers.run(func() { c.runFrame(msg.Bytes()) }, c.handled)
	<-c.handled
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

// run runs f on a handler goroutine and signals done when it returned.
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
		job.done <- struct{}{}
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
	parts    [][]byte // scratch
	deadline int64    // unix nanoseconds of the write deadline last set
}

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
	w.armDeadline()
	if len(frames) == 1 {
		return w.socket.WriteMessage(gws.OpcodeText, frames[0])
	}
	parts := w.parts[:0]
	for i, f := range frames {
		if i > 0 {
			parts = append(parts, newline)
		}
		parts = append(parts, f)
	}
	err := w.socket.Writev(gws.OpcodeText, parts...)
	clear(parts)
	if cap(parts) <= 256 {
		w.parts = parts[:0]
	} else {
		w.parts = nil
	}
	return err
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
