// Package broker defines the seam between a node's hub and the engine that
// moves messages between publishers and nodes: the in-memory broker (one
// node, the default) and the Redis broker (many nodes) implement it.
package broker

import (
	"context"
	"errors"
	"time"

	"github.com/eddyrt/eddy/api"
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
	// message will be delivered. An error means it was not published,
	// except one that wraps ErrOutcomeUnknown: the request may have reached
	// the backing service and run there (a timeout or a lost connection
	// after sending), so the message may or may not have been published.
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

// ErrGap is returned by History when the messages after since are not all kept.
var ErrGap = errors.New("history does not reach back to the requested position")

// ErrUnavailable wraps failures to reach the broker's backing service. An
// operation that failed with it did not take effect, unless the error also
// wraps ErrOutcomeUnknown.
var ErrUnavailable = errors.New("broker unavailable")

// ErrOutcomeUnknown wraps a Publish error after which the broker cannot
// tell whether the message was published: the request was sent and no
// answer came (timeout, connection lost). Publishing again may produce a
// second message. Errors wrapping it also wrap ErrUnavailable.
var ErrOutcomeUnknown = errors.New("publish outcome unknown")

// A Broker may have optional abilities beyond the Broker interface, each
// declared here as a small interface. Callers find them once, with Resolve,
// never by type assertions of their own: this file is the list of what a
// broker can offer.

// PresenceStore keeps the members of presence channels. A member is one
// connection: AddMember of a conn already present replaces its entry, and
// RemoveMember of an absent one is not an error. Members lists every
// member, in no particular order. Members added by a node outlive it by at
// most the store's expiry (Redis: presence_ttl), so a crashed node's
// members go by themselves.
type PresenceStore interface {
	AddMember(ctx context.Context, channel string, m protocol.Member) error
	RemoveMember(ctx context.Context, channel string, conn string) error
	Members(ctx context.Context, channel string) ([]protocol.Member, error)
}

// MemberSampler is a PresenceStore that can list part of a big channel
// without copying all of it.
type MemberSampler interface {
	// MembersUpTo returns at most max members of channel (which ones is
	// unspecified) and how many members it has in all.
	MembersUpTo(ctx context.Context, channel string, max int) ([]protocol.Member, int, error)
}

// Readiness is a broker whose backing service can be unreachable. Ready is
// cheap (callers poll it) and reports whether the broker can serve every
// channel right now; while it is false, operations fail with
// ErrUnavailable. It turns true again by itself once the service is back.
// A broker without this ability is always ready.
type Readiness interface {
	Ready() bool
}

// ReconnectCounter is a broker that counts how often its delivery
// connection came (back) up. A change after startup means deliveries may
// have been missed in between, however short the outage, even if Ready was
// never seen false.
type ReconnectCounter interface {
	Connects() uint64
}

// NodeRegistry is a broker that knows the cluster's nodes. Announce
// records n for a while (the broker's node TTL); Nodes lists the nodes
// whose last announcement has not expired, this one included once it
// announced.
type NodeRegistry interface {
	Announce(ctx context.Context, n api.NodeInfo) error
	Nodes(ctx context.Context) ([]api.NodeInfo, error)
}

// Notifier is a broker that carries cluster notifications: Notify
// delivers payload under topic to the OnNotify callback of every node
// (this one included), at most once and without ordering across topics.
type Notifier interface {
	Notify(ctx context.Context, topic string, payload []byte) error
	OnNotify(fn func(topic string, payload []byte))
}

// Abilities are a broker's optional abilities, resolved once; a nil field
// is an ability the broker lacks.
type Abilities struct {
	Presence   PresenceStore // the broker's own, or the one given to Resolve
	Sampler    MemberSampler // set only when it is the same store as Presence
	Readiness  Readiness
	Reconnects ReconnectCounter
	Nodes      NodeRegistry
	Notifier   Notifier
}

// Resolve finds b's optional abilities. presence, when not nil, is the
// presence store to use instead of b's own.
func Resolve(b Broker, presence PresenceStore) Abilities {
	var a Abilities
	a.Presence = presence
	if a.Presence == nil {
		a.Presence, _ = b.(PresenceStore)
	}
	if a.Presence != nil {
		a.Sampler, _ = a.Presence.(MemberSampler)
	}
	a.Readiness, _ = b.(Readiness)
	a.Reconnects, _ = b.(ReconnectCounter)
	a.Nodes, _ = b.(NodeRegistry)
	a.Notifier, _ = b.(Notifier)
	return a
}

// Ready reports whether the broker is ready; one without the ability always is.
func (a Abilities) Ready() bool { return a.Readiness == nil || a.Readiness.Ready() }
