package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/httprt"
	"github.com/eddyrt/eddy/internal/functions/jsrt"
	"github.com/eddyrt/eddy/internal/functions/kvstore"
	"github.com/eddyrt/eddy/internal/functions/secrets"
	"github.com/eddyrt/eddy/internal/functions/transpile"
	"github.com/eddyrt/eddy/internal/functions/wasmrt"
)

// Defaults and limits.
const (
	DefaultMaxDepth       = 3
	DefaultTimeout        = 100 * time.Millisecond // js
	DefaultHTTPTimeout    = 500 * time.Millisecond
	MaxTimeoutMS          = 10_000
	MaxChainLength        = 16
	MaxMessagesPerApply   = 64 // emitted messages one Apply may publish
	maxCachedChannels     = 1 << 16
	failureLogMinInterval = time.Second
	// LogRate and LogBurst are the token bucket of ctx.log lines of one
	// function (all its VMs together), on top of jsrt.MaxLogLines per
	// invocation; refused lines are counted in log_dropped_total.
	LogRate  = 20
	LogBurst = 100
)

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("functions: engine closed")

// Options configure an Engine. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the engine's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// MaxDepth bounds chains of emitted messages (default 3): the published
	// message has depth 0, a message emitted while processing a message of
	// depth d has depth d+1, and messages deeper than MaxDepth are dropped
	// (logged and counted in eddy_functions_emitted_dropped_total).
	MaxDepth int
	// DefaultTimeout is the per-invocation limit of JS functions that set no
	// timeout_ms (default 100ms). HTTP functions default to 500ms.
	DefaultTimeout time.Duration
	// PoolSize is the number of VMs per JS function (default GOMAXPROCS).
	PoolSize int
	// ValidChannel validates channels of emitted messages; nil accepts all
	// non-empty names.
	ValidChannel func(string) error
	// ValidData checks (and may normalize) the data of every message a
	// function outputs; an error makes the invocation a failure of the
	// function (handled by on_error, counted in invalid_output_total), not
	// an error of the publisher. nil accepts what the runtimes produce.
	ValidData func(json.RawMessage) (json.RawMessage, error)
	// AllowPrivateURLs lets HTTP functions reach loopback, private and
	// link-local addresses (config allow_private_urls); off, such targets
	// are refused after DNS resolution.
	AllowPrivateURLs bool
	// KV is the store behind ctx.kv (kvstore.Redis in cluster mode); nil
	// gives the engine its own in-memory store.
	KV fnrt.KV
	// OnFailure, when set, hears of every failure of a function run on a
	// message (not of dry runs): the function_error webhook. It must not
	// block.
	OnFailure func(function, channel string, err error)
	// Observer, when set, sees the functions' log lines and failures
	// (observer.go).
	Observer Observer
	// Secrets backs ctx.secrets and the secrets API; nil (no secrets_key)
	// leaves ctx.secrets empty and refuses to store secrets.
	Secrets *secrets.Vault
	// WasmCacheDir keeps compiled WebAssembly modules across restarts
	// (config functions_wasm_cache_dir); empty keeps them in memory only.
	WasmCacheDir string
}

// Engine holds the deployed functions and associations and runs them.
// All methods are safe for concurrent use.
type Engine struct {
	store    Store
	opts     Options
	log      *slog.Logger
	metrics  *metrics
	runtimes map[string]fnrt.Runtime

	mu     sync.Mutex // serializes changes; Apply never takes it
	snap   atomic.Pointer[snapshot]
	closed atomic.Bool
}

// Touches reports whether Apply may do more with a message of channel than
// return it as it is: a function is associated with the channel, or the
// engine is closed (Apply refuses). A publisher that gets false can leave
// Apply, and the copies of the message it makes, out.
func (e *Engine) Touches(channel string) bool {
	return len(e.snap.Load().match(channel)) > 0 || e.closed.Load()
}

