package server

import (
	"context"
	"sort"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/protocol"
)

// dropForbidden ends the subscriptions that ident, a refreshed token, no
// longer allows: a refresh must narrow what the connection reads, not
// only what it may subscribe to next. Each dropped channel is told with an
// unsubscribed frame carrying reason not_allowed, in channel order.
func (c *conn) dropForbidden(ctx context.Context, ident *auth.Identity) {
	c.mu.Lock()
	var gone []*subscription
	var names []string
	for ch, sub := range c.subs {
		if !ident.CanSubscribe(ch) {
			gone = append(gone, sub)
			names = append(names, ch)
			delete(c.subs, ch)
		}
	}
	c.mu.Unlock()
	for _, sub := range gone {
		c.s.leave(ctx, sub)
	}
	sort.Strings(names)
	for _, ch := range names {
		c.send(protocol.UnsubscribedBy(ch, protocol.ReasonNotAllowed))
	}
}
