package server

import (
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
	socket, err := s.upgrader.Upgrade(w, r)
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
	c.handleFrame(context.Background(), msg.Bytes())
}

// connSlot is a one-entry gws session store: each socket only needs to find
// its *conn, and gws's default map costs far more per idle connection.
type connSlot struct{ c any }

func (s *connSlot) Len() int                 { return 1 }
func (s *connSlot) Load(string) (any, bool)  { return s.c, s.c != nil }
func (s *connSlot) Delete(string)            { s.c = nil }
func (s *connSlot) Store(_ string, v any)    { s.c = v }
func (s *connSlot) Range(f func(string, any) bool) { f("", s.c) }

// socketWriter is the outbox's transport over a gws connection.
type socketWriter struct {
	socket *gws.Conn
	parts  [][]byte // scratch, used only by the one flushing goroutine
}

var newline = []byte{'\n'}

func (w *socketWriter) WriteFrames(frames [][]byte) error {
	_ = w.socket.SetWriteDeadline(time.Now().Add(writeTimeout))
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
	_ = w.socket.SetWriteDeadline(time.Now().Add(writeTimeout))
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