// compiled is a deployed function ready to run.
type compiled struct {
	fn      Function
	inst    fnrt.Instance
	m       *fnMetrics
	log     *slog.Logger
	lastLog atomic.Int64 // unix nanos of the last failure logged
	quiet   atomic.Int64 // failures not logged since
}

type association struct {
	Association
	drop bool
}

// snapshot is an immutable view of the deployment plus a cache of which
// associations match a channel. Changes build a new snapshot.
type snapshot struct {
	funcs  map[string]*compiled
	assocs []*association // in run order

	cacheMu sync.RWMutex
	cache   map[string][]*association
}

func (s *snapshot) match(channel string) []*association {
	if len(s.assocs) == 0 {
		return nil
	}
	s.cacheMu.RLock()
	m, ok := s.cache[channel]
	s.cacheMu.RUnlock()
	if ok {
		return m
	}
	for _, a := range s.assocs {
		if match(a.Pattern, channel) {
			m = append(m, a)
		}
	}
	s.cacheMu.Lock()
	if len(s.cache) < maxCachedChannels {
		s.cache[channel] = m
	}
	s.cacheMu.Unlock()
	return m
}

func newSnapshot(funcs map[string]*compiled, assocs []*association) *snapshot {
	slices.SortFunc(assocs, func(a, b *association) int {
		switch {
		case a.Pattern == b.Pattern:
			return 0
		case runsBefore(a.Pattern, b.Pattern):
			return -1
		default:
			return 1
		}
	})
	return &snapshot{funcs: funcs, assocs: assocs, cache: make(map[string][]*association)}
}

// New creates an engine and loads the store. Stored functions that no
// longer compile are logged and skipped.
func New(store Store, opts Options) (*Engine, error) {
	if store == nil {
		return nil, errors.New("functions: nil store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = DefaultTimeout
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = runtime.GOMAXPROCS(0)
	}
	if opts.KV == nil {
		opts.KV = kvstore.NewMemory()
	}
	wasm, err := wasmrt.NewCached(opts.WasmCacheDir)
	if err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	e := &Engine{
		store:   store,
		opts:    opts,
		log:     opts.Logger.With("component", "functions"),
		metrics: newMetrics(opts.Registerer),
		runtimes: map[string]fnrt.Runtime{
			RuntimeJS:   jsrt.New(),
			RuntimeHTTP: httprt.New(opts.AllowPrivateURLs),
			RuntimeWasm: wasm,
		},
	}
	e.snap.Store(newSnapshot(map[string]*compiled{}, nil))
	if err := e.Reload(context.Background()); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Close stops the engine and releases the functions' resources.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Swap(true) {
		return nil
	}
	s := e.snap.Swap(newSnapshot(map[string]*compiled{}, nil))
	for _, c := range s.funcs {
		c.inst.Close()
	}
	for _, rt := range e.runtimes {
		rt.Close()
	}
	return nil
}

func (e *Engine) compile(fn Function) (*compiled, error) {
	rt, ok := e.runtimes[fn.Runtime]
	if !ok {
		return nil, badRequest(fn.Name, "unknown runtime %q (want js, http or wasm)", fn.Runtime)
	}
	timeout := time.Duration(fn.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = e.opts.DefaultTimeout
		if fn.Runtime == RuntimeHTTP {
			timeout = DefaultHTTPTimeout
		}
	}
	log := e.log.With("function", fn.Name)
	m := e.metrics.forFunction(fn.Name)
	logs := rate.NewLimiter(LogRate, LogBurst)
	inst, err := rt.Compile(fn, fnrt.Config{
		Logger: log, Timeout: timeout, PoolSize: e.opts.PoolSize,
		MaxMemory:        int64(fn.MaxMemoryMB) << 20,
		OnLog:            logs.Allow,
		OnLogDropped:     m.logDropped.Inc,
		OnLogLine:        e.logLineFunc(fn.Name),
		KV:               e.opts.KV,
		AllowPrivateURLs: e.opts.AllowPrivateURLs,
		Secrets:          e.runtimeSecrets(),
	})
	if err != nil {
		if errors.Is(err, transpile.ErrLimit) {
			e.metrics.sourceLimits.Inc()
		}
		return nil, badRequest(fn.Name, "%v", err)
	}
	return &compiled{fn: fn, inst: inst, m: m, log: log}, nil
}

