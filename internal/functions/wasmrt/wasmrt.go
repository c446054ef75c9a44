// Package wasmrt runs functions compiled to WebAssembly (WASI preview 1)
// with tetratelabs/wazero, in-process and without cgo.
//
// A module is compiled once at deploy (a CompiledModule, through a
// compilation cache shared by every wasm function, so redeploying the same
// bytes or reloading on another node compiles nothing new) and instantiated
// as a WASI reactor: its `_initialize` export, if any, runs once per
// instance, and instances are pooled so a call does not re-instantiate. An
// instance that failed (trapped, exited, ran out of time or memory) is
// discarded, never reused.
//
// The ABI, which any language can implement (see docs/functions.md):
//
//	eddy_alloc(size i32) -> ptr i32       a buffer of size bytes in the module's memory for the input
//	eddy_handle(ptr i32, len i32) -> i64  runs the function; returns ptr<<32 | len of the output,
//	                                      which must stay valid until the module's next call
//
// The input is the JSON that HTTP functions are posted
// ({"channel","event","data","user","ts","info"}), the output the JSON an
// HTTP function answers ({"action":"pass"|"drop"|"reject","message":{...},
// "reason":"...","publish":[...]}). The function's env reaches the module
// as WASI environment variables.
//
// The sandbox: every instance's linear memory is capped at the function's
// memory budget (a refused memory.grow past it ends the call as
// fnrt.ErrResourceLimit), a call is bounded by the function's timeout (the
// module is closed when its context ends: fnrt.ErrTimeout), the output is
// capped at MaxOutputBytes, and the module sees no files, no sockets, no
// arguments.
package wasmrt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// Limits of WebAssembly functions.
const (
	// MaxModuleBytes bounds a deployed module (a Go module built with
	// -ldflags='-s -w' is about 3 MiB).
	MaxModuleBytes = 16 << 20
	// DefaultMaxMemory is an instance's memory budget when the function
	// sets no max_memory_mb. Go's runtime alone takes a few MiB.
	DefaultMaxMemory = 64 << 20
	// MinMemoryMB and MaxMemoryMB bound max_memory_mb for wasm functions.
	MinMemoryMB = 1
	MaxMemoryMB = 1024
	// MaxOutputBytes bounds what eddy_handle may return: every message it
	// can carry (a pass and MaxPublish emissions of MaxDataBytes each) fits.
	MaxOutputBytes = (fnrt.MaxPublish+1)*(fnrt.MaxDataBytes+1024) + 4096
	// maxStderrBytes is how much of a module's stderr is kept to explain
	// its failure (a Go panic's first lines).
	maxStderrBytes = 2048
)

// The ABI's exports.
const (
	exportAlloc  = "eddy_alloc"
	exportHandle = "eddy_handle"
	exportInit   = "_initialize"
)

// wasmMagic starts every binary WebAssembly module.
var wasmMagic = []byte("\x00asm")

// Runtime compiles WebAssembly functions. One wazero runtime (with WASI)
// and one compilation cache serve every wasm function of the engine; the
// wazero runtime is made at the first Compile, so that a node without wasm
// functions does not pay for it.
type Runtime struct {
	cache wazero.CompilationCache

	mu     sync.Mutex
	rt     wazero.Runtime // nil until the first Compile
	closed bool
}

// New returns the WebAssembly runtime; compiled modules are kept in memory.
func New() *Runtime { return &Runtime{cache: wazero.NewCompilationCache()} }

// NewCached returns the WebAssembly runtime with its compiled modules also
// kept in dir (made if missing), where a later runtime, in this process or
// after a restart, finds them instead of compiling again (a Go module
// takes seconds). Empty dir is New.
func NewCached(dir string) (*Runtime, error) {
	if dir == "" {
		return New(), nil
	}
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("WebAssembly compilation cache %s: %w", dir, err)
	}
	return &Runtime{cache: cache}, nil
}

// wazero returns the wazero runtime, made on first use.
func (r *Runtime) wazero() (wazero.Runtime, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("WebAssembly runtime closed")
	}
	if r.rt == nil {
		ctx := context.Background()
		// CloseOnContextDone is what makes the timeout hold: a module in
		// an endless loop is stopped when its call's context ends. The
		// memory limit is per instance (see memory), not the runtime's.
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
			WithCompilationCache(r.cache).
			WithCloseOnContextDone(true))
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			rt.Close(ctx)
			return nil, fmt.Errorf("WASI: %w", err)
		}
		r.rt = rt
	}
	return r.rt, nil
}

