package webhooks

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// TrackerOptions configure a Tracker.
type TrackerOptions struct {
	Ledger Ledger
	// Emit receives the events this node is the one to report.
	Emit func(app string, ev Event)
	// AppOf names the app of a channel; nil: every channel is the
	// server-wide app "".
	AppOf func(channel string) string
	// Every is how often the node renews its holds and reaps dead nodes:
	// a third of the Redis ledger's TTL.
	Every  time.Duration
	Logger *slog.Logger
}

// Tracker turns this node's subscriptions and presence members into
// channel_occupied, channel_vacated, member_added and member_removed, as
// seen by the whole cluster. It is level triggered: the hub and the server
// tell it what this node holds now (non-blocking, under their own locks),
// and one goroutine brings the ledger in line, in batches, retrying after
// a failure. A channel subscribed and left again before that goroutine ran
// never reaches the ledger, and rightly sends nothing.
type Tracker struct {
	opts TrackerOptions
	log  *slog.Logger
	// enabled: some receiver wants occupancy or member events. Until then
	// the hooks return at once, so a node without such receivers keeps no
	// state for them and writes nothing to Redis.
	enabled atomic.Bool

	mu    sync.Mutex   // a leaf
	local map[key]int  // what this node holds: occupancy 1, members their connection count
	told  map[key]bool // what the ledger has of this node (true entries only)
	dirty map[key]struct{}

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	// lastWarn is when a ledger failure was last logged: while Redis is
	// down the tracker retries twice a second and logs every 10 seconds.
	lastWarn time.Time
}

// maxOps bounds the ops of one ledger call.
const maxOps = 512

