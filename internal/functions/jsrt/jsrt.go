// Package jsrt runs functions written in JavaScript with dop251/goja.
//
// The source must define `function handle(message, ctx)`. Each deployed
// function compiles its program once and keeps a pool of VMs (goja VMs are
// not goroutine-safe), each of which has run the program's top level once.
// Global state therefore lives per VM: functions must not rely on it being
// shared.
package jsrt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/transpile"
)

// MaxSourceBytes bounds a function's source.
const MaxSourceBytes = 256 << 10

// maxCallStack bounds JS recursion so that a runaway recursion fails fast.
const maxCallStack = 1024

// MaxRegexpMatch bounds one backtracking regular-expression match. goja
// runs regexes that Go's linear-time engine cannot (lookarounds,
// backreferences) on dlclark/regexp2, inside one native call that
// vm.Interrupt cannot stop: /^(\w+\s?)+(?=!)$/ on 41 characters would
// otherwise run for hours. goja exposes no per-VM setting, so the bound is
// regexp2's process-wide default (read when a pattern is compiled, which goja
// does lazily inside the VM). A match past it fails as if nothing matched,
// and the invocation's own timeout, already due for any function with a
// shorter one, stops it at the next instruction.
const MaxRegexpMatch = 100 * time.Millisecond

func init() { regexp2.DefaultMatchTimeout = MaxRegexpMatch }

// Runtime compiles JavaScript functions. It owns the memory watchdog shared
// by every invocation.
type Runtime struct {
	wd *watchdog
	// ctx.fetch's clients: fetchPublic dials only public addresses.
	fetchPublic, fetchAny *http.Client
}

// New returns the JavaScript runtime.
func New() *Runtime {
	return &Runtime{wd: newWatchdog(), fetchPublic: newFetchClient(false), fetchAny: newFetchClient(true)}
}

// Close stops the memory watchdog.
func (r *Runtime) Close() error {
	r.wd.close()
	r.fetchPublic.CloseIdleConnections()
	r.fetchAny.CloseIdleConnections()
	return nil
}

// MaxAllowHosts bounds a function's allow_hosts.
const MaxAllowHosts = 32

// allowHosts validates and normalizes allow_hosts.
func allowHosts(hosts []string) ([]string, error) {
	if len(hosts) > MaxAllowHosts {
		return nil, fmt.Errorf("allow_hosts has %d entries, the limit is %d", len(hosts), MaxAllowHosts)
	}
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		name := strings.TrimPrefix(h, "*.")
		if name == "" || len(h) > 253 || strings.ContainsAny(name, "/:@*? \t") && !strings.HasPrefix(name, "[") {
			return nil, fmt.Errorf("allow_hosts entry %q is not a host name or address (like api.example.com, *.example.com or 203.0.113.7)", h)
		}
		out = append(out, strings.Trim(h, "[]"))
	}
	return out, nil
}

// Compile checks fn's syntax, runs its top level once in a fresh VM and
// requires a global function named handle. Syntax errors name the line and
// column.
func (r *Runtime) Compile(fn fnrt.Function, cfg fnrt.Config) (fnrt.Instance, error) {
	if strings.TrimSpace(fn.Source) == "" {
		return nil, errors.New("source is empty")
	}
	if len(fn.Source) > MaxSourceBytes {
		return nil, fmt.Errorf("%w: source is %d bytes, the limit is %d", transpile.ErrLimit, len(fn.Source), MaxSourceBytes)
	}
	prg, err := compileSource(fn)
	if err != nil {
		return nil, err
	}
	hosts, err := allowHosts(fn.AllowHosts)
	if err != nil {
		return nil, err
	}
	fetch := r.fetchPublic
	if cfg.AllowPrivateURLs {
		fetch = r.fetchAny
	}
	size := max(cfg.PoolSize, 1)
	if cfg.MaxMemory <= 0 {
		cfg.MaxMemory = DefaultMaxMemory
	}
	in := &instance{
		wd:         r.wd,
		limits:     newLimits(cfg.MaxMemory),
		name:       fn.Name,
		prg:        prg,
		env:        fn.Env,
		cfg:        cfg,
		timeout:    cfg.Timeout,
		fetch:      fetch,
		allowHosts: hosts,
		idle:       make(chan *vmState, size),
		slots:      make(chan struct{}, size),
	}
	in.slots <- struct{}{}
	v, err := in.newVM()
	if err != nil {
		return nil, err
	}
	in.put(v)
	return in, nil
}

