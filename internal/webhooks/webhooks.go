// Package webhooks tells operators' HTTP endpoints what happens on Eddy:
// channels occupied and vacated, presence members added and removed,
// functions failing, connection limits refusing, and (for the Pusher
// protocol) client events and cache misses. Events are batched per
// receiver over a short window, signed, POSTed, and retried with
// exponential backoff for a while; in a cluster each event is decided and
// sent by exactly one node (tracker.go, redisledger.go).
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/config"
)

// Event names.
const (
	ChannelOccupied = "channel_occupied"
	ChannelVacated  = "channel_vacated"
	MemberAdded     = "member_added"
	MemberRemoved   = "member_removed"
	FunctionError   = "function_error"
	ConnectionLimit = "connection_limit"
	ClientEvent     = "client_event" // Pusher protocol: a client-* event on a private or presence channel
	CacheMiss       = "cache_miss"   // Pusher protocol: a cache- channel had no event for a new subscriber
)

// Event is one thing that happened. Name says which; the other fields are
// set as the event has them (json omits the rest). ID is unique per event
// and the same in every retry, so that receivers can drop duplicates:
// delivery is at least once.
type Event struct {
	Name     string `json:"name"`
	ID       string `json:"id,omitempty"`
	Channel  string `json:"channel,omitempty"`
	UserID   string `json:"user_id,omitempty"`
	Event    string `json:"event,omitempty"`     // client_event: the event's name
	Data     string `json:"data,omitempty"`      // client_event: its data, a string as Pusher sends it
	SocketID string `json:"socket_id,omitempty"` // client_event: the sender's socket id
	Function string `json:"function,omitempty"`  // function_error
	Error    string `json:"error,omitempty"`     // function_error: what failed
	Limit    string `json:"limit,omitempty"`     // connection_limit: the setting that refused
	Node     string `json:"node,omitempty"`      // function_error, connection_limit: where it happened
	// Count is how many failures or refusals this event stands for
	// (function_error, connection_limit are rate limited: the others of
	// the interval are counted here, not sent).
	Count int `json:"count,omitempty"`
}

// Options configure a Dispatcher. The zero value works (no receivers).
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// NodeID names this node in function_error and connection_limit events.
	NodeID string
	// Window is how long events gather before a POST (default 250ms);
	// RetryFor how long a failing POST is retried (default 5m); FirstBackoff
	// the first wait between tries (default 1s, doubling up to a minute).
	Window, RetryFor, FirstBackoff time.Duration
	// QueueSize bounds the events waiting per receiver (default 10,000):
	// past it new events are dropped and counted. MaxBatch bounds the
	// events of one POST (default 100).
	QueueSize, MaxBatch int
	// Client sends the POSTs; default a client with a 10 s timeout.
	Client *http.Client
	// Claims decides rate limited events across the cluster; nil: this
	// node alone (one node).
	Claims Claimer
	// RateInterval is the least time between two function_error events of
	// one function, or two connection_limit events of one limit, in the
	// whole cluster (default 10s).
	RateInterval time.Duration
}

// Dispatcher sends events to the receivers that asked for them. Emit never
// blocks: each receiver has its own bounded queue and sender goroutine, so
// a slow or dead receiver holds up nobody.
type Dispatcher struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	limiter *rateLimiter

	mu      sync.Mutex
	senders map[string]*sender // by hookKey, every app's
	closed  bool
	// wanted holds the event names some receiver asked for, so that work
	// for events nobody wants (rate limit claims) is skipped.
	wanted atomic.Pointer[map[string]bool]
}