// NewTracker starts a tracker; Close stops it.
func NewTracker(opts TrackerOptions) *Tracker {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AppOf == nil {
		opts.AppOf = func(string) string { return "" }
	}
	if opts.Every <= 0 {
		opts.Every = 10 * time.Second
	}
	t := &Tracker{
		opts: opts, log: opts.Logger.With("component", "webhooks"),
		local: map[key]int{}, told: map[key]bool{}, dirty: map[key]struct{}{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go t.run()
	return t
}

func (t *Tracker) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// LocalOccupied is called when this node gets its first subscriber of
// channel (the hub, under the channel's lock). It never blocks.
func (t *Tracker) LocalOccupied(channel string) {
	t.set(key{kind: kindOccupancy, app: t.opts.AppOf(channel), channel: channel}, +1, true)
}

// LocalVacated is called when this node's last subscriber of channel left.
func (t *Tracker) LocalVacated(channel string) {
	t.set(key{kind: kindOccupancy, app: t.opts.AppOf(channel), channel: channel}, 0, true)
}

// OccupiedIn, VacatedIn, MemberJoinedIn and MemberLeftIn are the same
// for the channels of app, an app other than the default one (whose
// channel names do not say their app).
func (t *Tracker) OccupiedIn(app, channel string) {
	t.set(key{kind: kindOccupancy, app: app, channel: channel}, +1, true)
}

// VacatedIn: see OccupiedIn.
func (t *Tracker) VacatedIn(app, channel string) {
	t.set(key{kind: kindOccupancy, app: app, channel: channel}, 0, true)
}

// MemberJoinedIn: see OccupiedIn.
func (t *Tracker) MemberJoinedIn(app, channel, user string) {
	t.set(key{kind: kindMember, app: app, channel: channel, user: user}, +1, false)
}

// MemberLeftIn: see OccupiedIn.
func (t *Tracker) MemberLeftIn(app, channel, user string) {
	t.set(key{kind: kindMember, app: app, channel: channel, user: user}, -1, false)
}

// MemberJoined is called when a connection of user joined the presence
// of channel on this node; MemberLeft when one left. A user is a member
// while any of their connections on any node is.
func (t *Tracker) MemberJoined(channel, user string) {
	t.set(key{kind: kindMember, app: t.opts.AppOf(channel), channel: channel, user: user}, +1, false)
}

// MemberLeft: see MemberJoined.
func (t *Tracker) MemberLeft(channel, user string) {
	t.set(key{kind: kindMember, app: t.opts.AppOf(channel), channel: channel, user: user}, -1, false)
}

// Enable starts tracking (it stays on until the node stops). Channels
// and members that exist already are not known to it: a channel occupied
// before is reported neither occupied nor, later, vacated; a member's
// connections are counted from then on.
func (t *Tracker) Enable() { t.enabled.Store(true) }

// set adds delta to k's local count (or sets it, when absolute).
func (t *Tracker) set(k key, delta int, absolute bool) {
	if !t.enabled.Load() {
		return
	}
	t.mu.Lock()
	was := t.local[k]
	n := was + delta
	if absolute {
		n = delta
	}
	if n <= 0 {
		delete(t.local, k)
		n = 0
	} else {
		t.local[k] = n
	}
	turned := (was > 0) != (n > 0)
	if turned {
		t.dirty[k] = struct{}{}
	}
	t.mu.Unlock()
	if turned {
		t.signal()
	}
}

func (t *Tracker) run() {
	defer close(t.done)
	tick := time.NewTicker(t.opts.Every)
	defer tick.Stop()
	first := true
	for {
		heartbeat := false
		select {
		case <-t.stop:
			return
		case <-t.wake:
		case <-tick.C:
			heartbeat = true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if ok := t.round(ctx, heartbeat || first, first); ok {
			first = false
		}
		if heartbeat && t.enabled.Load() {
			t.reap(ctx)
		}
		cancel()
	}
}

// round brings the ledger in line with what this node holds; heartbeat:
// call the ledger even with nothing to change, to renew this node's holds.
// It reports whether the ledger answered.
func (t *Tracker) round(ctx context.Context, heartbeat, first bool) bool {
	if !t.enabled.Load() {
		return false
	}
	t.mu.Lock()
	var keys []key
	var ops []Op
	for k := range t.dirty {
		want := t.local[k] > 0
		if want != t.told[k] {
			keys = append(keys, k)
			ops = append(ops, Op{Field: k.field(), Hold: want})
		}
		delete(t.dirty, k)
		if len(ops) == maxOps {
			break
		}
	}
	more := len(t.dirty) > 0
	t.mu.Unlock()
	if len(ops) == 0 && !heartbeat {
		return true
	}
	changed, reaped, err := t.opts.Ledger.Apply(ctx, ops)
	if err != nil {
		t.mu.Lock()
		for _, k := range keys {
			t.dirty[k] = struct{}{}
		}
		t.mu.Unlock()
		if time.Since(t.lastWarn) > 10*time.Second {
			t.lastWarn = time.Now()
			t.log.Warn("webhooks: recording channels and members failed; retrying", "err", err)
		}
		time.AfterFunc(500*time.Millisecond, t.signal)
		return false
	}
	t.mu.Lock()
	inBatch := make(map[key]bool, len(keys))
	for i, k := range keys {
		inBatch[k] = true
		if ops[i].Hold {
			t.told[k] = true
		} else {
			delete(t.told, k)
		}
	}
	if reaped && !first {
		// The cluster took this node for dead and released its holds
		// (sending the vacated and removed events): hold again what it
		// still holds, which reports those channels and members anew.
		for k := range t.told {
			if !inBatch[k] {
				delete(t.told, k)
			}
		}
		for k, n := range t.local {
			if n > 0 && !inBatch[k] {
				t.dirty[k] = struct{}{}
				more = true
			}
		}
		t.log.Warn("webhooks: this node had been taken for dead (no ledger renewal within its TTL); holding its channels again")
	}
	t.mu.Unlock()
	for i, k := range keys {
		if changed[i] {
			t.opts.Emit(k.app, k.event(ops[i].Hold))
		}
	}
	if more {
		t.signal()
	}
	return true
}

// reap releases the holds of dead nodes; this node reports what they
// were the last to hold.
func (t *Tracker) reap(ctx context.Context) {
	fields, err := t.opts.Ledger.Reap(ctx)
	if err != nil {
		t.log.Warn("webhooks: reaping dead nodes failed", "err", err)
		return
	}
	t.emitReleased(fields)
}

func (t *Tracker) emitReleased(fields []string) {
	for _, f := range fields {
		k, err := parseField(f)
		if err != nil {
			t.log.Warn("webhooks: ledger entry skipped", "err", err)
			continue
		}
		t.opts.Emit(k.app, k.event(false))
	}
}

// Close stops the tracker: what this node still holds is released, and
// the events of that (this node was the last holder) are emitted before
// it returns, so the dispatcher can still send them.
func (t *Tracker) Close(ctx context.Context) {
	select {
	case <-t.stop:
		return
	default:
	}
	close(t.stop)
	<-t.done
	fields, err := t.opts.Ledger.Leave(ctx)
	if err != nil {
		t.log.Warn("webhooks: releasing this node's channels at shutdown failed; other nodes reap them after the TTL", "err", err)
		return
	}
	t.emitReleased(fields)
}

// Holds reports how many channels and members this node holds (for tests
// and the admin API).
func (t *Tracker) Holds() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.local)
}