// run invokes one function and accounts for it.
func (e *Engine) run(ctx context.Context, c *compiled, msg Message) (fnrt.Result, error) {
	return e.invoke(ctx, c, msg, false)
}

// dryRun invokes one function for Invoke, an operator's test: it is counted
// like any invocation, but a failure is the answer, not a warning to log.
func (e *Engine) dryRun(ctx context.Context, c *compiled, msg Message) (fnrt.Result, error) {
	return e.invoke(ctx, c, msg, true)
}

func (e *Engine) invoke(ctx context.Context, c *compiled, msg Message, dry bool) (fnrt.Result, error) {
	start := time.Now()
	res, err := c.inst.Run(ctx, msg)
	if err == nil {
		err = checkOutput(msg, res)
	}
	c.m.latency.Observe(time.Since(start).Seconds())
	c.m.invocations.Inc()
	if err == nil {
		err = e.checkOutput(&res, msg)
	}
	switch {
	case errors.Is(err, fnrt.ErrUnavailable):
		c.m.unavailable.Inc()
		if !dry {
			c.logFailure(err, msg.Channel)
			e.observeFailure(c, msg.Channel, err)
		}
	case err != nil:
		c.m.failures.Inc()
		switch {
		case errors.Is(err, fnrt.ErrTimeout):
			c.m.timeouts.Inc()
		case errors.Is(err, fnrt.ErrResourceLimit), errors.Is(err, fnrt.ErrKVLimit),
			errors.Is(err, fnrt.ErrFetchLimit), errors.Is(err, fnrt.ErrFetchRefused):
			c.m.limits.Inc()
		case errors.Is(err, ErrInvalidOutput):
			c.m.invalidOutput.Inc()
		}
		if !dry {
			c.logFailure(err, msg.Channel)
			if e.opts.OnFailure != nil {
				e.opts.OnFailure(c.fn.Name, msg.Channel, err)
			}
			e.observeFailure(c, msg.Channel, err)
		}
	case res.Action == fnrt.Reject:
		c.m.rejections.Inc()
	}
	return res, err
}

// ErrInvalidOutput is wrapped by failures of functions whose output data
// Options.ValidData refused.
var ErrInvalidOutput = errors.New("function_error: the function returned invalid data")

// checkOutput runs Options.ValidData over the data a function produced:
// the message it passed on (when it changed) and the messages it emitted.
func (e *Engine) checkOutput(res *fnrt.Result, in Message) error {
	if e.opts.ValidData == nil {
		return nil
	}
	if res.Action == fnrt.Pass && string(res.Message.Data) != string(in.Data) {
		d, err := e.opts.ValidData(res.Message.Data)
		if err != nil {
			return fmt.Errorf("%w: message.data: %v", ErrInvalidOutput, err)
		}
		res.Message.Data = d
	}
	for i := range res.Publish {
		d, err := e.opts.ValidData(res.Publish[i].Data)
		if err != nil {
			return fmt.Errorf("%w: published message %d: %v", ErrInvalidOutput, i+1, err)
		}
		res.Publish[i].Data = d
	}
	return nil
}

// logFailure logs at most one failure per function per second so that a
// broken endpoint cannot flood the log; the count of the others is kept.
func (c *compiled) logFailure(err error, channel string) {
	now := time.Now().UnixNano()
	last := c.lastLog.Load()
	if now-last < int64(failureLogMinInterval) || !c.lastLog.CompareAndSwap(last, now) {
		c.quiet.Add(1)
		return
	}
	c.log.Warn("function failed", "channel", channel, "err", err, "suppressed", c.quiet.Swap(0))
}
