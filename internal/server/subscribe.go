package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/hub"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/status"
)

// maxEpochLen bounds the epoch a client may send in since; real epochs
// are short (the memory broker's are 8 characters).
const maxEpochLen = 64

// subscription is one connection's subscription to one channel: the hub's
// Subscriber. While it catches up (history replay on subscribe), live
// messages and presence frames wait in pending and are merged by offset
// afterwards, so the client sees no gap and no duplicate.
type subscription struct {
	c       *conn
	channel string
	opts    config.ChannelOptions
	id      *auth.Identity // as at subscribe: presence shows this member

	mu           sync.Mutex
	catchingUp   bool
	pending      []pendingFrame
	pendingBytes int
	epoch        string
	last         uint64 // offset of the newest message queued to the client
	// stale is set when the broker came back while a catch-up ran: the
	// catch-up is followed by a resync (resync.go), since messages of the
	// outage may be neither in what it read nor in pending.
	stale bool
	// left is set by leave: the subscription has ended (unsubscribe or the
	// connection's teardown), so a replay still under way stops.
	left bool
	// known holds the other connections listed in the subscribed reply
	// (sorted): their join events may still be on the way, and are not
	// delivered, so a member never learns of one join twice. An entry
	// goes when its join or leave event arrives; the list is at most
	// maxSubscribedMembers long.
	known []string
}

// pendingFrame is a live message (m set) or a presence frame (m nil)
// that arrived during catch-up; events are a presence window's events
// (frame is then their shared frame).
type pendingFrame struct {
	m      *protocol.Message
	frame  []byte
	events []hub.PresenceItem
}

// Deliver implements hub.Subscriber.
func (sub *subscription) Deliver(m *protocol.Message, frame []byte) {
	sub.mu.Lock()
	if sub.catchingUp {
		sub.holdLocked(pendingFrame{m: m, frame: frame})
		return
	}
	if errors.Is(sub.deliverLocked(m, frame), errHole) {
		// Messages before this one never reached this node: it waits, with
		// what follows, while the missed ones are read from history.
		sub.catchingUp = true
		sub.holdLocked(pendingFrame{m: m, frame: frame})
		go sub.resync()
		return
	}
	sub.mu.Unlock()
}

// holdLocked keeps p until the catch-up is over and releases sub.mu; a
// subscription that holds more than the outgoing queue may is a slow consumer.
func (sub *subscription) holdLocked(p pendingFrame) {
	sub.pending = append(sub.pending, p)
	sub.pendingBytes += p.size()
	over := sub.pendingBytes > sub.c.s.cfg.MaxQueueBytes
	sub.mu.Unlock()
	if over {
		go sub.c.closeWith(protocol.DisconnectSlowConsumer, false)
	}
}

// errHole is deliverLocked's answer to a message that does not follow the
// last one delivered: a later offset, or another epoch (the stream was
// lost and restarted). The caller resynchronises the subscription.
var errHole = errors.New("hole in the channel's offsets")

// deliverLocked queues one message unless the client already has it; sub.mu
// held. errHole means nothing was queued because messages are missing
// before m; another error means the connection's queue is closed (or
// overflowed).
func (sub *subscription) deliverLocked(m *protocol.Message, frame []byte) error {
	if m.Epoch == sub.epoch && m.Offset <= sub.last {
		return nil
	}
	if m.Epoch != sub.epoch || m.Offset > sub.last+1 {
		// Messages between last and this one never reached this node (its
		// broker connection broke and came back), or the stream restarted.
		// Delivering this one would hide the hole from the client.
		return errHole
	}
	sub.last = m.Offset
	if frame == nil {
		frame = protocol.AppendMessage(nil, m)
	}
	return sub.c.out.Enqueue(frame)
}

// DeliverPresence implements hub.Subscriber: frame, shared by every
// subscriber, holds a window's events. A subscription that still waits for
// joins it already knows of from its subscribed reply gets its own frame
// without them.
func (sub *subscription) DeliverPresence(frame []byte, events []hub.PresenceItem) {
	sub.mu.Lock()
	if sub.catchingUp {
		sub.holdLocked(pendingFrame{frame: frame, events: events})
		return
	}
	frame = sub.filterKnownLocked(frame, events)
	sub.mu.Unlock()
	if frame != nil {
		_ = sub.c.out.Enqueue(frame)
	}
}

