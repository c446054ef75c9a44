package server

import (
	"sync"
	"time"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/status"
)

// The status channel ($admin:status, docs/operations.md) is not a broker
// channel: its events come from the status feed (internal/status), which
// relays them between nodes itself, and a subscriber that reads slowly
// misses events instead of being closed as a slow consumer.

// statusSubs are the connections subscribed to the status channel, with
// the function that ends each subscription.
type statusSubs struct {
	mu   sync.Mutex
	subs map[*conn]func()
}

// newStatusFeed is the feed the server uses when none is given (a server
// built without node.Build): this node's events only.
func (s *Server) newStatusFeed() *status.Feed {
	return status.New(status.Options{
		NodeID:     s.nodeID,
		Rate:       s.cfg.StatusSampleRate,
		Nodes:      s.abil.Nodes,
		NodeEvery:  announceEvery(s.cfg.NodeTTL),
		Logger:     s.log,
		Registerer: s.metrics.registry,
	})
}

// statusFeedFor is the feed a connection's status subscription reads and
// its events go to: one per node, whose events and subscribers each name
// their app (statusApp), so an app's admin sees its own app's events only.
func (s *Server) statusFeedFor(*conn) *status.Feed { return s.status }

// statusApp is the app a status event about c is of, and the app whose
// events c's status subscription gets: "" for the default app (and for no
// connection).
func statusApp(c *conn) string {
	if c == nil {
		return ""
	}
	if a := c.connApp(); !a.isDefault() {
		return a.id
	}
	return ""
}

// statusSink is a connection subscribed to the status channel.
type statusSink struct{ c *conn }

// Deliver implements status.Subscriber: events that would fill more than
// half the connection's outgoing queue are dropped for it, counted
// (eddy_status_events_dropped_total), and the connection stays.
func (k statusSink) Deliver(frames [][]byte) bool {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	if k.c.out.Queued()+n > k.c.s.cfg.MaxQueueBytes/2 {
		return false
	}
	for _, f := range frames {
		if k.c.out.Enqueue(f) != nil {
			return false
		}
	}
	return true
}

// subscribeStatus subscribes c to the status channel, if its token has the
// admin claim. A since position is ignored: the feed keeps no history, so
// the reply says recovered:false when one was asked for.
func (c *conn) subscribeStatus(f *protocol.ClientFrame, id *auth.Identity) {
	if !id.Admin {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeForbidden, "subscribe to %s needs a token with the admin claim (\"admin\": true)", protocol.StatusChannel))
		return
	}
	s := c.s
	s.statusSubs.mu.Lock()
	defer s.statusSubs.mu.Unlock()
	if c.closing() {
		return
	}
	if s.statusSubs.subs[c] != nil {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeBadRequest, "already subscribed to %q", f.Channel))
		return
	}
	cancel := s.statusFeedFor(c).SubscribeApp(statusSink{c}, statusApp(c), func(epoch string, offset uint64) {
		reply := subscribedReply{Subscribed: protocol.Subscribed{Channel: protocol.StatusChannel, Epoch: epoch, Offset: offset}}
		if f.Since != nil {
			recovered := false
			reply.Recovered = &recovered
		}
		reply.ID = f.ID
		c.send(reply.encode())
	})
	s.statusSubs.subs[c] = cancel
}

// unsubscribeStatus ends c's status subscription; reply answers the
// unsubscribe frame (teardown has none to answer).
func (c *conn) unsubscribeStatus(f *protocol.ClientFrame) {
	if !c.s.dropStatusSub(c) {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeNotFound, "not subscribed to %q", f.Channel))
		return
	}
	c.send(protocol.Unsubscribed(f.ID, f.Channel))
}

// dropStatusSub ends c's status subscription and reports whether it had one.
func (s *Server) dropStatusSub(c *conn) bool {
	s.statusSubs.mu.Lock()
	cancel := s.statusSubs.subs[c]
	delete(s.statusSubs.subs, c)
	s.statusSubs.mu.Unlock()
	if cancel == nil {
		return false
	}
	cancel()
	return true
}

// identityOf is c's identity once authenticated, else nil.
func (c *conn) identityOf() *auth.Identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.identity
}

// statusOpened tells the feed an authenticated connection opened.
func (c *conn) statusOpened(id *auth.Identity) {
	c.s.statusFeedFor(c).Emit(status.Event{Type: status.ConnectionOpened, Conn: c.id, User: id.User, App: statusApp(c)})
}

// statusClosed ends c's status subscription and tells the feed c closed,
// with d (nil: the peer went away); teardown calls it once, holding no lock.
func (c *conn) statusClosed(d *protocol.Disconnect) {
	c.s.dropStatusSub(c)
	id := c.identityOf()
	if id == nil {
		return // never opened, as far as the feed knows
	}
	e := status.Event{Type: status.ConnectionClosed, Conn: c.id, User: id.User, Reason: "connection lost or closed by the client", App: statusApp(c)}
	if d != nil {
		e.Code, e.Reason = int(d.Code), d.Reason
	}
	c.s.statusFeedFor(c).Emit(e)
}

// statusSubscription tells the feed of a subscribe or an unsubscribe
// (kind status.Subscribed or status.Unsubscribed).
func (c *conn) statusSubscription(kind string, id *auth.Identity, channel string) {
	c.s.statusFeedFor(c).Emit(status.Event{Type: kind, Conn: c.id, User: id.User, Channel: channel, App: statusApp(c)})
}

// statusLimit tells the feed a limit refused something: limit is the
// setting's name (or the error code rate_limited), msg what the client was told.
func (s *Server) statusLimit(c *conn, limit, user, msg string) {
	e := status.Event{Type: status.LimitRefused, Limit: limit, User: user, Message: msg, App: statusApp(c)}
	if c != nil {
		e.Conn = c.id
	}
	s.statusFeedFor(c).Emit(e)
}

// announceEvery is how often a node announces itself (and the status feed
// reads the registry): a third of node_ttl, at most 5 s.
func announceEvery(nodeTTL time.Duration) time.Duration {
	every := min(5*time.Second, nodeTTL/3)
	if every <= 0 {
		every = 5 * time.Second
	}
	return every
}

// NewNodeID returns a fresh random node ID, for node.Build to name a node
// before its server exists (the status feed and function logs need it).
func NewNodeID() string { return newNodeID() }
