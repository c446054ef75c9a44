package server

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"golang.org/x/time/rate"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/outbox"
	"github.com/eddyrt/eddy/internal/protocol"
)

// maxBadFrames is how many malformed frames in a row close a connection.
const maxBadFrames = 20

// newWriterPool returns the writers of a server's outboxes (see
// outbox.Pool): a few per core keep the CPU busy with writes while the
// publishing goroutine still runs, so fan-out to many connections batches.
func newWriterPool() *outbox.Pool {
	return outbox.NewPool(4*runtime.GOMAXPROCS(0), 50*time.Millisecond)
}

// conn is one client connection. Frames are handled one at a time on the
// socket's read goroutine; the outbox is written by the shared writers.
type conn struct {
	s        *Server
	socket   *gws.Conn
	out      *outbox.Outbox
	id       string
	seq      uint64
	lastRead atomic.Int64  // unix nanoseconds
	handled  chan struct{} // a frame handler finished (see wsHandler.OnMessage)

	// Owned by the read goroutine.
	badFrames int
	limiter   *rate.Limiter

	mu        sync.Mutex
	identity  *auth.Identity
	subs      map[string]*subscription
	authTimer *time.Timer
	expiry    *time.Timer
	closed    bool
	cleanedUp bool
}

func (s *Server) newConn(socket *gws.Conn) *conn {
	seq := s.ids.Add(1)
	c := &conn{s: s, socket: socket, seq: seq, handled: make(chan struct{}, 1)}
	c.id = s.nextID("c-")
	c.lastRead.Store(time.Now().UnixNano())
	c.out = outbox.New(&socketWriter{socket: socket}, outbox.Options{
		MaxQueueBytes: s.cfg.MaxQueueBytes,
		FlushDelay:    s.cfg.WriteDelay,
		Writers:       s.writers,
		OnOverflow: func() {
			c.closeWith(protocol.DisconnectSlowConsumer, false)
		},
		OnWriteError: func(err error) {
			s.log.Debug("write failed", "conn", c.id, "err", err)
			_ = socket.NetConn().Close()
		},
	})
	c.mu.Lock()
	c.authTimer = time.AfterFunc(s.cfg.AuthTimeout, func() {
		c.closeWith(protocol.DisconnectAuthTimeout, false)
	})
	c.mu.Unlock()
	s.conns.add(c)
	s.metrics.connections.Inc()
	s.metrics.connects.Inc()
	return c
}

