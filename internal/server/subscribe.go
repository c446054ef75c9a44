package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
)

// subscription is one connection's subscription to one channel: the hub's
// Subscriber. While it catches up (history replay on subscribe), live
// messages wait in pending and are merged by offset afterwards, so the
// client sees no gap and no duplicate.
type subscription struct {
	c       *conn
	channel string
	opts    config.ChannelOptions

	mu           sync.Mutex
	catchingUp   bool
	pending      []pendingMessage
	pendingBytes int
	epoch        string
	last         uint64 // offset of the newest message queued to the client
}

type pendingMessage struct {
	m     *protocol.Message
	frame []byte
}

// Deliver implements hub.Subscriber.
func (sub *subscription) Deliver(m *protocol.Message, frame []byte) {
	sub.mu.Lock()
	if sub.catchingUp {
		sub.pending = append(sub.pending, pendingMessage{m, frame})
		sub.pendingBytes += len(frame)
		over := sub.pendingBytes > sub.c.s.cfg.MaxQueueBytes
		sub.mu.Unlock()
		if over {
			go sub.c.closeWith(protocol.CloseSlowConsumer, "slow consumer", false)
		}
		return
	}
	sub.deliverLocked(m, frame)
	sub.mu.Unlock()
}

// deliverLocked queues one message unless the client already has it; sub.mu held.
func (sub *subscription) deliverLocked(m *protocol.Message, frame []byte) {
	if m.Epoch == sub.epoch && m.Offset <= sub.last {
		return
	}
	// A new epoch means the stream restarted (e.g. Redis lost it): its
	// offsets start over, and the client learns so from the epoch field.
	sub.epoch, sub.last = m.Epoch, m.Offset
	if frame == nil {
		frame = protocol.AppendMessage(nil, m)
	}
	_ = sub.c.out.Enqueue(frame)
}

// DeliverPresence implements hub.Subscriber.
func (sub *subscription) DeliverPresence(frame []byte) { _ = sub.c.out.Enqueue(frame) }

// finishCatchUp queues the replayed messages, then what arrived meanwhile,
// and switches the subscription to live delivery.
func (sub *subscription) finishCatchUp(pos protocol.Position, replay []*protocol.Message) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.epoch, sub.last = pos.Epoch, 0
	if len(replay) == 0 {
		sub.last = pos.Offset
	}
	for _, m := range replay {
		sub.deliverLocked(m, nil)
	}
	if len(replay) > 0 && sub.last < pos.Offset {
		sub.last = pos.Offset
	}
	for _, p := range sub.pending {
		sub.deliverLocked(p.m, p.frame)
	}
	sub.pending, sub.pendingBytes = nil, 0
	sub.catchingUp = false
}

func (c *conn) handleSubscribe(ctx context.Context, f *protocol.ClientFrame, id *auth.Identity) {
	if !id.CanSubscribe(f.Channel) {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeForbidden, "subscribe to %q is not allowed by the token", f.Channel))
		return
	}
	if f.Since != nil && f.Since.Epoch == "" {
		c.sendError(f.ID, protocol.Errorf(protocol.CodeBadRequest, "since needs the epoch of the stream it came from"))
		return
	}
	sub := &subscription{c: c, channel: f.Channel, opts: c.s.cfg.ChannelOptionsFor(f.Channel), catchingUp: true}
	c.mu.Lock()
	switch {
	case c.subs == nil:
		c.mu.Unlock()
		return // closing
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

	reply, replay, err := c.s.join(ctx, sub, f.Since, id)
	if err != nil {
		c.mu.Lock()
		if c.subs != nil && c.subs[f.Channel] == sub {
			delete(c.subs, f.Channel)
		}
		c.mu.Unlock()
		c.sendError(f.ID, protocol.AsError(err))
		return
	}
	reply.ID = f.ID
	c.send(reply.Encode())
	sub.finishCatchUp(protocol.Position{Epoch: reply.Epoch, Offset: reply.Offset}, replay)
	c.s.announce(ctx, sub, protocol.ActionJoin, id)
}

