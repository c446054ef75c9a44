// Package broker defines the seam between a node's hub and the engine that
// moves messages between publishers and nodes: the in-memory broker (one
// node, the default) and the Redis broker (many nodes) implement it.
package broker

import (
	"context"
	"errors"
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
)

// ChannelOptions are the stream settings of one channel, from its namespace.
type ChannelOptions struct {
	HistorySize int           // messages kept for recovery; 0 keeps none
	HistoryTTL  time.Duration // how long kept messages stay; 0 means as long as the size allows
}

// Handler receives what the broker delivers to this node.
//
// Implementations must not block: they are called with the broker's
// per-channel ordering held, so for one channel HandleMessage is called in
// strictly increasing offset order, never concurrently.
type Handler interface {
	HandleMessage(m *protocol.Message)
	HandlePresence(ev *protocol.PresenceEvent)
}

// Broker moves published messages to every node with subscribers of the
// channel, numbering each channel's messages and keeping its history.
type Broker interface {
	// Start begins delivering to h. It is called once, before any other method.
	Start(ctx context.Context, h Handler) error

	// Publish gives m the channel's next offset and its epoch, appends it to
	// the history when opts keep any, and delivers it to every subscribed
	// node. Numbering, history and delivery are one atomic step: two
	// publishers never produce a duplicate or a gap. A nil error means the
	// message will be delivered; an error means it was not published.
	Publish(ctx context.Context, m *protocol.Message, opts ChannelOptions) (protocol.Position, error)

	// Subscribe and Unsubscribe tell the broker whether this node has local
	// subscribers of channel, so that it receives only those channels.
	Subscribe(ctx context.Context, channel string) error
	Unsubscribe(ctx context.Context, channel string) error

	// History returns kept messages of channel, oldest first, and the
	// channel's current position (also when the error is ErrGap).
	History(ctx context.Context, channel string, q HistoryQuery) ([]*protocol.Message, protocol.Position, error)

	// PublishPresence delivers a join or leave event to every subscribed node.
	PublishPresence(ctx context.Context, ev *protocol.PresenceEvent) error

	Close() error
}

// HistoryQuery selects kept messages.
type HistoryQuery struct {
	// Since, when set, asks for the messages after it. ErrGap means the
	// history no longer holds all of them, or Since names another epoch.
	Since *protocol.Position
	// Limit caps the messages returned (0: no cap): the oldest after Since,
	// or the newest when Since is nil. A negative Limit returns no messages,
	// only the position.
	Limit int
	// Options are the channel's settings; messages older than HistoryTTL
	// count as gone.
	Options ChannelOptions
}

// PresenceStore keeps the members of presence channels.
type PresenceStore interface {
	AddMember(ctx context.Context, channel string, m protocol.Member) error
	RemoveMember(ctx context.Context, channel string, conn string) error
	Members(ctx context.Context, channel string) ([]protocol.Member, error)
}

// ErrGap is returned by History when the messages after since are not all kept.
var ErrGap = errors.New("history does not reach back to the requested position")

// ErrUnavailable wraps failures to reach the broker's backing service.
var ErrUnavailable = errors.New("broker unavailable")