func (c *conn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

// send queues a reply frame.
func (c *conn) send(frame []byte) { _ = c.out.Enqueue(frame) }

func (c *conn) sendError(id uint64, err *protocol.Error) {
	c.s.metrics.errors.WithLabelValues(err.Code).Inc()
	c.send(protocol.ErrorFrame(id, err))
}

// closeWith sends a close frame with d and tears the connection down.
// drain writes what is queued first (graceful shutdown).
func (c *conn) closeWith(d protocol.Disconnect, drain bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.s.metrics.disconnects.WithLabelValues(d.Label()).Inc()
	c.s.log.Debug("closing connection", "conn", c.id, "code", d.Code, "reason", d.Reason)
	c.releaseSubscriptions()
	go func() {
		if drain {
			done := make(chan struct{})
			c.out.Drain(done)
			select {
			case <-done:
			case <-time.After(2 * time.Second):
			}
		}
		c.out.Close()
		// gws serialises this behind any write in progress; the deadline
		// bounds how long a peer that stopped reading can delay it.
		_ = c.socket.SetWriteDeadline(time.Now().Add(writeTimeout))
		_ = c.socket.WriteClose(d.Code, []byte(d.Reason))
	}()
}

// cleanup runs once the socket's read loop has ended, however it ended.
func (c *conn) cleanup() {
	c.mu.Lock()
	if c.cleanedUp {
		c.mu.Unlock()
		return
	}
	c.cleanedUp = true
	c.closed = true
	c.mu.Unlock()
	c.out.Close()
	c.releaseSubscriptions()
	c.s.conns.remove(c)
	c.s.metrics.connections.Dec()
}

// releaseSubscriptions drops every subscription and stops timers; safe to call twice.
func (c *conn) releaseSubscriptions() {
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, sub := range subs {
		c.s.leave(ctx, sub)
	}
}

func (c *conn) handleFrame(ctx context.Context, b []byte) {
	if len(b) > c.s.cfg.MaxMessageBytes {
		c.badFrame(0, protocol.Errorf(protocol.CodeTooLarge, "frame is %d bytes; max_message_bytes is %d", len(b), c.s.cfg.MaxMessageBytes))
		return
	}
	f, err := protocol.DecodeClientFrame(b)
	c.mu.Lock()
	id := c.identity
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	if id == nil {
		c.handleAuth(f, err)
		return
	}
	if err != nil {
		var reqID uint64
		if f != nil {
			reqID = f.ID
		}
		c.badFrame(reqID, protocol.AsError(err))
		return
	}
	c.badFrames = 0
	switch f.Type {
	case protocol.TypeSubscribe:
		c.handleSubscribe(ctx, f, id)
	case protocol.TypeUnsubscribe:
		c.handleUnsubscribe(ctx, f)
	case protocol.TypePublish:
		c.handlePublish(ctx, f, id)
	case protocol.TypeRefresh:
		c.handleRefresh(f)
	case protocol.TypePing:
		c.send(protocol.Pong(f.ID))
	case protocol.TypePresence:
		c.handlePresence(ctx, f, id)
	case protocol.TypeAuth:
		c.badFrame(f.ID, protocol.Errorf(protocol.CodeBadRequest, "already authenticated"))
	}
}

func (c *conn) badFrame(id uint64, err *protocol.Error) {
	c.sendError(id, err)
	c.badFrames++
	if c.badFrames >= maxBadFrames {
		c.closeWith(protocol.DisconnectTooManyErrors, true)
	}
}

func (c *conn) handleAuth(f *protocol.ClientFrame, decodeErr error) {
	fail := func(msg string) {
		c.sendError(0, &protocol.Error{Code: protocol.CodeUnauthorized, Message: msg})
		c.closeWith(protocol.DisconnectUnauthorized, true)
	}
	switch {
	case decodeErr != nil && (f == nil || f.Type != protocol.TypeAuth):
		fail("authenticate first: the first frame must be {\"type\":\"auth\",\"token\":...}")
		return
	case decodeErr != nil:
		fail(protocol.AsError(decodeErr).Message)
		return
	case f.Type != protocol.TypeAuth:
		fail("authenticate first: the first frame must be {\"type\":\"auth\",\"token\":...}")
		return
	}
	ident, err := c.s.app.Verifier.Verify(f.Token)
	if err != nil {
		fail(err.Error())
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.authTimer.Stop()
	c.authTimer = nil
	c.identity = ident
	c.subs = make(map[string]*subscription)
	c.armExpiry(ident.Expires)
	c.mu.Unlock()
	c.send(protocol.Ready(c.id, ident.User))
}

// armExpiry closes the connection with 4003 when its token runs out; c.mu held.
func (c *conn) armExpiry(exp time.Time) {
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	if exp.IsZero() {
		return
	}
	c.expiry = time.AfterFunc(time.Until(exp), func() {
		c.closeWith(protocol.DisconnectTokenExpired, true)
	})
}

func (c *conn) handleRefresh(f *protocol.ClientFrame) {
	ident, err := c.s.app.Verifier.Verify(f.Token)
	if err != nil {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeUnauthorized, "refresh: %v", err))
		return
	}
	c.mu.Lock()
	if c.identity != nil && ident.User != c.identity.User {
		c.mu.Unlock()
		c.sendError(f.ID, protocol.Errorf(protocol.CodeUnauthorized, "refresh: token is for user %q, the connection is %q", ident.User, c.identity.User))
		return
	}
	c.identity = ident
	c.armExpiry(ident.Expires)
	c.mu.Unlock()
	var exp int64
	if !ident.Expires.IsZero() {
		exp = ident.Expires.Unix()
	}
	c.send(protocol.Refreshed(f.ID, exp))
}

func (c *conn) handlePublish(ctx context.Context, f *protocol.ClientFrame, id *auth.Identity) {
	if !id.CanPublish(f.Channel) {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeForbidden, "publish to %q is not allowed by the token", f.Channel))
		return
	}
	if c.limiter == nil {
		burst := int(c.s.cfg.PublishRate)
		if burst < 1 {
			burst = 1
		}
		c.limiter = rate.NewLimiter(rate.Limit(c.s.cfg.PublishRate), burst)
	}
	if !c.limiter.Allow() {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeRateLimited, "publish rate over %g messages per second", c.s.cfg.PublishRate))
		return
	}
	msgID, err := c.s.publish(ctx, publishRequest{
		channels: []string{f.Channel}, event: f.Event, data: f.Data,
		user: id.User, info: id.Info, source: "client",
	})
	if err != nil {
		c.sendError(f.ID, c.s.clientError("publish", err))
		return
	}
	c.send(protocol.Ack(f.ID, msgID))
}

func (c *conn) handleUnsubscribe(ctx context.Context, f *protocol.ClientFrame) {
	c.mu.Lock()
	sub := c.subs[f.Channel]
	delete(c.subs, f.Channel)
	c.mu.Unlock()
	if sub == nil {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeNotFound, "not subscribed to %q", f.Channel))
		return
	}
	c.s.leave(ctx, sub)
	c.send(protocol.Unsubscribed(f.ID, f.Channel))
}

func (c *conn) handlePresence(ctx context.Context, f *protocol.ClientFrame, id *auth.Identity) {
	if !id.CanSubscribe(f.Channel) {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeForbidden, "presence of %q is not allowed by the token", f.Channel))
		return
	}
	members, err := c.s.members(ctx, f.Channel)
	if err != nil {
		c.sendError(f.ID, c.s.clientError("presence", err))
		return
	}
	c.send(protocol.Members(f.ID, f.Channel, members))
}
