package server

import (
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/hub"
	"github.com/eddyrt/eddy/internal/webhooks"
)

// Webhooks hears what webhooks report (internal/webhooks.System implements
// it). Every method is quick and never blocks: it queues, it does not send.
type Webhooks interface {
	// LocalOccupied and LocalVacated: this node's first subscriber of a
	// channel came, its last one left (the hub calls them).
	hub.Observer
	// MemberJoined and MemberLeft: a connection of user joined or left the
	// presence of channel on this node.
	MemberJoined(channel, user string)
	MemberLeft(channel, user string)
	// ConnectionRefused: a connection limit (its setting's name) refused one.
	ConnectionRefused(limit string)
	// ConnectionRefusedIn: a limit refused a connection of app (not the
	// default one), reported to app's own receivers.
	ConnectionRefusedIn(app, limit string)
	// Emit sends an event this node alone saw (the Pusher protocol's
	// client_event and cache_miss) to app's receivers that asked for it.
	Emit(app string, ev webhooks.Event)
	// The same events for the channels of app, an app other than the
	// default one, whose own receivers get them (webhooks_apps.go).
	OccupiedIn(app, channel string)
	VacatedIn(app, channel string)
	MemberJoinedIn(app, channel, user string)
	MemberLeftIn(app, channel, user string)
	// SetAppHooks puts app's receivers (its stored settings) in force.
	SetAppHooks(app string, hooks []config.Webhook)
}

var _ Webhooks = (*webhooks.System)(nil)

// memberJoined and memberLeft tell the webhooks that a connection of user
// joined or left the presence of channel on this node (any protocol's
// subscriptions); without webhooks they do nothing.
// memberJoined and memberLeft report the members of a's channels: the
// webhooks in eddy.yaml and the admin API are the default app's, the other
// apps' go to their own receivers (webhooks_apps.go).
func (s *Server) memberJoined(a *appState, channel, user string) {
	switch {
	case s.opts.Webhooks == nil:
	case a == nil || a.isDefault():
		s.opts.Webhooks.MemberJoined(channel, user)
	default:
		s.opts.Webhooks.MemberJoinedIn(a.id, channel, user)
	}
}

func (s *Server) memberLeft(a *appState, channel, user string) {
	switch {
	case s.opts.Webhooks == nil:
	case a == nil || a.isDefault():
		s.opts.Webhooks.MemberLeft(channel, user)
	default:
		s.opts.Webhooks.MemberLeftIn(a.id, channel, user)
	}
}

// emitWebhook sends ev, which this node alone saw (the Pusher protocol's
// client_event and cache_miss), to app's receivers; it never blocks.
func (s *Server) emitWebhook(app string, ev webhooks.Event) {
	if s.opts.Webhooks != nil {
		s.opts.Webhooks.Emit(app, ev)
	}
}