// Close releases every compiled module and instance.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	ctx := context.Background()
	var err error
	if r.rt != nil {
		err = r.rt.Close(ctx)
	}
	if cerr := r.cache.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// Compile validates and compiles fn.Module: it must be a WebAssembly
// binary within MaxModuleBytes that exports eddy_alloc and eddy_handle with
// the ABI's signatures and a memory, imports nothing but WASI, and starts
// with no more memory than its budget. One instance is made at once, so a
// module whose initialization fails is refused at deploy.
func (r *Runtime) Compile(fn fnrt.Function, cfg fnrt.Config) (fnrt.Instance, error) {
	mod := fn.Module
	switch {
	case len(mod) == 0:
		return nil, errors.New("module is empty: give the .wasm file")
	case len(mod) > MaxModuleBytes:
		return nil, fmt.Errorf("module is %d bytes, the limit is %d", len(mod), MaxModuleBytes)
	case !bytes.HasPrefix(mod, wasmMagic):
		return nil, errors.New("module is not a WebAssembly binary (no \\0asm header)")
	}
	budget := cfg.MaxMemory
	if budget <= 0 {
		budget = DefaultMaxMemory
	}
	rt, err := r.wazero()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	cm, err := rt.CompileModule(ctx, mod)
	if err != nil {
		return nil, fmt.Errorf("invalid WebAssembly module: %v", err)
	}
	if err := checkABI(cm, budget); err != nil {
		cm.Close(ctx)
		return nil, err
	}
	in := &instance{
		rt:      rt,
		cm:      cm,
		cfg:     cfg,
		name:    fn.Name,
		env:     fn.Env,
		budget:  budget,
		timeout: cfg.Timeout,
		hash:    sha256.Sum256(mod),
	}
	in.pool = newPool(max(cfg.PoolSize, 1))
	// One instance now: a module whose start-up traps, exits or needs more
	// memory than its budget is refused at deploy, not at its first message.
	ictx, cancel := context.WithTimeout(ctx, instantiateTimeout(cfg.Timeout))
	defer cancel()
	if !in.pool.take(ctx) {
		cm.Close(ctx)
		return nil, errors.New("no instance slot")
	}
	v, err := in.instantiate(ictx)
	if err != nil {
		in.pool.release()
		cm.Close(ctx)
		return nil, fmt.Errorf("module does not start: %w", err)
	}
	in.pool.put(v)
	return in, nil
}

// checkABI refuses modules that do not implement the ABI, naming what is
// missing.
func checkABI(cm wazero.CompiledModule, budget int64) error {
	for _, imp := range cm.ImportedFunctions() {
		if m, _, _ := imp.Import(); m != wasi_snapshot_preview1.ModuleName {
			return fmt.Errorf("module imports %q; only WASI (%s) is provided", m, wasi_snapshot_preview1.ModuleName)
		}
	}
	if len(cm.ImportedMemories()) > 0 {
		return errors.New("module imports its memory; it must define and export one")
	}
	exports := cm.ExportedFunctions()
	want := []struct {
		name        string
		params, res []api.ValueType
		sig         string
	}{
		{exportAlloc, []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}, "(size i32) -> i32"},
		{exportHandle, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}, "(ptr i32, len i32) -> i64"},
	}
	for _, w := range want {
		d, ok := exports[w.name]
		if !ok {
			return fmt.Errorf("module does not export %s%s (the Eddy ABI; a Go program needs -buildmode=c-shared and //go:wasmexport, see docs/functions.md)", w.name, w.sig)
		}
		if !sameTypes(d.ParamTypes(), w.params) || !sameTypes(d.ResultTypes(), w.res) {
			return fmt.Errorf("module exports %s with the wrong signature; want %s%s", w.name, w.name, w.sig)
		}
	}
	if d, ok := exports[exportInit]; ok && (len(d.ParamTypes()) > 0 || len(d.ResultTypes()) > 0) {
		return fmt.Errorf("module exports %s with parameters or results; want () -> ()", exportInit)
	}
	mems := cm.ExportedMemories()
	if len(mems) == 0 {
		return errors.New("module exports no memory")
	}
	for _, m := range mems {
		if need := int64(m.Min()) * pageSize; need > budget {
			return fmt.Errorf("module starts with %d MiB of memory, more than its budget of %d MiB (raise max_memory_mb)", need>>20, budget>>20)
		}
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool { return bytes.Equal(a, b) }

// randSource gives modules real randomness (wazero's default is a fixed,
// deterministic source).
var randSource = rand.Reader
