package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/eddyrt/eddy/internal/hub"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/pusher"
)

// pusherNode is the Pusher protocol's state on one node.
type pusherNode struct {
	app    *pusherApp // nil: the Pusher protocol is off
	events PusherEvents
	// activity is the activity_timeout told to clients: a client silent
	// this long gets a pusher:ping.
	activity int // seconds
}

func newPusherNode(s *Server) *pusherNode {
	activity := 120 // Pusher's own
	if s.opts.pusherActivity > 0 {
		activity = s.opts.pusherActivity
	}
	return &pusherNode{app: s.pusherDefaultApp(), events: s.opts.PusherEvents, activity: activity}
}

// pusherChannel is one channel's Pusher subscribers on this node: a single
// hub subscriber, so a publish is encoded in Pusher's format once per node
// whatever the number of Pusher subscribers (Eddy's own subscribers share
// the hub's encoding). On presence channels it also counts each user's
// connections from the presence events, so Pusher clients see one member
// per user id however many connections (of either protocol) it has.
type pusherChannel struct {
	name string
	kind pusher.Kind
	app  *appState // whose channel space it is in

	subs atomic.Pointer[[]*pusherSub] // copy on write: Deliver runs under the hub's lock

	mu    sync.Mutex                 // guards what follows and writes to subs
	users map[string]int             // presence: connections per user id
	conns map[string]string          // presence: connection id → user id
	info  map[string]json.RawMessage // presence: user_info per user id
	gone  map[string]bool            // leaves seen while the member list was loading
	ready bool                       // the member list was loaded
	refs  int                        // subscribers, including those still joining

	// registered is closed once the hub routes the channel here (regErr
	// set if it could not): later subscribers wait for it, so none is told
	// it subscribed before messages can reach it.
	registered chan struct{}
	regErr     error
}

// pusherSub is one Pusher connection's subscription.
type pusherSub struct {
	c      *conn
	sess   *pusherSession
	ch     *pusherChannel
	userID string // presence channels: the member it shows

	// Guarded by ch.mu. Member events reach a subscription only once its
	// subscription_succeeded is on the way (ready), and not for users it
	// listed (known) whose join was still under way: a member is never
	// announced to a client twice.
	ready bool
	known map[string]bool
}

// acquire returns channel's fan-out in app a, registering it with a's hub
// when it is new; release gives it back.
func (s *Server) pusherAcquire(ctx context.Context, a *appState, name string) (*pusherChannel, error) {
	p := &a.pusher
	p.mu.Lock()
	pc := p.m[name]
	if pc == nil {
		pc = &pusherChannel{name: name, kind: pusher.KindOf(name), app: a, users: map[string]int{}, conns: map[string]string{}, info: map[string]json.RawMessage{}, gone: map[string]bool{}, registered: make(chan struct{})}
		empty := []*pusherSub{}
		pc.subs.Store(&empty)
		if p.m == nil {
			p.m = map[string]*pusherChannel{}
		}
		p.m[name] = pc
	}
	pc.refs++
	first := pc.refs == 1
	p.mu.Unlock()
	if first {
		// The hub serialises subscribes of one channel, and the last
		// release unsubscribes under the same stripe, so a fan-out that
		// is registered here is the channel's current one.
		pc.regErr = a.hub.Subscribe(ctx, name, pc)
		close(pc.registered)
	}
	select {
	case <-pc.registered:
	case <-ctx.Done():
		s.pusherRelease(context.Background(), pc)
		return nil, ctx.Err()
	}
	if pc.regErr != nil {
		s.pusherRelease(context.Background(), pc)
		return nil, pc.regErr
	}
	if pc.kind.Presence && a.presence != nil {
		if err := pc.loadMembers(ctx); err != nil {
			s.pusherRelease(context.Background(), pc)
			return nil, err
		}
	}
	return pc, nil
}

func (s *Server) pusherRelease(ctx context.Context, pc *pusherChannel) {
	p := &pc.app.pusher
	p.mu.Lock()
	pc.refs--
	last := pc.refs == 0
	if last {
		delete(p.m, pc.name)
	}
	p.mu.Unlock()
	if last {
		if err := pc.app.hub.Unsubscribe(ctx, pc.name, pc); err != nil {
			s.log.Warn("pusher unsubscribe", "channel", pc.name, "err", err)
		}
	}
}