// filterKnownLocked returns frame without the join events of connections
// in sub.known (nil when nothing is left), and forgets the connections
// whose join or leave it saw; sub.mu held.
func (sub *subscription) filterKnownLocked(frame []byte, events []hub.PresenceItem) []byte {
	if len(sub.known) == 0 {
		return frame
	}
	var keep [][]byte
	dropped := false
	for i, e := range events {
		k, found := slices.BinarySearch(sub.known, e.Conn)
		if found {
			sub.known = slices.Delete(sub.known, k, k+1)
		}
		if found && e.Join {
			if !dropped {
				dropped = true
				keep = make([][]byte, 0, len(events))
				for _, p := range events[:i] {
					keep = append(keep, p.Frame)
				}
			}
			continue
		}
		if dropped {
			keep = append(keep, e.Frame)
		}
	}
	if len(sub.known) == 0 {
		sub.known = nil
	}
	if !dropped {
		return frame
	}
	if len(keep) == 0 {
		return nil
	}
	return bytes.Join(keep, []byte{'\n'})
}

// setKnown notes the members listed in the subscribed reply, whose join
// events must not reach the subscriber too. Its own join still comes, as
// it always has: clients may wait for it to know they are announced.
func (sub *subscription) setKnown(members []protocol.Member) {
	known := make([]string, 0, len(members))
	for _, m := range members {
		if m.Conn != sub.c.id {
			known = append(known, m.Conn)
		}
	}
	slices.Sort(known)
	sub.mu.Lock()
	sub.known = slices.Compact(known)
	sub.mu.Unlock()
}

// validSince reports what is wrong with a since position, or nil.
func validSince(since *protocol.Position) *protocol.Error {
	switch {
	case since == nil:
		return nil
	case since.Epoch == "":
		return protocol.Errorf(protocol.CodeBadRequest, "since needs the epoch of the stream it came from")
	case len(since.Epoch) > maxEpochLen:
		return protocol.Errorf(protocol.CodeBadRequest, "since.epoch is longer than %d characters", maxEpochLen)
	}
	return nil
}

func (c *conn) handleSubscribe(ctx context.Context, f *protocol.ClientFrame, id *auth.Identity) {
	if f.Channel == protocol.StatusChannel {
		c.subscribeStatus(f, id)
		return
	}
	if !id.CanSubscribe(f.Channel) {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeForbidden, "subscribe to %q is not allowed by the token", f.Channel))
		return
	}
	if err := validSince(f.Since); err != nil {
		c.sendError(f.ID, err)
		return
	}
	sub := &subscription{c: c, channel: f.Channel, opts: c.s.channelOptions(c.connApp(), f.Channel), id: id, catchingUp: true}
	// No teardown runs while a frame is handled (conn.runFrame), so the
	// subscription is either left by a later unsubscribe or by teardown,
	// never while it joins.
	c.mu.Lock()
	switch {
	case c.subs[f.Channel] != nil:
		c.mu.Unlock()
		c.sendError(f.ID, protocol.Errorf(protocol.CodeBadRequest, "already subscribed to %q", f.Channel))
		return
	case len(c.subs) >= c.s.cfg.MaxSubscriptions:
		c.mu.Unlock()
		c.sendError(f.ID, protocol.Errorf(protocol.CodeRateLimited, "subscription limit of %d reached", c.s.cfg.MaxSubscriptions))
		return
	}
	c.subs[f.Channel] = sub
	c.mu.Unlock()

	reply, replay, err := c.s.join(ctx, sub, f.Since)
	if err != nil {
		c.mu.Lock()
		delete(c.subs, f.Channel)
		c.mu.Unlock()
		c.sendError(f.ID, c.s.clientError("subscribe", err))
		return
	}
	// The join is announced before the reply leaves, so a client that has
	// its subscribed knows everyone will learn of it, and of its joins in
	// the order the replies came (the joiner's own join is held until
	// catchUp, after the reply).
	c.s.announce(ctx, sub, protocol.ActionJoin)
	reply.ID = f.ID
	c.send(reply.encode())
	c.statusSubscription(status.Subscribed, id, f.Channel)
	sub.catchUp(protocol.Position{Epoch: reply.Epoch, Offset: reply.Offset}, replay)
}

// subscribedReply is the subscribed frame; members_total is there in
// presence channels, where members may be cut to maxSubscribedMembers.
type subscribedReply struct {
	protocol.Subscribed
	MembersTotal *int `json:"members_total,omitempty"`
}

