package server

import (
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
	// Emit sends an event this node alone saw (the Pusher protocol's
	// client_event and cache_miss) to app's receivers that asked for it.
	Emit(app string, ev webhooks.Event)
}

var _ Webhooks = (*webhooks.System)(nil)

// memberJoined and memberLeft tell the webhooks of a presence member of
// sub's channel; without webhooks they do nothing.
func (s *Server) memberJoined(sub *subscription) {
	if s.opts.Webhooks != nil {
		s.opts.Webhooks.MemberJoined(sub.channel, sub.id.User)
	}
}

func (s *Server) memberLeft(sub *subscription) {
	if s.opts.Webhooks != nil {
		s.opts.Webhooks.MemberLeft(sub.channel, sub.id.User)
	}
}
