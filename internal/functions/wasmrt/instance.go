package wasmrt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/httprt"
)

const pageSize = 64 << 10 // a WebAssembly memory page

// ErrOutputLimit is wrapped by Run errors of a module whose output is
// larger than MaxOutputBytes. It is a resource limit (errors.Is
// fnrt.ErrResourceLimit holds), counted as one.
var ErrOutputLimit = errors.New("output_limit: function output exceeds the limit")

// outputLimitError is an oversized output: its message names the sizes and
// it matches both ErrOutputLimit and fnrt.ErrResourceLimit.
type outputLimitError struct{ size, limit uint64 }

func (e *outputLimitError) Error() string {
	return fmt.Sprintf("%v: %d bytes, the limit is %d", ErrOutputLimit, e.size, e.limit)
}

func (e *outputLimitError) Unwrap() []error { return []error{ErrOutputLimit, fnrt.ErrResourceLimit} }

// instance is one deployed wasm function: its compiled module and a pool of
// instantiated modules.
type instance struct {
	rt      wazero.Runtime
	cm      wazero.CompiledModule
	cfg     fnrt.Config
	name    string
	env     map[string]string
	budget  int64
	timeout time.Duration
	hash    [32]byte
	pool    *pool
}

// vm is one instantiated module. It is used by one call at a time.
type vm struct {
	mod    api.Module
	alloc  api.Function
	handle api.Function
	mem    *memory
	stderr *tailWriter
	stack  []uint64
}

// instantiateTimeout bounds a module's start-up (a Go module runs its
// runtime's and packages' initialization): it is not part of any call's
// time budget, but a module that never finishes starting must not hold a
// slot forever.
func instantiateTimeout(callTimeout time.Duration) time.Duration {
	return 2*callTimeout + 2*time.Second
}

// acquireWait is how long a call waits for an instance of a full pool
// (every call in progress ends within the timeout; the second added absorbs
// a busy machine's scheduling delays).
func acquireWait(timeout time.Duration) time.Duration { return 2*timeout + time.Second }

// instantiate makes a fresh instance of the module with its own memory
// capped at the budget.
func (in *instance) instantiate(ctx context.Context) (*vm, error) {
	mem := &memory{limit: uint64(in.budget)}
	stderr := &tailWriter{max: maxStderrBytes}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may coexist
		WithStartFunctions(exportInit).
		WithStderr(stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(randSource)
	for _, k := range sortedKeys(in.env) {
		cfg = cfg.WithEnv(k, in.env[k])
	}
	ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(_, _ uint64) experimental.LinearMemory { return mem }))
	mod, err := in.rt.InstantiateModule(ctx, in.cm, cfg)
	if err != nil {
		return nil, in.failure(err, mem, stderr, "starting")
	}
	return &vm{
		mod:    mod,
		alloc:  mod.ExportedFunction(exportAlloc),
		handle: mod.ExportedFunction(exportHandle),
		mem:    mem,
		stderr: stderr,
		stack:  make([]uint64, 2),
	}, nil
}

// request is the input of eddy_handle: the body HTTP functions receive.
type request struct {
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	User    string          `json:"user,omitempty"`
	TS      int64           `json:"ts"`
	Info    json.RawMessage `json:"info,omitempty"`
}

// Run hands msg to an instance of the module and decodes its output.
func (in *instance) Run(ctx context.Context, msg fnrt.Message) (fnrt.Result, error) {
	if len(msg.Data) > fnrt.MaxDataBytes {
		return fnrt.Result{}, fmt.Errorf("message data is %d bytes, the limit for functions is %d", len(msg.Data), fnrt.MaxDataBytes)
	}
	req := request{Channel: msg.Channel, Event: msg.Event, Data: msg.Data, User: msg.User, TS: msg.TS}
	if len(msg.Info) <= fnrt.MaxInfoBytes {
		req.Info = msg.Info
	}
	if len(req.Data) == 0 {
		req.Data = json.RawMessage("null")
	}
	input, err := json.Marshal(req)
	if err != nil {
		return fnrt.Result{}, fmt.Errorf("encode input: %w", err)
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
		return fnrt.Result{}, err
	}
	out, err := in.call(ctx, v, input, timeout)
	if err != nil {
		if errors.Is(err, ErrOutputLimit) {
			in.put(v) // the module itself is sound; only its answer was refused
		} else {
			in.discard(v)
		}
		return fnrt.Result{}, err
	}
	in.put(v)
	return httprt.DecodeResponse(out, msg)
}

