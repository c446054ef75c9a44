package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Subscription is a channel subscription that lives across reconnects.
type Subscription struct {
	c       *Client
	channel string

	mu        sync.Mutex
	handlers  map[string][]func(*Message)
	any       []func(*Message)
	presence  []func(PresenceEvent)
	onRecover []func(recovered bool)
	epoch     string
	offset    uint64
	positions bool // epoch/offset known, so a resubscribe can recover
	// members is the presence set as this client knows it: the subscribed
	// reply's list, updated by join and leave events, keyed by conn.
	members      map[string]Member
	membersTotal int
}

// SubscribeOption configures a subscription before its first message.
type SubscribeOption func(*Subscription)

// WithHandler handles every message of the channel from the first one on.
func WithHandler(f func(*Message)) SubscribeOption {
	return func(s *Subscription) { s.any = append(s.any, f) }
}

// WithRecoverHandler is told after each resubscribe, and when the server
// resynchronised the subscription by itself after a broker outage without
// recovering it (an unsolicited subscribed frame), whether every missed
// message was recovered; false means the app should reload its state.
func WithRecoverHandler(f func(recovered bool)) SubscribeOption {
	return func(s *Subscription) { s.onRecover = append(s.onRecover, f) }
}

// WithPresenceHandler receives join and leave events.
func WithPresenceHandler(f func(PresenceEvent)) SubscribeOption {
	return func(s *Subscription) { s.presence = append(s.presence, f) }
}

// Subscribe subscribes to channel and keeps the subscription across
// reconnects. Handlers run on the client's read goroutine, in order.
func (c *Client) Subscribe(ctx context.Context, channel string, opts ...SubscribeOption) (*Subscription, error) {
	s := &Subscription{c: c, channel: channel, handlers: map[string][]func(*Message){}}
	for _, o := range opts {
		o(s)
	}
	c.mu.Lock()
	if c.subs[channel] != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("subscribe %q: already subscribed", channel)
	}
	c.subs[channel] = s
	c.mu.Unlock()
	if _, err := s.subscribe(ctx); err != nil {
		c.mu.Lock()
		delete(c.subs, channel)
		c.mu.Unlock()
		return nil, fmt.Errorf("subscribe %q: %w", channel, err)
	}
	return s, nil
}

// subscribe sends the subscribe request, with since when the position is known.
func (s *Subscription) subscribe(ctx context.Context) (recovered *bool, err error) {
	req := map[string]any{"type": "subscribe", "channel": s.channel}
	s.mu.Lock()
	if s.positions {
		req["since"] = map[string]any{"epoch": s.epoch, "offset": s.offset}
	}
	s.mu.Unlock()
	f, err := s.c.request(ctx, req)
	if err != nil {
		return nil, err
	}
	return f.Recovered, nil
}

// applySubscribed takes the stream position from a subscribed reply. After
// a successful recovery the replayed messages advance the position instead.
func (s *Subscription) applySubscribed(f *frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.positions || f.Recovered == nil || !*f.Recovered {
		s.epoch, s.offset, s.positions = f.Epoch, f.Offset, true
	}
	s.members = make(map[string]Member, len(f.Members))
	for _, m := range f.Members {
		s.members[m.Conn] = m
	}
	s.membersTotal = max(f.MembersTotal, len(f.Members))
}

// resynced takes the position of a subscribed frame the server sent by
// itself (it carries no members: the presence set stays as it is) and tells
// the recover handlers, on their own goroutine as after a resubscribe.
func (s *Subscription) resynced(f *frame) {
	recovered := f.Recovered != nil && *f.Recovered
	s.mu.Lock()
	if !recovered {
		s.epoch, s.offset, s.positions = f.Epoch, f.Offset, true
	}
	handlers := append([]func(bool){}, s.onRecover...)
	s.mu.Unlock()
	go func() {
		for _, h := range handlers {
			h(recovered)
		}
	}()
}