func (r subscribedReply) encode() []byte {
	r.Type = protocol.TypeSubscribed
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // plain data; cannot fail
	}
	return b
}

// join registers sub with the hub and reads what the client needs to catch
// up: the channel's position, and the first page of the missed messages
// when since is given (catchUp reads the rest).
// The subscription is registered before the position is read, so every
// message after the position reaches it live.
func (s *Server) join(ctx context.Context, sub *subscription, since *protocol.Position) (subscribedReply, []*protocol.Message, error) {
	a := sub.c.connApp()
	reply := subscribedReply{Subscribed: protocol.Subscribed{Channel: sub.channel}}
	if err := a.hub.Subscribe(ctx, sub.channel, sub); err != nil {
		return reply, nil, err
	}
	undo := func() { _ = a.hub.Unsubscribe(ctx, sub.channel, sub) }
	q := broker.HistoryQuery{Limit: -1, Options: brokerOptions(sub.opts)}
	if since != nil {
		q = broker.HistoryQuery{Since: since, Limit: sub.c.replayPageSize(), Options: brokerOptions(sub.opts)}
	}
	replay, pos, err := a.broker.History(ctx, sub.channel, q)
	switch {
	case since != nil && errors.Is(err, broker.ErrGap):
		recovered := false
		reply.Recovered = &recovered
		replay = nil
	case err != nil:
		undo()
		return reply, nil, fmt.Errorf("history of %q: %w", sub.channel, err)
	case since != nil:
		recovered := true
		reply.Recovered = &recovered
	}
	reply.Epoch, reply.Offset = pos.Epoch, pos.Offset
	if sub.opts.Presence && a.presence != nil {
		member := protocol.Member{User: sub.id.User, Conn: sub.c.id, Info: sub.id.Info}
		if err := a.presence.AddMember(ctx, sub.channel, member); err != nil {
			undo()
			return reply, nil, fmt.Errorf("add presence member to %q: %w", sub.channel, err)
		}
		s.memberJoined(a, sub.channel, sub.id.User)
		members, total, err := s.someMembers(ctx, a, sub.channel, maxSubscribedMembers)
		if err != nil {
			s.log.Warn("presence members", "channel", sub.channel, "err", err)
		}
		reply.Members, reply.MembersTotal = members, &total
		if sub.opts.JoinLeave {
			sub.setKnown(members)
		}
	}
	return reply, replay, nil
}

// announce publishes a join or leave in channels that broadcast them.
func (s *Server) announce(ctx context.Context, sub *subscription, action string) {
	a := sub.c.connApp()
	if !sub.opts.Presence || !sub.opts.JoinLeave || a.presence == nil {
		return
	}
	ev := &protocol.PresenceEvent{Channel: sub.channel, Action: action, Member: protocol.Member{User: sub.id.User, Conn: sub.c.id, Info: sub.id.Info}}
	if err := a.broker.PublishPresence(ctx, ev); err != nil {
		s.log.Warn("presence event", "channel", sub.channel, "action", action, "err", err)
	}
}

// leave ends sub: the hub forgets it and presence says goodbye. It is
// called once per subscription, by whoever took it out of conn.subs (an
// unsubscribe, or teardown), never while its subscribe is being handled.
func (s *Server) leave(ctx context.Context, sub *subscription) {
	a := sub.c.connApp()
	sub.mu.Lock()
	sub.left = true
	sub.mu.Unlock()
	sub.c.statusSubscription(status.Unsubscribed, sub.id, sub.channel)
	if err := a.hub.Unsubscribe(ctx, sub.channel, sub); err != nil {
		s.log.Warn("unsubscribe", "channel", sub.channel, "err", err)
	}
	if !sub.opts.Presence || a.presence == nil {
		return
	}
	s.memberLeft(a, sub.channel, sub.id.User)
	if err := a.presence.RemoveMember(ctx, sub.channel, sub.c.id); err != nil {
		s.log.Warn("presence remove", "channel", sub.channel, "err", err)
	}
	s.announce(ctx, sub, protocol.ActionLeave)
}

func brokerOptions(o config.ChannelOptions) broker.ChannelOptions {
	return broker.ChannelOptions{HistorySize: o.HistorySize, HistoryTTL: o.HistoryTTL}
}
