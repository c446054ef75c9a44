package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/broker"
)

// Options configure a Broker.
type Options struct {
	// Addrs are redis://[user:password@]host:port/db URLs, one per shard.
	// Every node must list the same shards in the same order: channels are
	// spread over them by jump consistent hashing of the channel name.
	Addrs []string
	// NodeID names this node in the registry; default a random id.
	NodeID string
	// Logger receives connection events; default slog.Default().
	Logger *slog.Logger
	// Prefix starts every key and pub/sub channel name; default "eddy".
	// Pub/sub ignores the database number, so two clusters sharing one
	// Redis need different prefixes, not only different databases.
	Prefix string
	// PresenceTTL is how long a member outlives the last refresh by its
	// node; the node refreshes its members every PresenceTTL/3. Default 30s.
	PresenceTTL time.Duration
	// NodeTTL is how long an Announce lasts; default 30s.
	NodeTTL time.Duration
	// MetaTTL is how long a channel's offset and epoch outlive its last
	// publish (never shorter than the channel's HistoryTTL); past it the
	// channel starts again with a new epoch. Default 30 days; negative:
	// kept forever.
	MetaTTL time.Duration

	// Cluster makes Addrs seed addresses of one Redis Cluster (any of its
	// nodes; the client discovers the rest and follows MOVED, ASK and
	// failovers) instead of independent shards. Messages travel by sharded
	// pub/sub (cluster.go).
	Cluster bool
	// SentinelMaster names the master set that the Sentinels at
	// SentinelAddrs (host:port) watch; the broker then talks to whichever
	// server they say is the master and follows their failovers. Addrs
	// may then be empty or give one redis:// URL whose user, password and
	// database are used for the master (its host is ignored).
	SentinelMaster string
	SentinelAddrs  []string
	// WaitReplicas, when positive, makes each publish wait (Redis WAIT, on
	// the connection that ran the publish script) until that many replicas
	// acknowledged it, at most WaitTimeout (default 1s). A publish that
	// was not replicated in time is answered with an error wrapping
	// broker.ErrOutcomeUnknown: it is stored and was delivered, but a
	// failover may lose it. It costs a dedicated connection per publish in
	// flight (no pipelining) and a replication round trip.
	WaitReplicas int
	WaitTimeout  time.Duration
}

// Broker is the Redis broker. Make one with New; it is safe for concurrent use.
type Broker struct {
	opts     Options
	log      *slog.Logger
	shards   []*shard
	connects atomic.Uint64

	chanPrefix string // prefix of the pub/sub channel of a Eddy channel
	chanSuffix string // and its suffix: "}" closing the hash tag in a Cluster
	ctlChannel string // pub/sub channel of cluster notifications
	nodesKey   string // hash of announcements
	nodesExp   string // sorted set of their expiries

	cluster *sharded // pub/sub over a Redis Cluster; nil otherwise
	// pubCmd publishes a channel's messages from the scripts: publish, or
	// spublish in Redis Cluster. takeover is "1" when a failover can
	// promote a replica (Cluster, Sentinel), see takeoverLua.
	pubCmd, takeover string

	handler  atomic.Pointer[handlerRef]
	notes    notifier
	presence localMembers

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

type handlerRef struct{ h broker.Handler }

var (
	_ broker.Broker           = (*Broker)(nil)
	_ broker.PresenceStore    = (*Broker)(nil)
	_ broker.MemberSampler    = (*Broker)(nil)
	_ broker.Readiness        = (*Broker)(nil)
	_ broker.ReconnectCounter = (*Broker)(nil)
	_ broker.NodeRegistry     = (*Broker)(nil)
	_ broker.Notifier         = (*Broker)(nil)
)

const (
	defaultPrefix  = "eddy"
	defaultTTL     = 30 * time.Second
	defaultMetaTTL = 30 * 24 * time.Hour
)

// New returns a broker over the shards in opts.Addrs. It tries to connect
// at once but does not fail when Redis is down: it keeps retrying in the
// background, and Ready reports when every shard is reachable. It fails
// only on a bad configuration.
func New(opts Options) (*Broker, error) {
	if len(opts.Addrs) == 0 && opts.SentinelMaster == "" {
		return nil, errors.New("redis broker: no addresses")
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
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
	if opts.MetaTTL == 0 {
		opts.MetaTTL = defaultMetaTTL
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = time.Second
	}
	b := &Broker{
		opts:       opts,
		log:        opts.Logger.With("component", "redis-broker", "node", opts.NodeID),
		chanPrefix: opts.Prefix + ":c:",
		ctlChannel: opts.Prefix + ":ctl",
		nodesKey:   opts.Prefix + ":nodes",
		nodesExp:   opts.Prefix + ":nodes:exp",
		pubCmd:     "publish",
		takeover:   "0",
	}
	b.notes.init()
	b.presence.init()
	if opts.Cluster || opts.SentinelMaster != "" {
		if err := b.failoverShard(); err != nil {
			return nil, err
		}
		b.start()
		return b, nil
	}
	for i, addr := range opts.Addrs {
		copt, err := rueidis.ParseURL(addr)
		if err != nil {
			return nil, fmt.Errorf("redis broker: address %d: %w", i, err)
		}
		// One plain server (or a Sentinel-managed one) per shard: never probe
		// for Redis Cluster.
		copt.ForceSingleClient = true
		// Client-side caching is not used.
		copt.DisableCache = true
		// Fail fast and let callers decide: a publish must not be retried
		// behind their back, and reads should not hang while Redis is down.
		copt.DisableRetry = true
		if copt.ClientName == "" {
			copt.ClientName = "eddy-" + opts.NodeID
		}
		b.shards = append(b.shards, &shard{b: b, idx: i, opt: copt, name: redactURL(addr),
			wanted: make(map[string]struct{}), kick: make(chan struct{}, 1)})
	}
	// Cluster notifications arrive on the first shard's pub/sub connection.
	b.shards[0].wanted[b.ctlChannel] = struct{}{}
	b.start()
	return b, nil
}

// start connects and starts the background work.
func (b *Broker) start() {
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if b.cluster != nil {
		b.cluster.start(b.ctx)
		b.wg.Add(2)
		go func() { defer b.wg.Done(); b.refreshLoop(b.ctx) }()
		go func() { defer b.wg.Done(); b.notes.run(b.ctx) }()
		return
	}
	for _, s := range b.shards {
		if err := s.connect(); err != nil {
			b.log.Warn("redis not reachable yet; retrying in the background", "shard", s.name, "err", err)
		}
	}
	for _, s := range b.shards {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); s.run(b.ctx) }()
	}
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.refreshLoop(b.ctx) }()
	go func() { defer b.wg.Done(); b.notes.run(b.ctx) }()
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "?"
	}
	return u.Redacted()
}