// resubscribe restores every subscription after a reconnect.
func (c *Client) resubscribe() {
	c.mu.Lock()
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	for _, s := range subs {
		go func(s *Subscription) {
			rec, err := s.resubscribe()
			if err != nil {
				return // the connection dropped again; the next reconnect retries
			}
			s.mu.Lock()
			handlers := append([]func(bool){}, s.onRecover...)
			s.mu.Unlock()
			for _, h := range handlers {
				h(rec != nil && *rec)
			}
		}(s)
	}
}

// resubscribe subscribes again after a reconnect, retrying with backoff
// while the server answers unavailable (its broker is still coming back).
func (s *Subscription) resubscribe() (*bool, error) {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(s.c.ctx, s.c.cfg.RequestTimeout)
		rec, err := s.subscribe(ctx)
		cancel()
		var e *Error
		if err == nil || !errors.As(err, &e) || (e.Code != "unavailable" && e.Code != "internal") {
			return rec, err
		}
		select {
		case <-time.After(backoff(attempt, s.c.cfg.MinBackoff, s.c.cfg.MaxBackoff)):
		case <-s.c.ctx.Done():
			return nil, err
		}
	}
}

// Channel is the subscription's channel.
func (s *Subscription) Channel() string { return s.channel }

// Position is the epoch and offset of the newest message received.
func (s *Subscription) Position() (epoch string, offset uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch, s.offset
}

// Members is the channel's presence as far as this client knows it: the
// subscribed reply's list (at most a sample in big channels), kept current
// by join and leave events. Ordered by connection id.
func (s *Subscription) Members() []Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Member, 0, len(s.members))
	for _, m := range s.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Conn < out[j].Conn })
	return out
}

// MembersTotal is how many members the channel had at subscribe, adjusted
// by the join and leave events since; the list in Members may be a sample.
func (s *Subscription) MembersTotal() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.membersTotal
}

// On handles messages of one event name.
func (s *Subscription) On(event string, f func(*Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[event] = append(s.handlers[event], f)
}

// OnAny handles every message.
func (s *Subscription) OnAny(f func(*Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.any = append(s.any, f)
}

// OnPresence handles join and leave events.
func (s *Subscription) OnPresence(f func(PresenceEvent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.presence = append(s.presence, f)
}

func (s *Subscription) dispatch(m *Message) {
	s.mu.Lock()
	if s.positions && m.Epoch == s.epoch && m.Offset <= s.offset {
		s.mu.Unlock()
		return // already seen: a duplicate after recovery
	}
	s.epoch, s.offset, s.positions = m.Epoch, m.Offset, true
	hs := s.handlers[m.Event]
	anys := s.any
	s.mu.Unlock()
	for _, h := range hs {
		h(m)
	}
	for _, h := range anys {
		h(m)
	}
}

func (s *Subscription) dispatchPresence(ev PresenceEvent) {
	s.mu.Lock()
	if s.members == nil {
		s.members = map[string]Member{}
	}
	_, known := s.members[ev.Member.Conn]
	switch ev.Action {
	case "join":
		if !known {
			s.membersTotal++
		}
		s.members[ev.Member.Conn] = ev.Member
	case "leave":
		if known || s.membersTotal > len(s.members) {
			s.membersTotal--
		}
		delete(s.members, ev.Member.Conn)
	}
	hs := s.presence
	s.mu.Unlock()
	for _, h := range hs {
		h(ev)
	}
}

// Unsubscribe ends the subscription.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	s.c.mu.Lock()
	if s.c.subs[s.channel] == s {
		delete(s.c.subs, s.channel)
	}
	s.c.mu.Unlock()
	if _, err := s.c.request(ctx, map[string]any{"type": "unsubscribe", "channel": s.channel}); err != nil {
		return fmt.Errorf("unsubscribe %q: %w", s.channel, err)
	}
	return nil
}