// parserPos finds the position in goja's parser messages ("f.js: Line 4:1 Unexpected token }").
var parserPos = regexp.MustCompile(`Line (\d+):(\d+) (.*)$`)

// syntaxError rewrites goja's compile errors into a message that names the
// line plainly: "syntax error at line 4, column 1: Unexpected token }".
func syntaxError(err error) error {
	var se *goja.CompilerSyntaxError
	if errors.As(err, &se) {
		if se.File != nil {
			p := se.File.Position(se.Offset)
			return fmt.Errorf("syntax error at line %d, column %d: %s", p.Line, p.Column, se.Message)
		}
		if m := parserPos.FindStringSubmatch(se.Message); m != nil {
			return fmt.Errorf("syntax error at line %s, column %s: %s", m[1], m[2], m[3])
		}
	}
	return fmt.Errorf("compile: %v", err)
}

// instance is one deployed function: a compiled program and its VM pool.
// slots holds a token per VM in existence, idle the VMs not in use.
type instance struct {
	wd      *watchdog
	limits  limits
	name    string
	prg     *goja.Program
	env     map[string]string
	cfg     fnrt.Config
	timeout time.Duration
	// fetch is ctx.fetch's client, allowHosts the hosts it may reach.
	fetch      *http.Client
	allowHosts []string
	idle       chan *vmState
	slots      chan struct{}
	closed     atomic.Bool
}

// acquireWait is how long a call waits for a VM of a full pool: every VM
// in use finishes within the timeout, so a wait much longer than that means
// the function is overloaded or stuck. The second added to it absorbs a
// busy machine's scheduling delays.
func acquireWait(timeout time.Duration) time.Duration { return 2*timeout + time.Second }

// get takes an idle VM or makes one, waiting at most wait for a VM of a
// full pool to come back: a pool whose VMs are all stuck must answer
// ErrUnavailable, not queue callers forever.
func (in *instance) get(ctx context.Context, wait time.Duration) (*vmState, error) {
	select {
	case v := <-in.idle:
		return v, nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, fmt.Errorf("%w: no VM of its pool of %d came free within %v", fnrt.ErrUnavailable, cap(in.slots), wait)
	case v := <-in.idle:
		return v, nil
	case in.slots <- struct{}{}:
		v, err := in.newVM()
		if err != nil {
			<-in.slots
			return nil, err
		}
		return v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns v to the pool, or retires it when it may be in a bad state
// (interrupted, panicked) or the instance is closed.
func (in *instance) put(v *vmState) {
	if v.broken || in.closed.Load() {
		if v.memoryStopped {
			in.wd.collectSoon()
		}
		<-in.slots
		return
	}
	in.idle <- v
}

// Close retires idle VMs; VMs in use are retired when returned.
func (in *instance) Close() error {
	in.closed.Store(true)
	for {
		select {
		case <-in.idle:
			<-in.slots
		default:
			return nil
		}
	}
}

// Run invokes handle(message, ctx) on a pooled VM. Secret values are
// masked in the reason and the error it returns.
func (in *instance) Run(ctx context.Context, msg fnrt.Message) (fnrt.Result, error) {
	return in.redactResult(in.run(ctx, msg))
}

func (in *instance) run(ctx context.Context, msg fnrt.Message) (fnrt.Result, error) {
	if len(msg.Data) > fnrt.MaxDataBytes {
		return fnrt.Result{}, fmt.Errorf("message data is %d bytes, the limit for functions is %d", len(msg.Data), fnrt.MaxDataBytes)
	}
	if len(msg.Info) > fnrt.MaxInfoBytes {
		msg.Info = nil
	}
	timeout := in.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return fnrt.Result{}, fnrt.ErrTimeout
	}
	v, err := in.get(ctx, acquireWait(timeout))
	if err != nil {
		if errors.Is(err, fnrt.ErrUnavailable) {
			return fnrt.Result{}, err
		}
		return fnrt.Result{}, fmt.Errorf("waiting for a VM: %w", err)
	}
	defer in.put(v)
	return v.run(msg, timeout)
}
