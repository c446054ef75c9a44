package functions

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"time"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/jsrt"
	"github.com/eddyrt/eddy/internal/functions/transpile"
	"github.com/eddyrt/eddy/internal/functions/wasmrt"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// Limits on what can be deployed.
const (
	maxEnvVars       = 64
	maxEnvBytes      = 4 << 10
	maxPatternBytes  = 256
	maxConcurrency   = 4096
	maxURLBytes      = 2048
	maxSecretBytes   = 1024
	defaultEventName = "message"
)

// ValidName reports whether name can name a function: 1-64 characters from
// [A-Za-z0-9_.-], not starting with '.' or '-'.
func ValidName(name string) bool { return nameRE.MatchString(name) }

func validateFunction(fn Function) error {
	if !ValidName(fn.Name) {
		return badRequest("", "invalid function name %q: use 1-64 characters from A-Z a-z 0-9 _ . - (not starting with . or -)", fn.Name)
	}
	switch fn.Runtime {
	case RuntimeJS:
		if fn.URL != "" || fn.Secret != "" {
			return badRequest(fn.Name, "url and secret are for runtime http")
		}
	case RuntimeHTTP:
		if fn.Source != "" {
			return badRequest(fn.Name, "source is for runtime js")
		}
		if fn.URL == "" || len(fn.URL) > maxURLBytes {
			return badRequest(fn.Name, "runtime http needs a url")
		}
		if len(fn.Secret) > maxSecretBytes {
			return badRequest(fn.Name, "secret longer than %d bytes", maxSecretBytes)
		}
	case RuntimeWasm:
		if fn.Source != "" || fn.URL != "" || fn.Secret != "" {
			return badRequest(fn.Name, "runtime wasm takes a module, not source, url or secret")
		}
		if len(fn.Module) == 0 {
			return badRequest(fn.Name, "runtime wasm needs a module (the .wasm file)")
		}
	default:
		return badRequest(fn.Name, "unknown runtime %q (want js, http or wasm)", fn.Runtime)
	}
	if len(fn.Module) > 0 && fn.Runtime != RuntimeWasm {
		return badRequest(fn.Name, "module is for runtime wasm")
	}
	if fn.TimeoutMS < 0 || fn.TimeoutMS > MaxTimeoutMS {
		return badRequest(fn.Name, "timeout_ms must be between 1 and %d (0 for the default)", MaxTimeoutMS)
	}
	switch fn.Language {
	case "", transpile.LangJS, transpile.LangTS:
		if fn.Language != "" && fn.Runtime != RuntimeJS {
			return badRequest(fn.Name, "language is for runtime js")
		}
	default:
		return badRequest(fn.Name, "language must be js or ts, not %q", fn.Language)
	}
	if len(fn.AllowHosts) > 0 && fn.Runtime != RuntimeJS {
		return badRequest(fn.Name, "allow_hosts is for runtime js (ctx.fetch)")
	}
	if fn.Runtime == RuntimeWasm {
		if fn.MaxMemoryMB != 0 && (fn.MaxMemoryMB < wasmrt.MinMemoryMB || fn.MaxMemoryMB > wasmrt.MaxMemoryMB) {
			return badRequest(fn.Name, "max_memory_mb of a wasm function is between %d and %d (0 for the default of %d)", wasmrt.MinMemoryMB, wasmrt.MaxMemoryMB, wasmrt.DefaultMaxMemory>>20)
		}
	} else if fn.MaxMemoryMB != 0 && (fn.Runtime != RuntimeJS || fn.MaxMemoryMB < jsrt.MinMemoryMB || fn.MaxMemoryMB > jsrt.MaxMemoryMB) {
		return badRequest(fn.Name, "max_memory_mb is for runtime js, between %d and %d (0 for the default of %d)", jsrt.MinMemoryMB, jsrt.MaxMemoryMB, jsrt.DefaultMaxMemory>>20)
	}
	if fn.MaxConcurrency < 0 || fn.MaxConcurrency > maxConcurrency {
		return badRequest(fn.Name, "max_concurrency must be between 1 and %d (0 for the default)", maxConcurrency)
	}
	if len(fn.Env) > maxEnvVars {
		return badRequest(fn.Name, "more than %d env variables", maxEnvVars)
	}
	for k, v := range fn.Env {
		if k == "" || len(k)+len(v) > maxEnvBytes {
			return badRequest(fn.Name, "env variable %q is empty or longer than %d bytes", k, maxEnvBytes)
		}
	}
	return nil
}