// loadMembers fills the per-user counts from the presence store once;
// events that came meanwhile are already applied (set by connection id).
func (pc *pusherChannel) loadMembers(ctx context.Context) error {
	pc.mu.Lock()
	done := pc.ready
	pc.mu.Unlock()
	if done {
		return nil
	}
	members, err := pc.app.presence.Members(ctx, pc.name)
	if err != nil {
		return fmt.Errorf("presence of %q: %w", pc.name, err)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.ready {
		return nil
	}
	for _, m := range members {
		if _, ok := pc.conns[m.Conn]; ok || pc.gone[m.Conn] {
			continue
		}
		pc.addLocked(m)
	}
	pc.gone = nil
	pc.ready = true
	return nil
}

// addLocked counts a member's connection and reports whether its user is
// new to the channel; pc.mu held.
func (pc *pusherChannel) addLocked(m protocol.Member) bool {
	if _, ok := pc.conns[m.Conn]; ok {
		return false
	}
	pc.conns[m.Conn] = m.User
	pc.users[m.User]++
	if len(m.Info) > 0 {
		pc.info[m.User] = m.Info
	}
	return pc.users[m.User] == 1
}

// removeLocked forgets a connection and reports whether its user has left.
func (pc *pusherChannel) removeLocked(conn string) (string, bool) {
	user, ok := pc.conns[conn]
	if !ok {
		if pc.gone != nil {
			pc.gone[conn] = true
		}
		return "", false
	}
	delete(pc.conns, conn)
	pc.users[user]--
	if pc.users[user] > 0 {
		return user, false
	}
	delete(pc.users, user)
	delete(pc.info, user)
	return user, true
}

func (pc *pusherChannel) add(sub *pusherSub) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	old := *pc.subs.Load()
	next := append(append(make([]*pusherSub, 0, len(old)+1), old...), sub)
	pc.subs.Store(&next)
}

func (pc *pusherChannel) remove(sub *pusherSub) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	old := *pc.subs.Load()
	next := make([]*pusherSub, 0, len(old))
	for _, x := range old {
		if x != sub {
			next = append(next, x)
		}
	}
	pc.subs.Store(&next)
}

// Deliver implements hub.Subscriber: one Pusher encoding per message,
// shared by every Pusher subscriber here but the excluded sender.
func (pc *pusherChannel) Deliver(m *protocol.Message, _ []byte) {
	subs := *pc.subs.Load()
	if len(subs) == 0 {
		return
	}
	user := ""
	if pc.kind.Presence {
		user = m.User
	}
	var frame []byte
	if strings.HasPrefix(m.Event, "client-") {
		frame = pusher.AppendClientEvent(make([]byte, 0, 64+len(m.Data)+len(m.Channel)), m.Event, m.Channel, m.Data, user)
	} else {
		frame = pusher.AppendEvent(make([]byte, 0, 64+len(m.Data)*2+len(m.Channel)), m.Event, m.Channel, m.Data, user)
	}
	for _, sub := range subs {
		if m.Exclude != "" && m.Exclude == sub.sess.socketID {
			continue
		}
		_ = sub.c.out.Enqueue(frame)
	}
}

// DeliverPresence implements hub.Subscriber: join and leave events of
// connections become member_added / member_removed when they are a user's
// first or last connection in the channel.
func (pc *pusherChannel) DeliverPresence(_ []byte, events []hub.PresenceItem) {
	type out struct {
		frame          []byte
		conn           string // the connection whose join it is: not told of itself
		added, removed string // the user
	}
	var frames []out
	pc.mu.Lock()
	for _, e := range events {
		var ev protocol.PresenceEvent
		if err := json.Unmarshal(e.Frame, &ev); err != nil {
			continue
		}
		if ev.Action == protocol.ActionJoin {
			if pc.addLocked(ev.Member) {
				data := map[string]json.RawMessage{"user_id": mustJSON(ev.Member.User)}
				if len(ev.Member.Info) > 0 {
					data["user_info"] = ev.Member.Info
				}
				frames = append(frames, out{pusher.Frame{Event: "pusher_internal:member_added", Channel: pc.name, Data: pusher.StringData(data)}.Encode(), ev.Member.Conn, ev.Member.User, ""})
			}
			continue
		}
		if user, left := pc.removeLocked(ev.Member.Conn); left {
			frames = append(frames, out{pusher.Frame{Event: "pusher_internal:member_removed", Channel: pc.name, Data: pusher.StringData(map[string]string{"user_id": user})}.Encode(), "", "", user})
		}
	}
	defer pc.mu.Unlock()
	for _, sub := range *pc.subs.Load() {
		if !sub.ready {
			continue
		}
		for _, f := range frames {
			switch {
			case f.conn == sub.c.id:
			case f.added != "" && sub.known[f.added]:
				delete(sub.known, f.added)
			default:
				if f.removed != "" {
					delete(sub.known, f.removed)
				}
				_ = sub.c.out.Enqueue(f.frame)
			}
		}
	}
}

// markReady lets member events reach sub; users are those its
// subscription_succeeded lists.
func (pc *pusherChannel) markReady(sub *pusherSub, users []string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	sub.ready = true
	sub.known = make(map[string]bool, len(users))
	for _, u := range users {
		if u != sub.userID {
			sub.known[u] = true
		}
	}
}

// presenceView is the channel's members as Pusher shows them: one per user.
func presenceView(members []protocol.Member) pusher.PresenceData {
	var d pusher.PresenceData
	d.Presence.Hash = map[string]json.RawMessage{}
	d.Presence.IDs = []string{}
	for _, m := range members {
		if _, ok := d.Presence.Hash[m.User]; ok {
			continue
		}
		info := m.Info
		if len(info) == 0 {
			info = json.RawMessage("null")
		}
		d.Presence.Hash[m.User] = info
		d.Presence.IDs = append(d.Presence.IDs, m.User)
	}
	d.Presence.Count = len(d.Presence.IDs)
	return d
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
