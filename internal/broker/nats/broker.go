package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// Options configure a Broker.
type Options struct {
	// URL is the nats://[user:password@]host:port address (several,
	// comma-separated, for a NATS cluster).
	URL string
	// NodeID names this node in logs; default a random id.
	NodeID string
	// Logger receives connection events; default slog.Default().
	Logger *slog.Logger
	// Prefix starts every subject, the stream's and the bucket's names;
	// default "eddy". Letters, digits, '-' and '_' only.
	Prefix string
	// NodeTTL is how long an Announce lasts; default 30s.
	NodeTTL time.Duration
	// PresenceTTL is how long a member outlives the last refresh by its
	// node; the node refreshes its members every PresenceTTL/3. Default 30s.
	PresenceTTL time.Duration
	// MetaTTL is how long a channel's messages (and so its offset and
	// epoch) outlive their publish; past it the channel starts again with a
	// new epoch. It is the stream's MaxAge. Default 30 days.
	MetaTTL time.Duration
	// Replicas of the stream and bucket in a NATS cluster; default 1.
	Replicas int
}

// Broker is the NATS broker. Make one with New; it is safe for concurrent use.
type Broker struct {
	opts    Options
	log     *slog.Logger
	nc      *natsgo.Conn
	js      jetstream.JetStream
	stream  atomic.Pointer[streamRef]
	kv      atomic.Pointer[kvRef]
	nodesKV atomic.Pointer[kvRef]

	connects atomic.Uint64
	ensured  atomic.Bool // the stream and bucket exist as far as we know
	kick     chan struct{}

	histSubj, delivSubj string // with a trailing '.'
	streamName          string

	handler atomic.Pointer[handlerRef]
	deliver chan *natsgo.Msg // every channel subscription's messages, in arrival order

	subMu sync.Mutex
	subs  map[string]*natsgo.Subscription

	heads    heads
	presence localMembers

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

type handlerRef struct{ h broker.Handler }
type streamRef struct{ s jetstream.Stream }
type kvRef struct{ kv jetstream.KeyValue }

var (
	_ broker.Broker           = (*Broker)(nil)
	_ broker.PresenceStore    = (*Broker)(nil)
	_ broker.Readiness        = (*Broker)(nil)
	_ broker.ReconnectCounter = (*Broker)(nil)
)

const (
	defaultPrefix  = "eddy"
	defaultTTL     = 30 * time.Second
	defaultMetaTTL = 30 * 24 * time.Hour
	// deliverBuffer bounds the messages received and not yet handed to the
	// handler. Past it NATS drops messages (a slow consumer), which counts
	// as a reconnect so that the node resynchronises from history.
	deliverBuffer = 1 << 16
	opTimeout     = 5 * time.Second
)

var validPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// New connects to NATS and returns the broker. Like the Redis broker it
// does not fail when NATS is down: it keeps retrying in the background and
// Ready reports when it can serve. It fails only on a bad configuration.
func New(opts Options) (*Broker, error) {
	if opts.URL == "" {
		return nil, errors.New("nats broker: no address")
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if !validPrefix.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("nats broker: prefix %q: only letters, digits, '-' and '_'", opts.Prefix)
	}
	if opts.NodeID == "" {
		opts.NodeID = strconv.FormatUint(rand.Uint64(), 36)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PresenceTTL <= 0 {
		opts.PresenceTTL = defaultTTL
	}
	if opts.NodeTTL <= 0 {
		opts.NodeTTL = defaultTTL
	}
	if opts.MetaTTL <= 0 {
		opts.MetaTTL = defaultMetaTTL
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	b := &Broker{
		opts:       opts,
		log:        opts.Logger.With("component", "nats-broker", "node", opts.NodeID),
		histSubj:   opts.Prefix + ".h.",
		delivSubj:  opts.Prefix + ".d.",
		streamName: strings.ToUpper(opts.Prefix) + "_HISTORY",
		kick:       make(chan struct{}, 1),
		deliver:    make(chan *natsgo.Msg, deliverBuffer),
		subs:       map[string]*natsgo.Subscription{},
	}
	b.heads.init()
	b.presence.init()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	nc, err := natsgo.Connect(opts.URL,
		natsgo.Name("eddy-"+opts.NodeID),
		natsgo.RetryOnFailedConnect(true),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(100*time.Millisecond),
		// Never buffer while disconnected: a publish must fail at once
		// (not published) rather than sit in a buffer and time out with
		// its outcome unknown.
		natsgo.ReconnectBufSize(-1),
		natsgo.ConnectHandler(func(*natsgo.Conn) { b.up() }),
		natsgo.ReconnectHandler(func(*natsgo.Conn) { b.up() }),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if !b.closed.Load() {
				b.log.Warn("nats connection lost; reconnecting", "err", err)
			}
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			if errors.Is(err, natsgo.ErrSlowConsumer) {
				// Messages were dropped: tell the node as a reconnect does.
				b.log.Error("nats slow consumer: deliveries dropped", "err", err)
				b.connects.Add(1)
				return
			}
			b.log.Warn("nats error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("nats broker: %w", err)
	}
	b.nc = nc
	b.js, err = jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats broker: %w", err)
	}
	if nc.IsConnected() {
		b.up()
	}
	b.wg.Add(3)
	go func() { defer b.wg.Done(); b.ensureLoop(b.ctx) }()
	go func() { defer b.wg.Done(); b.dispatch(b.ctx) }()
	go func() { defer b.wg.Done(); b.refreshLoop(b.ctx) }()
	return b, nil
}

// up runs on every (re)connect: the server may have lost the stream, and
// deliveries may have been missed.
func (b *Broker) up() {
	b.ensured.Store(false)
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// ensureLoop creates (or updates) the stream and the bucket after each
// connect, retrying until it succeeds; only then is the broker ready.
func (b *Broker) ensureLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		}
		for wait := 50 * time.Millisecond; !b.ensured.Load(); wait = min(2*wait, 2*time.Second) {
			err := b.ensure(ctx)
			if err == nil {
				b.ensured.Store(true)
				b.connects.Add(1)
				b.presence.kickRefresh()
				b.log.Info("nats broker ready")
				break
			}
			b.log.Debug("nats: preparing the stream failed", "err", err, "retry_in", wait)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

func (b *Broker) ensure(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	s, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.streamName,
		Description: "Eddy channel history",
		Subjects:    []string{b.histSubj + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
		MaxAge:      b.opts.MetaTTL,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
		RePublish:   &jetstream.RePublish{Source: b.histSubj + ">", Destination: b.delivSubj + ">"},
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", b.streamName, err)
	}
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.opts.Prefix + "_presence",
		Description: "Eddy presence members",
		TTL:         b.opts.PresenceTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("presence bucket: %w", err)
	}
	nodes, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.opts.Prefix + "_nodes",
		Description: "Eddy node announcements",
		TTL:         b.opts.NodeTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
	})
	if err != nil {
		return fmt.Errorf("nodes bucket: %w", err)
	}
	b.nodesKV.Store(&kvRef{nodes})
	b.stream.Store(&streamRef{s})
	b.kv.Store(&kvRef{kv})
	return nil
}

// Start begins delivering to h. Delivery through NATS includes this node's
// own publishes: the hub must not also deliver them locally.
func (b *Broker) Start(_ context.Context, h broker.Handler) error {
	b.handler.Store(&handlerRef{h})
	return nil
}

// Ready reports whether the connection is up and the stream and bucket are
// in place.
func (b *Broker) Ready() bool {
	return !b.closed.Load() && b.nc.IsConnected() && b.ensured.Load()
}

// Connects counts how often the broker became ready, and slow-consumer
// drops: a change after startup means deliveries may have been missed.
func (b *Broker) Connects() uint64 { return b.connects.Load() }

// NodeID is this node's id.
func (b *Broker) NodeID() string { return b.opts.NodeID }

// Close removes this node's announcement, stops the background work and
// closes the connection. Its presence members expire by themselves.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	b.forgetNode()
	b.cancel()
	b.wg.Wait()
	b.nc.Close()
	return nil
}

// unavailable wraps err so that errors.Is(err, broker.ErrUnavailable) holds.
func unavailable(op string, err error) error {
	return fmt.Errorf("nats broker: %s: %w: %w", op, broker.ErrUnavailable, err)
}

func newEpoch() string { return strconv.FormatUint(rand.Uint64()>>24, 36) }

func (b *Broker) handlerOf() broker.Handler {
	if r := b.handler.Load(); r != nil {
		return r.h
	}
	return nil
}

// PublishPresence sends ev on NATS core to the nodes subscribed to its channel.
func (b *Broker) PublishPresence(_ context.Context, ev *protocol.PresenceEvent) error {
	if !b.nc.IsConnected() {
		return unavailable("presence event", natsgo.ErrConnectionReconnecting)
	}
	m := natsgo.NewMsg(b.delivSubj + token(ev.Channel))
	m.Header.Set(hdrKind, kindPresence)
	var err error
	if m.Data, err = jsonMarshal(ev); err != nil {
		return fmt.Errorf("nats broker: presence event: %w", err)
	}
	if err := b.nc.PublishMsg(m); err != nil {
		return unavailable("presence event", err)
	}
	return nil
}