// join registers sub with the hub and reads what the client needs to catch
// up: the channel's position, and the missed messages when since is given.
func (s *Server) join(ctx context.Context, sub *subscription, since *protocol.Position, id *auth.Identity) (protocol.Subscribed, []*protocol.Message, error) {
	reply := protocol.Subscribed{Channel: sub.channel}
	if err := s.hub.Subscribe(ctx, sub.channel, sub); err != nil {
		return reply, nil, unavailable(err)
	}
	q := broker.HistoryQuery{Limit: -1, Options: brokerOptions(sub.opts)}
	if since != nil {
		q = broker.HistoryQuery{Since: since, Options: brokerOptions(sub.opts)}
	}
	replay, pos, err := s.broker.History(ctx, sub.channel, q)
	switch {
	case since != nil && errors.Is(err, broker.ErrGap):
		recovered := false
		reply.Recovered = &recovered
		replay = nil
	case err != nil:
		_ = s.hub.Unsubscribe(ctx, sub.channel, sub)
		return reply, nil, unavailable(err)
	case since != nil:
		recovered := true
		reply.Recovered = &recovered
	}
	reply.Epoch, reply.Offset = pos.Epoch, pos.Offset
	if sub.opts.Presence && s.presence != nil {
		member := protocol.Member{User: id.User, Conn: sub.c.id, Info: id.Info}
		if err := s.presence.AddMember(ctx, sub.channel, member); err != nil {
			_ = s.hub.Unsubscribe(ctx, sub.channel, sub)
			return reply, nil, unavailable(err)
		}
		members, err := s.presence.Members(ctx, sub.channel)
		if err != nil {
			s.log.Warn("presence members", "channel", sub.channel, "err", err)
		}
		reply.Members = members
	}
	return reply, replay, nil
}

// announce publishes a join or leave in channels that broadcast them.
func (s *Server) announce(ctx context.Context, sub *subscription, action string, id *auth.Identity) {
	if !sub.opts.Presence || !sub.opts.JoinLeave {
		return
	}
	ev := &protocol.PresenceEvent{Channel: sub.channel, Action: action, Member: protocol.Member{User: id.User, Conn: sub.c.id, Info: id.Info}}
	if err := s.broker.PublishPresence(ctx, ev); err != nil {
		s.log.Warn("presence event", "channel", sub.channel, "action", action, "err", err)
	}
}

// leave ends sub: the hub forgets it and presence says goodbye.
func (s *Server) leave(ctx context.Context, sub *subscription) {
	if err := s.hub.Unsubscribe(ctx, sub.channel, sub); err != nil {
		s.log.Warn("unsubscribe", "channel", sub.channel, "err", err)
	}
	if !sub.opts.Presence || s.presence == nil {
		return
	}
	if err := s.presence.RemoveMember(ctx, sub.channel, sub.c.id); err != nil {
		s.log.Warn("presence remove", "channel", sub.channel, "err", err)
	}
	sub.c.mu.Lock()
	id := sub.c.identity
	sub.c.mu.Unlock()
	if id != nil {
		s.announce(ctx, sub, protocol.ActionLeave, id)
	}
}

// members lists a channel's presence.
func (s *Server) members(ctx context.Context, channel string) ([]protocol.Member, error) {
	if !s.cfg.ChannelOptionsFor(channel).Presence || s.presence == nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "channel %q has no presence; enable presence for its namespace", channel)
	}
	m, err := s.presence.Members(ctx, channel)
	if err != nil {
		return nil, unavailable(err)
	}
	return m, nil
}

func brokerOptions(o config.ChannelOptions) broker.ChannelOptions {
	return broker.ChannelOptions{HistorySize: o.HistorySize, HistoryTTL: o.HistoryTTL}
}

// unavailable reports a broker failure to clients without leaking internals.
func unavailable(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	return &protocol.Error{Code: protocol.CodeUnavailable, Message: fmt.Sprintf("broker unavailable, retry later: %v", err)}
}