func normalizeAssociation(a Association) (Association, error) {
	if a.Pattern == "" || len(a.Pattern) > maxPatternBytes {
		return a, badRequest("", "pattern must be 1-%d bytes", maxPatternBytes)
	}
	if len(a.Functions) == 0 || len(a.Functions) > MaxChainLength {
		return a, badRequest("", "an association lists 1-%d functions", MaxChainLength)
	}
	switch a.OnError {
	case "":
		a.OnError = OnErrorPass
	case OnErrorPass, OnErrorDrop:
	default:
		return a, badRequest("", "on_error must be pass or drop, not %q", a.OnError)
	}
	a.Functions = slices.Clone(a.Functions)
	return a, nil
}

// PutFunction validates and compiles fn, stores it, and then makes it live,
// replacing the function of the same name. If fn does not compile (a
// syntax error, which names the line, or no handle function) the error is a
// *BadRequestError and the running version, if any, is kept.
func (e *Engine) PutFunction(ctx context.Context, fn Function) error {
	fn.Env = maps.Clone(fn.Env)
	if err := validateFunction(fn); err != nil {
		return err
	}
	c, err := e.compile(fn)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		c.inst.Close()
		return ErrClosed
	}
	if err := e.store.PutFunction(ctx, fn); err != nil {
		c.inst.Close()
		return fmt.Errorf("store function %q: %w", fn.Name, err)
	}
	s := e.snap.Load()
	funcs := maps.Clone(s.funcs)
	old := funcs[fn.Name]
	funcs[fn.Name] = c
	e.snap.Store(newSnapshot(funcs, slices.Clone(s.assocs)))
	if old != nil {
		old.inst.Close()
	}
	return nil
}

// GetFunction returns a deployed function (with its secret).
func (e *Engine) GetFunction(ctx context.Context, name string) (Function, error) {
	c := e.snap.Load().funcs[name]
	if c == nil {
		return Function{}, fmt.Errorf("function %q: %w", name, ErrNotFound)
	}
	return cloneFunction(c.fn), nil
}

// ListFunctions returns the deployed functions sorted by name.
func (e *Engine) ListFunctions(ctx context.Context) ([]Function, error) {
	s := e.snap.Load()
	out := make([]Function, 0, len(s.funcs))
	for _, name := range slices.Sorted(maps.Keys(s.funcs)) {
		out = append(out, cloneFunction(s.funcs[name].fn))
	}
	return out, nil
}

// DeleteFunction removes a function. A function still named by an
// association cannot be deleted (*BadRequestError).
func (e *Engine) DeleteFunction(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	c := s.funcs[name]
	if c == nil {
		return fmt.Errorf("function %q: %w", name, ErrNotFound)
	}
	for _, a := range s.assocs {
		if slices.Contains(a.Functions, name) {
			return badRequest(name, "used by association %q; change or delete the association first", a.Pattern)
		}
	}
	if err := e.store.DeleteFunction(ctx, name); err != nil {
		return fmt.Errorf("delete function %q: %w", name, err)
	}
	funcs := maps.Clone(s.funcs)
	delete(funcs, name)
	e.snap.Store(newSnapshot(funcs, slices.Clone(s.assocs)))
	c.inst.Close()
	e.metrics.forget(name)
	return nil
}

// PutAssociation creates or replaces the association for a.Pattern. Every
// function it names must be deployed.
func (e *Engine) PutAssociation(ctx context.Context, a Association) error {
	a, err := normalizeAssociation(a)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	for _, name := range a.Functions {
		if s.funcs[name] == nil {
			return badRequest("", "function %q is not deployed", name)
		}
	}
	if err := e.store.PutAssociation(ctx, a); err != nil {
		return fmt.Errorf("store association %q: %w", a.Pattern, err)
	}
	assocs := slices.DeleteFunc(slices.Clone(s.assocs), func(x *association) bool { return x.Pattern == a.Pattern })
	assocs = append(assocs, &association{Association: a, drop: a.OnError == OnErrorDrop})
	e.snap.Store(newSnapshot(s.funcs, assocs))
	return nil
}

// ListAssociations returns the associations in the order they run.
func (e *Engine) ListAssociations(ctx context.Context) ([]Association, error) {
	s := e.snap.Load()
	out := make([]Association, 0, len(s.assocs))
	for _, a := range s.assocs {
		x := a.Association
		x.Functions = slices.Clone(x.Functions)
		out = append(out, x)
	}
	return out, nil
}

