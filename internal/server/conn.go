package server

import (
	"context"
	"errors"
	"fmt"
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

// releaseTimeout bounds a closing connection's hub, broker and presence
// calls; its presence members outlive a failure by at most presence_ttl.
const releaseTimeout = 5 * time.Second

// newWriterPool returns the writers of a server's outboxes (see
// outbox.Pool): one per core. Writes over outbox.Socket never block, so
// more writers only take turns on the same cores and take each outbox off
// the queue sooner, with fewer frames per write: with 4 per core, a batch
// publish to 5,000 connections under overload wrote 1.1 messages per
// write and took 15.7-17.8 µs of CPU per delivered message; with one per
// core, 2.1-2.6 and 11.0-11.6 µs (bench/README.md, issue 14). The price
// is tail latency just below saturation (p99 41-65 ms against 24-30 at
// 40,000 msgs/s there). Blocking writes (SSE) get extra writers from the
// pool's watchdog.
func newWriterPool() *outbox.Pool {
	return outbox.NewPool(runtime.GOMAXPROCS(0), 50*time.Millisecond)
}

// conn is one client connection. Frames are handled one at a time, for the
// socket's reader (gws's read loop, or a polled reader: wsread.go); the
// outbox is written by the shared writers.
//
// Its life: open until its context is cancelled, which closeWith (any
// reason the server has) or the end of the read loop does, once. Then
// teardown runs, once, on goroutines of the connection's own: the close
// frame on one and, after the frame handler in flight has returned, the
// release of every subscription on the other. The connection leaves the
// node's set when both the read loop and teardown are over.
type conn struct {
	s        *Server
	socket   *gws.Conn  // nil on the SSE transport
	sse      *sseStream // nil on WebSocket (sse.go)
	out      *outbox.Outbox
	id       string
	seq      uint64
	lastRead atomic.Int64  // unix nanoseconds
	opened   time.Time     // when it was accepted (the console's connections page)
	handled  chan struct{} // a frame handler finished (see wsHandler.OnMessage)

	ip     string // peer address holding a max_connections_per_ip slot
	origin string // the handshake's Origin header, checked against the app's allowed_origins at auth
	// ctx is cancelled when the connection starts closing. Every frame
	// handler, function run and broker call made for the connection gets
	// it, so closing cancels an in-flight subscribe or function run.
	ctx    context.Context
	cancel context.CancelFunc
	// frames is held while a frame is handled; teardown takes it to wait
	// for the handler in flight, after which no handler runs.
	frames sync.Mutex
	// released is closed when teardown has released the subscriptions.
	released chan struct{}
	// pubs runs the connection's publishes off the frame handler.
	pubs publishQueue
	// pusher is set on a Pusher protocol connection (pusher_ws.go).
	pusher *pusherSession

	// Owned by the frame handler.
	badFrames   int
	limiter     *rate.Limiter
	userLimiter *rate.Limiter // shared by the user's connections (limits.go)

	// app is the connection's app, set once at auth (apps.go: connApp).
	app atomic.Pointer[appState]

	mu        sync.Mutex
	identity  *auth.Identity
	user      string                   // holds a max_connections_per_user slot while set
	appHeld   *appState                // holds one of the app's connections while set (apps.go)
	subs      map[string]*subscription // made at auth; taken by teardown
	authTimer *time.Timer
	expiry    *time.Timer
}

// newConn starts a connection on socket; sock is the non-blocking socket
// under it, or nil when writes block (then bounded by writeTimeout).
func (s *Server) newConn(socket *gws.Conn, sock *outbox.Socket) *conn {
	c := s.allocConn()
	c.socket = socket
	onInvalid := func(frame []byte) { s.frameDropped(c.id, frame) }
	var w outbox.Writer = &socketWriter{socket: socket, onInvalid: onInvalid}
	if sock != nil {
		w = &nonBlockingWriter{socketWriter: socketWriter{socket: socket, onInvalid: onInvalid}, sock: sock}
	}
	s.startConn(c, w)
	return c
}

// allocConn makes a connection not yet started (startConn), for any transport.
func (s *Server) allocConn() *conn {
	seq := s.ids.Add(1)
	c := &conn{s: s, seq: seq, handled: make(chan struct{}, 1), released: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.id = s.nextID("c-")
	c.lastRead.Store(time.Now().UnixNano())
	c.opened = time.Now()
	return c
}

// startConn gives c its outbox over w, arms the auth timeout and adds c to
// the node's set.
func (s *Server) startConn(c *conn, w outbox.Writer) {
	c.out = outbox.New(w, outbox.Options{
		MaxQueueBytes: s.cfg.MaxQueueBytes,
		FlushDelay:    s.cfg.WriteDelay,
		Writers:       s.writers,
		OnOverflow: func() {
			c.closeWith(protocol.DisconnectSlowConsumer, false)
		},
		OnWriteError: func(err error) {
			s.log.Debug("write failed", "conn", c.id, "err", err)
			c.abort()
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
}

// abort cuts the connection's transport without a close frame, as a
// network failure would; the read side then ends it (cleanup).
func (c *conn) abort() {
	if c.sse != nil {
		c.sse.abort()
		return
	}
	_ = c.socket.NetConn().Close()
}

func (c *conn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

// send queues a reply to the client's own request: it leaves at once, not
// after the coalescing window (pushed messages use Enqueue).
func (c *conn) send(frame []byte) { _ = c.out.PushReply(frame) }

func (c *conn) sendError(id uint64, err *protocol.Error) {
	c.s.metrics.errors.WithLabelValues(err.Code).Inc()
	if err.Code == protocol.CodeRateLimited {
		c.s.statusLimit(c, err.Code, "", err.Message)
	}
	c.send(protocol.ErrorFrame(id, err))
}

// closeWith closes the connection with d. It only cancels the
// connection's context and starts teardown on a goroutine of its own, so
// callers looping over many connections (Shutdown, pingLoop, watchBroker)
// never wait for one. drain writes what is queued before the close frame.
// Only the first close of a connection counts.
func (c *conn) closeWith(d protocol.Disconnect, drain bool) {
	if !c.beginClose() {
		return
	}
	c.s.metrics.disconnects.WithLabelValues(d.Label()).Inc()
	c.s.log.Debug("closing connection", "conn", c.id, "code", d.Code, "reason", d.Reason)
	go c.teardown(&d, drain)
}

// beginClose cancels the connection's context and reports whether this
// call did: whoever did runs teardown.
func (c *conn) beginClose() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return false
	}
	c.cancel()
	return true
}

// closing reports whether the connection has started closing.
func (c *conn) closing() bool { return c.ctx.Err() != nil }

// teardown ends the connection, once: it stops the timers and, on a second
// goroutine, sends the close frame with d (nil: the socket is gone
// already), which can wait behind a write to a peer that reads slowly.
// Meanwhile it waits for the frame handler in flight (which the cancelled
// context makes quick) and releases the subscriptions, whose hub, broker
// and presence calls are bounded by releaseTimeout.
func (c *conn) teardown(d *protocol.Disconnect, drain bool) {
	defer close(c.released)
	c.statusClosed(d)
	c.mu.Lock()
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
	written := make(chan struct{})
	go func() {
		defer close(written)
		c.writeClose(d, drain)
	}()
	c.frames.Lock()
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	c.frames.Unlock()
	c.waitPublishes()
	// Not c.ctx, which is cancelled: the releasing calls get their own
	// time, cut short when Shutdown gives up waiting (s.releaseCtx).
	ctx, cancel := context.WithTimeout(c.s.releaseCtx, releaseTimeout)
	defer cancel()
	for _, sub := range subs {
		c.s.leave(ctx, sub)
	}
	if c.pusher != nil {
		c.pusherReleaseAll(ctx)
	}
	<-written
}

// writeClose closes the outbox, after writing what it holds when drain is
// set, and sends the close frame with d (nil: none).
func (c *conn) writeClose(d *protocol.Disconnect, drain bool) {
	if d != nil && drain {
		done := make(chan struct{})
		c.out.Drain(done)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	c.out.Close()
	if c.sse != nil {
		c.sse.writeClose(d)
		return
	}
	if c.pusher != nil && d != nil {
		d = pusherDisconnect(d)
	}
	if d == nil {
		return
	}
	// gws serialises this behind any write in progress; the deadline
	// bounds how long a peer that stopped reading can delay it.
	_ = c.socket.SetWriteDeadline(time.Now().Add(writeTimeout))
	_ = c.socket.WriteClose(d.Code, []byte(d.Reason))
	// A peer that never answers the close must not keep the read loop,
	// and with it the connection, forever.
	_ = c.socket.SetReadDeadline(time.Now().Add(writeTimeout))
}

// cleanup runs on the reader once the read side has ended, however it
// ended: it tears down a connection nobody closed (the peer went away)
// and waits for teardown before the connection leaves the node's set.
func (c *conn) cleanup() {
	if c.beginClose() {
		c.teardown(nil, false)
	}
	<-c.released
	c.releaseLimits()
	c.s.conns.remove(c)
	c.s.metrics.connections.Dec()
}

// runFrame handles one frame with the connection's context, unless the
// connection is closing; only one runs at a time.
func (c *conn) runFrame(b []byte) {
	c.frames.Lock()
	defer c.frames.Unlock()
	if c.closing() {
		return
	}
	if c.pusher != nil {
		c.handlePusherFrame(c.ctx, b)
		return
	}
	c.handleFrame(c.ctx, b)
}

func (c *conn) handleFrame(ctx context.Context, b []byte) {
	if len(b) > c.s.cfg.MaxMessageBytes {
		// The error answers the request, so it carries the request's id:
		// without it a client's pending publish would wait for its timeout.
		c.badFrame(protocol.PeekID(b), protocol.Errorf(protocol.CodeTooLarge, "frame is %d bytes; max_message_bytes is %d", len(b), c.s.cfg.MaxMessageBytes))
		return
	}
	f, err := protocol.DecodeClientFrame(b)
	c.mu.Lock()
	id := c.identity
	c.mu.Unlock()
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
		c.handleRefresh(ctx, f)
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

// tokenError is what a client is told of its refused token. Unlike other
// errors, the verifier's describe the token the client sent (its kid, its
// algorithm, a missing claim), not the server, so their text is the answer.
func tokenError(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
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
	app, ident, err := c.s.appForToken(f.Token)
	if err == nil {
		err = checkIdentity(ident)
	}
	if err == nil {
		err = c.s.appOriginAllowed(app, c.origin)
	}
	if err != nil {
		fail(tokenError(err))
		return
	}
	// The verifier allows a few seconds of clock skew on exp; a token already
	// past it would only get ready and then close 4003 at once, so refuse it
	// here as protocol.md says: unauthorized, then close 4001.
	if !ident.Expires.IsZero() && !ident.Expires.After(time.Now()) {
		fail("token expired at " + ident.Expires.UTC().Format(time.RFC3339))
		return
	}
	c.mu.Lock()
	if c.closing() {
		c.mu.Unlock()
		return
	}
	if !c.admitAppLocked(app) {
		c.mu.Unlock()
		c.sendError(0, appConnLimitError(app))
		c.closeWith(appRefusal(app), true)
		return
	}
	if !c.admitUserLocked(app.prefix + ident.User) {
		c.mu.Unlock()
		c.sendError(0, c.s.userLimitError(ident.User))
		c.closeWith(protocol.DisconnectTooManyConns, true)
		return
	}
	c.authTimer.Stop()
	c.authTimer = nil
	c.identity = ident
	c.subs = make(map[string]*subscription)
	c.armExpiry(ident.Expires)
	c.mu.Unlock()
	c.send(protocol.Ready(c.id, ident.User))
	c.statusOpened(ident)
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

func (c *conn) handleRefresh(ctx context.Context, f *protocol.ClientFrame) {
	app, ident, err := c.s.appForToken(f.Token)
	if err == nil {
		err = checkIdentity(ident)
	}
	if err == nil && app != c.connApp() {
		err = fmt.Errorf("token is for app %q, the connection is app %q", app.id, c.connApp().id)
	}
	if err != nil {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeUnauthorized, "refresh: %s", tokenError(err)))
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
	c.dropForbidden(ctx, ident)
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
	if !c.allowUserPublish() {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeRateLimited, "publish rate of user %q over publish_rate_per_user (%g messages per second, all its connections together)", id.User, c.s.cfg.PublishRatePerUser))
		return
	}
	if !c.enqueuePublish(f, id) {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeRateLimited, "%d publishes of this connection are still waiting; wait for their acks", maxQueuedPublishes))
	}
}

// doPublish publishes f for the connection's publish queue and answers it.
func (c *conn) doPublish(ctx context.Context, f *protocol.ClientFrame, id *auth.Identity) {
	msgID, err := c.s.publish(ctx, publishRequest{
		channels: []string{f.Channel}, event: f.Event, data: f.Data,
		user: id.User, info: id.Info, source: "client", app: c.connApp(),
	})
	if err != nil {
		c.sendError(f.ID, c.s.clientError("publish", err))
		return
	}
	c.send(protocol.Ack(f.ID, msgID))
}

func (c *conn) handleUnsubscribe(ctx context.Context, f *protocol.ClientFrame) {
	if f.Channel == protocol.StatusChannel {
		c.unsubscribeStatus(f)
		return
	}
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
	members, err := c.s.members(ctx, c.connApp(), f.Channel)
	if err != nil {
		c.sendError(f.ID, c.s.clientError("presence", err))
		return
	}
	c.send(protocol.Members(f.ID, f.Channel, members))
}