// call runs eddy_alloc and eddy_handle within timeout and copies the output
// out of the module's memory.
func (in *instance) call(ctx context.Context, v *vm, input []byte, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v.stderr.reset()
	v.stack[0] = uint64(len(input))
	if err := v.alloc.CallWithStack(ctx, v.stack); err != nil {
		return nil, in.failure(err, v.mem, v.stderr, exportAlloc)
	}
	ptr := uint32(v.stack[0])
	if !v.mod.Memory().Write(ptr, input) {
		return nil, fmt.Errorf("%s returned %#x, which has no room for %d bytes in the module's memory", exportAlloc, ptr, len(input))
	}
	v.stack[0], v.stack[1] = uint64(ptr), uint64(len(input))
	if err := v.handle.CallWithStack(ctx, v.stack); err != nil {
		return nil, in.failure(err, v.mem, v.stderr, exportHandle)
	}
	optr, olen := uint32(v.stack[0]>>32), uint32(v.stack[0])
	if olen > MaxOutputBytes {
		return nil, &outputLimitError{size: uint64(olen), limit: MaxOutputBytes}
	}
	view, ok := v.mod.Memory().Read(optr, olen)
	if !ok {
		return nil, fmt.Errorf("%s returned an output (%d bytes at %#x) outside the module's memory", exportHandle, olen, optr)
	}
	return slices.Clone(view), nil
}

// failure names why a call into the module failed: its memory budget, its
// timeout, a cancelled caller, an exit (a Go fatal error ends in proc_exit)
// or a trap (a Go panic in an exported function ends in unreachable).
func (in *instance) failure(err error, mem *memory, stderr *tailWriter, during string) error {
	if want := mem.refused.Load(); want > 0 {
		return fmt.Errorf("%w: the module asked for %d MiB of memory, its budget is %d MiB%s", fnrt.ErrResourceLimit, want>>20, in.budget>>20, stderr.explain())
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("%w (%v, while %s)", fnrt.ErrTimeout, in.timeout, during)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("%s cancelled: %w", during, context.Canceled)
		}
		return fmt.Errorf("module exited with code %d in %s%s", exit.ExitCode(), during, stderr.explain())
	}
	// wazero adds a stack trace of numbered functions, of no use to the
	// person reading the error; the trap's name is on the first line.
	trap, _, _ := strings.Cut(err.Error(), "\n")
	return fmt.Errorf("module trapped in %s: %s%s", during, trap, stderr.explain())
}

// memory backs one instance's linear memory and enforces its budget. wazero
// refuses a memory.grow past a runtime-wide limit silently; growing through
// this allocator instead lets each function have its own budget and lets
// a refusal be told apart from other failures.
//
// mu is there because wazero frees the memory of a module closed for its
// timeout from the goroutine that watches the context, while the module's
// own goroutine may still be growing it.
type memory struct {
	mu      sync.Mutex
	buf     []byte
	limit   uint64
	refused atomic.Uint64 // bytes asked for past the limit; 0 if none
}

// Reallocate grows the memory to size bytes, or refuses (nil) past the
// limit. Capacity doubles so that a module growing page by page is not
// copied each time; untouched capacity costs no resident memory.
func (m *memory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size > m.limit {
		m.refused.CompareAndSwap(0, size)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	nb := make([]byte, size, min(m.limit, max(size, 2*uint64(cap(m.buf)))))
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

// Free drops the memory (the instance was closed).
func (m *memory) Free() {
	m.mu.Lock()
	m.buf = nil
	m.mu.Unlock()
}

// tailWriter keeps the first max bytes written to it since the last reset:
// a module's stderr, to explain its failure (a Go panic's message comes
// first). The module writes from the calling goroutine only.
type tailWriter struct {
	b   []byte
	max int
}

func (w *tailWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.b); room > 0 {
		w.b = append(w.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (w *tailWriter) reset() { w.b = w.b[:0] }

// explain is the stderr text worth adding to an error ("" if none).
func (w *tailWriter) explain() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(w.b), "?"))
	if s == "" {
		return ""
	}
	s, _, _ = strings.Cut(s, "\n\ngoroutine ") // a Go panic's stacks add nothing for the user
	return "; stderr: " + fnrt.Truncate(s, 512)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