// DeleteAssociation removes the association for pattern.
func (e *Engine) DeleteAssociation(ctx context.Context, pattern string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	i := slices.IndexFunc(s.assocs, func(x *association) bool { return x.Pattern == pattern })
	if i < 0 {
		return fmt.Errorf("association %q: %w", pattern, ErrNotFound)
	}
	if err := e.store.DeleteAssociation(ctx, pattern); err != nil {
		return fmt.Errorf("delete association %q: %w", pattern, err)
	}
	e.snap.Store(newSnapshot(s.funcs, slices.Delete(slices.Clone(s.assocs), i, i+1)))
	return nil
}

// Reload re-reads the store and makes it live. Unchanged functions keep
// their compiled instance; a stored function that fails to compile is
// logged and, if a working version is running, that version is kept.
func (e *Engine) Reload(ctx context.Context) error {
	e.reloadSecrets(ctx)
	fns, assocs, err := e.store.LoadAll(ctx)
	var partial *LoadError
	if errors.As(err, &partial) {
		for _, err := range partial.Errs {
			e.metrics.loadErrors.Inc()
			e.log.Error("stored function or association is unreadable; skipped", "err", err)
		}
	} else if err != nil {
		return fmt.Errorf("functions: load: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	s := e.snap.Load()
	funcs := make(map[string]*compiled, len(fns))
	for _, fn := range fns {
		if old := s.funcs[fn.Name]; old != nil && reflect.DeepEqual(old.fn, fn) {
			funcs[fn.Name] = old
			continue
		}
		err := validateFunction(fn)
		var c *compiled
		if err == nil {
			c, err = e.compile(fn)
		}
		if err != nil {
			e.metrics.loadErrors.Inc()
			e.log.Error("stored function does not compile; skipped", "function", fn.Name, "err", err)
			if old := s.funcs[fn.Name]; old != nil {
				funcs[fn.Name] = old
			}
			continue
		}
		funcs[fn.Name] = c
	}
	var as []*association
	for _, a := range assocs {
		a, err := normalizeAssociation(a)
		if err != nil {
			e.metrics.loadErrors.Inc()
			e.log.Error("stored association is invalid; skipped", "pattern", a.Pattern, "err", err)
			continue
		}
		as = append(as, &association{Association: a, drop: a.OnError == OnErrorDrop})
	}
	e.snap.Store(newSnapshot(funcs, as))
	for name, old := range s.funcs {
		if funcs[name] != old {
			old.inst.Close()
			if funcs[name] == nil {
				e.metrics.forget(name)
			}
		}
	}
	return nil
}

// Invoke dry-runs one function on msg: nothing is published and the
// emitted messages are not run through other functions. A failure
// (timeout, crash) is reported as Action "error" with the reason; a
// channel change or an emission to an invalid channel is a
// *BadRequestError, as in Apply.
func (e *Engine) Invoke(ctx context.Context, name string, msg Message) (InvokeResult, error) {
	c := e.snap.Load().funcs[name]
	if c == nil {
		return InvokeResult{}, fmt.Errorf("function %q: %w", name, ErrNotFound)
	}
	if msg.TS == 0 {
		msg.TS = time.Now().UnixMilli()
	}
	if msg.Event == "" {
		msg.Event = defaultEventName
	}
	res, err := e.dryRun(ctx, c, msg)
	if err != nil {
		return InvokeResult{Action: "error", Reason: err.Error(), Publish: []Message{}}, nil
	}
	out := InvokeResult{Action: string(res.Action), Reason: res.Reason, At: res.At, Publish: make([]Message, 0, len(res.Publish))}
	for _, p := range res.Publish {
		m, err := e.stampEmitted(name, p)
		if err != nil {
			return InvokeResult{}, err
		}
		out.Publish = append(out.Publish, m)
	}
	if res.Action == fnrt.Pass {
		if res.Message.Channel != msg.Channel {
			return InvokeResult{}, badRequest(name, "changed message.channel from %q to %q; functions may not move messages (use ctx.publish)", msg.Channel, res.Message.Channel)
		}
		m := res.Message
		out.Message = &m
	}
	return out, nil
}

func cloneFunction(fn Function) Function {
	fn.Env = maps.Clone(fn.Env)
	return fn
}
