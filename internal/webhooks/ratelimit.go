package webhooks

import (
	"context"
	"sync"
	"time"
)

// Claimer decides which node of a cluster sends a rate limited event:
// Claim reports whether this node is the first to take key within ttl.
type Claimer interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// maxErrorText bounds the error text of a function_error event.
const maxErrorText = 1024

// FunctionFailed reports that function failed or timed out on channel.
// At most one function_error per function goes out per RateInterval
// (cluster-wide with a Claimer); the failures in between are counted in
// the next one's count. It never blocks.
func (d *Dispatcher) FunctionFailed(function, channel string, err error) {
	d.FunctionFailedIn("", function, channel, err)
}

// FunctionFailedIn is FunctionFailed for a function of app ("": the
// default app): the event goes to app's own receivers, rate limited per
// app and function.
func (d *Dispatcher) FunctionFailedIn(app, function, channel string, err error) {
	if !d.Wants(FunctionError) {
		return
	}
	text := "failed"
	if err != nil {
		text = err.Error()
	}
	if len(text) > maxErrorText {
		text = text[:maxErrorText]
	}
	d.limiter.occur(app, FunctionError+":"+function, Event{Name: FunctionError, Function: function, Channel: channel, Error: text, Node: d.opts.NodeID})
}

// ConnectionRefused reports that limit (a setting's name, e.g.
// max_connections) refused a connection. Rate limited like FunctionFailed.
func (d *Dispatcher) ConnectionRefused(limit string) {
	d.ConnectionRefusedIn("", limit)
}

// ConnectionRefusedIn is ConnectionRefused for a connection of app ("":
// the default app), reported to app's own receivers.
func (d *Dispatcher) ConnectionRefusedIn(app, limit string) {
	if !d.Wants(ConnectionLimit) {
		return
	}
	d.limiter.occur(app, ConnectionLimit+":"+limit, Event{Name: ConnectionLimit, Limit: limit, Node: d.opts.NodeID})
}

// rateLimiter lets one event per key and interval through. The
// occurrences in between are not lost: a timer sends them, counted, as one
// event when the interval ends. Keys are app ids with function names and
// limit names, so the maps stay as small as the deployment.
type rateLimiter struct {
	d        *Dispatcher
	mu       sync.Mutex
	last     map[string]time.Time // when the last event of key went out
	pending  map[string]*Event    // the newest occurrence since, Count the number of them
	apps     map[string]string    // the app whose receivers get key's events
	timers   map[string]*time.Timer
	loggedAt map[string]time.Time
}

func newRateLimiter(d *Dispatcher) *rateLimiter {
	return &rateLimiter{d: d, last: map[string]time.Time{}, pending: map[string]*Event{}, apps: map[string]string{},
		timers: map[string]*time.Timer{}, loggedAt: map[string]time.Time{}}
}

func (r *rateLimiter) occur(app, key string, ev Event) {
	if app != "" {
		// The default app's keys begin with an event name, never "app:".
		key = "app:" + app + ":" + key
	}
	interval := r.d.opts.RateInterval
	r.mu.Lock()
	count := 1
	if p := r.pending[key]; p != nil {
		count = p.Count + 1
	}
	ev.Count = count
	r.pending[key] = &ev
	r.apps[key] = app
	since := time.Since(r.last[key])
	if since < interval {
		if r.timers[key] == nil {
			r.timers[key] = time.AfterFunc(interval-since, func() { r.flush(key) })
		}
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.flush(key)
}

// flush sends key's pending occurrences as one event.
func (r *rateLimiter) flush(key string) {
	r.mu.Lock()
	ev, app := r.pending[key], r.apps[key]
	delete(r.pending, key)
	delete(r.apps, key)
	delete(r.timers, key)
	if ev == nil {
		r.mu.Unlock()
		return
	}
	r.last[key] = time.Now()
	r.mu.Unlock()
	if r.d.opts.Claims == nil {
		r.d.Emit(app, *ev)
		return
	}
	// The claim is a Redis call: never on the caller's goroutine (a
	// function's or a connection's). One goroutine per key and interval.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ok, err := r.d.opts.Claims.Claim(ctx, key, r.d.opts.RateInterval)
		if err != nil {
			// Better twice than never: without Redis every node sends its own.
			r.logOnce("claim:"+key, func() { r.d.log.Warn("webhook: rate limit claim failed; sending anyway", "key", key, "err", err) })
			ok = true
		}
		if ok {
			r.d.Emit(app, *ev)
		}
	}()
}

// logOnce runs log at most once a minute per key.
func (r *rateLimiter) logOnce(key string, log func()) {
	r.mu.Lock()
	if time.Since(r.loggedAt[key]) < time.Minute {
		r.mu.Unlock()
		return
	}
	r.loggedAt[key] = time.Now()
	r.mu.Unlock()
	log()
}