// NewDispatcher returns a dispatcher without receivers; SetHooks gives it some.
func NewDispatcher(opts Options) *Dispatcher {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Window <= 0 {
		opts.Window = 250 * time.Millisecond
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = 5 * time.Minute
	}
	if opts.FirstBackoff <= 0 {
		opts.FirstBackoff = time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10_000
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 100
	}
	if opts.Client == nil {
		// A redirect is not followed: it would turn the POST into a GET.
		opts.Client = &http.Client{Timeout: defaultPostTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if opts.RateInterval <= 0 {
		opts.RateInterval = 10 * time.Second
	}
	d := &Dispatcher{
		opts:    opts,
		log:     opts.Logger.With("component", "webhooks"),
		metrics: newMetrics(opts.Registerer),
		senders: map[string]*sender{},
	}
	d.limiter = newRateLimiter(d)
	d.wanted.Store(&map[string]bool{})
	return d
}

// hookKey identifies a receiver's app and settings: a changed entry is a
// new sender.
func hookKey(app string, h config.Webhook) string {
	ev := slices.Clone(h.Events)
	slices.Sort(ev)
	b, _ := jsonMarshal([]any{app, h.ID, h.URL, h.Secret, h.Format, h.Key, ev})
	return string(b)
}

// SetHooks replaces the receivers of the default app (eddy.yaml's and the
// admin API's). Those whose settings did not change keep their queue and
// their batch in flight; the others stop, and their queued events are
// dropped (counted as dropped_shutdown).
func (d *Dispatcher) SetHooks(hooks []config.Webhook) { d.SetAppHooks("", hooks) }

// SetAppHooks replaces the receivers of app ("" is the default app), as
// SetHooks does; other apps' receivers are left as they are. nil hooks
// remove the app's receivers.
func (d *Dispatcher) SetAppHooks(app string, hooks []config.Webhook) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	keep := map[string]*sender{}
	for k, s := range d.senders {
		if s.app != app {
			keep[k] = s
		}
	}
	for _, h := range hooks {
		k := hookKey(app, h)
		if s := d.senders[k]; s != nil {
			keep[k] = s
			continue
		}
		if keep[k] == nil {
			keep[k] = newSender(d, h)
			keep[k].app = app
		}
	}
	for k, s := range d.senders {
		if keep[k] == nil {
			s.stop(0)
		}
	}
	d.senders = keep
	wanted := map[string]bool{}
	for _, s := range keep {
		for name := range s.events {
			wanted[name] = true
		}
	}
	d.wanted.Store(&wanted)
}

// Wants reports whether some receiver asked for events named name.
func (d *Dispatcher) Wants(name string) bool { return (*d.wanted.Load())[name] }

// Hooks lists the default app's receivers in force.
func (d *Dispatcher) Hooks() []config.Webhook {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]config.Webhook, 0, len(d.senders))
	for _, s := range d.senders {
		if s.app == "" {
			out = append(out, s.hook)
		}
	}
	slices.SortFunc(out, func(a, b config.Webhook) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// webhooksFor lists the senders of app's receivers ("" the default
// app's): an app's events go to its own receivers only. d.mu held.
func (d *Dispatcher) webhooksFor(app string) []*sender {
	out := make([]*sender, 0, len(d.senders))
	for _, s := range d.senders {
		if s.app == app {
			out = append(out, s)
		}
	}
	return out
}

// Emit queues ev for every receiver of app that asked for ev.Name, giving
// it an id if it has none. It never blocks. The caller must be the one
// node that saw ev happen (the Pusher protocol's client_event and
// cache_miss are seen by one node only; occupancy and membership are
// decided by the Tracker).
func (d *Dispatcher) Emit(app string, ev Event) {
	if ev.ID == "" {
		ev.ID = NewEventID()
	}
	d.mu.Lock()
	senders := d.webhooksFor(app)
	d.mu.Unlock()
	for _, s := range senders {
		if s.wants(ev.Name) {
			s.enqueue(ev)
		}
	}
}

// Close stops every sender. Events still queued get until ctx ends to go
// out (one try each); what is left is dropped and counted.
func (d *Dispatcher) Close(ctx context.Context) {
	d.mu.Lock()
	d.closed = true
	senders := d.senders
	d.senders = map[string]*sender{}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			grace := time.Duration(0)
			if dl, ok := ctx.Deadline(); ok {
				grace = time.Until(dl)
			}
			s.stop(grace)
		}()
	}
	wg.Wait()
}

// NewEventID returns a random event id (128 bits, hex).
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
