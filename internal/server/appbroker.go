package server

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/eddyrt/eddy/internal/apps"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// appBroker is one app's view of the node's broker: every channel name
// gets the app's prefix ("shop/") on the way in, so the app's Redis keys
// and pub/sub channels carry its id and no two apps share a stream, and
// loses it on the way out, so clients never see it. The default app uses
// the broker itself, with no prefix, so existing data stays valid.
type appBroker struct {
	b      broker.Broker
	prefix string
}

var _ broker.Broker = (*appBroker)(nil)

// Start does nothing: the node's broker is started once, with appDemux.
func (v *appBroker) Start(context.Context, broker.Handler) error { return nil }

// Close does nothing: the node's broker belongs to the server or its creator.
func (v *appBroker) Close() error { return nil }

func (v *appBroker) Publish(ctx context.Context, m *protocol.Message, opts broker.ChannelOptions) (protocol.Position, error) {
	cp := *m
	cp.Channel = v.prefix + m.Channel
	return v.b.Publish(ctx, &cp, opts)
}

func (v *appBroker) Subscribe(ctx context.Context, channel string) error {
	return v.b.Subscribe(ctx, v.prefix+channel)
}

func (v *appBroker) Unsubscribe(ctx context.Context, channel string) error {
	return v.b.Unsubscribe(ctx, v.prefix+channel)
}

func (v *appBroker) History(ctx context.Context, channel string, q broker.HistoryQuery) ([]*protocol.Message, protocol.Position, error) {
	msgs, pos, err := v.b.History(ctx, v.prefix+channel, q)
	for i, m := range msgs {
		if strings.HasPrefix(m.Channel, v.prefix) {
			// A copy: the broker may keep m (the memory broker's history).
			cp := *m
			cp.Channel = m.Channel[len(v.prefix):]
			msgs[i] = &cp
		}
	}
	return msgs, pos, err
}

func (v *appBroker) PublishPresence(ctx context.Context, ev *protocol.PresenceEvent) error {
	cp := *ev
	cp.Channel = v.prefix + ev.Channel
	return v.b.PublishPresence(ctx, &cp)
}

// appPresence is one app's view of the presence store, prefixed like appBroker.
type appPresence struct {
	p      broker.PresenceStore
	prefix string
}

func (v *appPresence) AddMember(ctx context.Context, channel string, m protocol.Member) error {
	return v.p.AddMember(ctx, v.prefix+channel, m)
}

func (v *appPresence) RemoveMember(ctx context.Context, channel string, conn string) error {
	return v.p.RemoveMember(ctx, v.prefix+channel, conn)
}

func (v *appPresence) Members(ctx context.Context, channel string) ([]protocol.Member, error) {
	return v.p.Members(ctx, v.prefix+channel)
}

// appSampler is one app's view of a MemberSampler.
type appSampler struct {
	s      broker.MemberSampler
	prefix string
}

func (v *appSampler) MembersUpTo(ctx context.Context, channel string, max int) ([]protocol.Member, int, error) {
	return v.s.MembersUpTo(ctx, v.prefix+channel, max)
}

// appDemux is the node broker's Handler: it hands each message and
// presence event to the hub of the app its channel's prefix names,
// without the prefix. A name without one is the default app's; a prefix
// of no app here (deleted, or not yet loaded) is dropped.
type appDemux struct {
	def  broker.Handler
	apps atomic.Pointer[map[string]*appState] // by id, the default app excluded
}

func (d *appDemux) find(channel string) (*appState, string, bool) {
	i := strings.Index(channel, apps.Separator)
	if i < 0 {
		return nil, channel, true
	}
	a := (*d.apps.Load())[channel[:i]]
	return a, channel[i+len(apps.Separator):], a != nil
}

func (d *appDemux) HandleMessage(m *protocol.Message) {
	a, name, ok := d.find(m.Channel)
	switch {
	case !ok:
	case a == nil:
		d.def.HandleMessage(m)
	default:
		// A copy: the broker may keep m in its history.
		cp := *m
		cp.Channel = name
		a.hub.HandleMessage(&cp)
	}
}

func (d *appDemux) HandlePresence(ev *protocol.PresenceEvent) {
	a, name, ok := d.find(ev.Channel)
	switch {
	case !ok:
	case a == nil:
		d.def.HandlePresence(ev)
	default:
		cp := *ev
		cp.Channel = name
		a.hub.HandlePresence(&cp)
	}
}