// Start begins delivering to h. Delivery through Redis includes this
// node's own publishes: the hub must not also deliver them locally.
func (b *Broker) Start(_ context.Context, h broker.Handler) error {
	b.handler.Store(&handlerRef{h})
	return nil
}

func (b *Broker) handlerOf() broker.Handler {
	if r := b.handler.Load(); r != nil {
		return r.h
	}
	return nil
}

// NodeID is this node's id in the registry.
func (b *Broker) NodeID() string { return b.opts.NodeID }

// Connects counts how often a shard's pub/sub connection became ready. A
// change after startup means deliveries may have been missed in between,
// however short the outage, even if Ready never was seen false.
func (b *Broker) Connects() uint64 { return b.connects.Load() }

// Ready reports whether every shard has a live pub/sub connection with all
// of this node's channels subscribed. It turns false when a shard is lost
// and true again by itself after reconnecting.
func (b *Broker) Ready() bool {
	if b.closed.Load() {
		return false
	}
	if b.cluster != nil {
		return b.cluster.ready()
	}
	for _, s := range b.shards {
		if !s.ready.Load() {
			return false
		}
	}
	return true
}

// Close stops the background work and closes every connection.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	if c, err := b.shards[0].client(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = b.removeEntry(ctx, c, b.nodesKey, b.nodesExp, b.opts.NodeID)
		cancel()
	}
	b.cancel()
	b.wg.Wait()
	for _, s := range b.shards {
		if c := s.cl.Load(); c != nil {
			c.c.Close()
		}
	}
	return nil
}

// shardFor picks a channel's shard by jump consistent hashing of its name.
func (b *Broker) shardFor(channel string) *shard {
	if len(b.shards) == 1 {
		return b.shards[0]
	}
	return b.shards[jumpHash(fnv64a(channel), len(b.shards))]
}

func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// jumpHash is Lamping and Veach's jump consistent hash: adding a shard at
// the end moves only 1/n of the channels.
func jumpHash(key uint64, n int) int {
	b, j := int64(-1), int64(0)
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// unavailable wraps err from Redis so that errors.Is(err,
// broker.ErrUnavailable) holds and the cause stays visible.
func unavailable(op string, err error) error {
	return fmt.Errorf("redis broker: %s: %w: %w", op, broker.ErrUnavailable, err)
}

// publishFailed wraps an error of a publish script call. A Redis error
// reply or a failed dial proves the script did not run; anything else
// (timeout, connection lost after sending) leaves the outcome unknown.
func publishFailed(err error) error {
	var op *net.OpError
	if _, isRedis := rueidis.IsRedisErr(err); isRedis || (errors.As(err, &op) && op.Op == "dial") {
		return unavailable("publish", err)
	}
	return fmt.Errorf("redis broker: publish: %w: %w: %w", broker.ErrOutcomeUnknown, broker.ErrUnavailable, err)
}

// pubsubName is the pub/sub channel of an Eddy channel.
func (b *Broker) pubsubName(ch string) string { return b.chanPrefix + ch + b.chanSuffix }

// Keys of one channel; {channel} is the hash tag.
func (b *Broker) metaKey(ch string) string     { return b.opts.Prefix + ":m:{" + ch + "}" }
func (b *Broker) historyKey(ch string) string  { return b.opts.Prefix + ":h:{" + ch + "}" }
func (b *Broker) presenceKey(ch string) string { return b.opts.Prefix + ":p:{" + ch + "}" }
func (b *Broker) presenceExp(ch string) string { return b.opts.Prefix + ":px:{" + ch + "}" }

func newEpoch() string { return strconv.FormatUint(rand.Uint64()>>24, 36) }

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// retryConn runs an idempotent call again when it failed on a connection
// (not with a Redis error): after Redis restarted, each pipelined
// connection of the client (up to 4) fails once and is then dialled anew.
// Publishes are never retried: a lost reply does not prove the script did
// not run.
func retryConn[T any](ctx context.Context, call func() (T, error)) (T, error) {
	v, err := call()
	for range 4 {
		if err == nil || ctx.Err() != nil {
			return v, err
		}
		if _, isRedis := rueidis.IsRedisErr(err); isRedis {
			return v, err
		}
		v, err = call()
	}
	return v, err
}
