package server

import (
	"context"
	"fmt"

	"github.com/eddyrt/eddy/internal/protocol"
)

// A joiner's subscribed reply lists at most maxSubscribedMembers members
// plus members_total, so joining a 10,000-member channel does not encode
// 10,000 members; the presence request and the HTTP API still return
// everyone. Join and leave events are gathered per channel by the hub
// (hub.HandlePresence).
const maxSubscribedMembers = 100

// someMembers lists up to max members of channel for a subscribed reply.
func (s *Server) someMembers(ctx context.Context, a *appState, channel string, max int) ([]protocol.Member, int, error) {
	if a.sampler != nil {
		return a.sampler.MembersUpTo(ctx, channel, max)
	}
	all, err := a.presence.Members(ctx, channel)
	if err != nil {
		return nil, 0, err
	}
	return all[:min(len(all), max)], len(all), nil
}

// members lists a channel's presence.
func (s *Server) members(ctx context.Context, a *appState, channel string) ([]protocol.Member, error) {
	if !s.channelOptions(a, channel).Presence || a.presence == nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "channel %q has no presence; enable presence for its namespace", channel)
	}
	m, err := a.presence.Members(ctx, channel)
	if err != nil {
		return nil, fmt.Errorf("presence of %q: %w", channel, err)
	}
	return m, nil
}
