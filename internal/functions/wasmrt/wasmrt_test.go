package wasmrt

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/wasmrt/wasmtest"
)

// cfg is a generous configuration for a loaded machine under -race.
func cfg(timeout time.Duration) fnrt.Config {
	return fnrt.Config{Timeout: timeout, PoolSize: 2, MaxMemory: 32 << 20}
}

// testRuntime is a runtime with the tests' compilation cache (see
// wasmtest.CacheDir), closed at the end of the test.
func testRuntime(t *testing.T) *Runtime {
	r, err := NewCached(wasmtest.CacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func compile(t *testing.T, r *Runtime, fn fnrt.Function, c fnrt.Config) *instance {
	t.Helper()
	in, err := r.Compile(fn, c)
	if err != nil {
		t.Fatalf("compile %s: %v", fn.Name, err)
	}
	t.Cleanup(func() { in.Close() })
	return in.(*instance)
}

func msg(data string) fnrt.Message {
	return fnrt.Message{Channel: "chat:1", Event: "post", Data: json.RawMessage(data), User: "u", TS: 1}
}

// TestExampleTransformsAndRejects runs examples/functions/wasm/shout, built
// here for wasip1: it passes a changed message on (with the env variable
// it reads through WASI) and rejects with its reason; the pool reuses its
// instances rather than making one per call.
func TestExampleTransformsAndRejects(t *testing.T) {
	r := testRuntime(t)
	in := compile(t, r, fnrt.Function{Name: "shout", Runtime: "wasm", Module: wasmtest.Build(t, "./shout"),
		Env: map[string]string{"SUFFIX": "!"}}, cfg(5*time.Second))

	for i := range 50 {
		res, err := in.Run(context.Background(), msg(`{"text":"hello"}`))
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if res.Action != fnrt.Pass || string(res.Message.Data) != `{"text":"HELLO!"}` || res.Message.Channel != "chat:1" || res.Message.User != "u" {
			t.Fatalf("run %d: %+v, want HELLO! passed on", i, res)
		}
	}
	if n := len(in.pool.slots); n > 2 {
		t.Fatalf("%d instances for sequential calls, want at most the pool's 2", n)
	}
	res, err := in.Run(context.Background(), msg(`{"text":"buy SPAM"}`))
	if err != nil || res.Action != fnrt.Reject || res.Reason != "no spam, please" {
		t.Fatalf("spam: %+v %v, want the function's rejection", res, err)
	}
}

// TestSandboxStopsEachAbuse: each kind of abuse is stopped with its named
// error, and the function keeps answering afterwards (a failed instance is
// replaced).
func TestSandboxStopsEachAbuse(t *testing.T) {
	r := testRuntime(t)
	in := compile(t, r, fnrt.Function{Name: "abuse", Runtime: "wasm", Module: wasmtest.Build(t, "./testguests/abuse"),
		Env: map[string]string{"VALUE": "v1"}}, cfg(5*time.Second))

	for _, tc := range []struct {
		do   string
		want error
		text string
	}{
		{"hog", fnrt.ErrResourceLimit, "its budget is 32 MiB"},
		{"spin", fnrt.ErrTimeout, "timed out"},
		{"big", ErrOutputLimit, "the limit is"},
		{"panic", nil, "module trapped in eddy_handle: wasm error: unreachable; stderr: panic: assignment to entry in nil map"},
	} {
		_, err := in.Run(context.Background(), msg(`{"do":"`+tc.do+`"}`))
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Fatalf("%s: %v, want %v naming %q", tc.do, err, tc.want, tc.text)
		}
		t.Logf("%s: %v", tc.do, err)
		res, err := in.Run(context.Background(), msg(`{"do":"env"}`))
		if err != nil || string(res.Message.Data) != `{"value":"v1"}` {
			t.Fatalf("after %s: %+v %v, want the function working", tc.do, res, err)
		}
	}
	_, err := in.Run(context.Background(), msg(`{"do":"big"}`))
	if !errors.Is(err, fnrt.ErrResourceLimit) {
		t.Fatalf("an oversized output is a resource limit: %v", err)
	}
}

// TestTrapIsAFailure: a module that executes unreachable fails the call
// with the trap named.
func TestTrapIsAFailure(t *testing.T) {
	r := testRuntime(t)
	mod := wasmtest.Module(1,
		wasmtest.Func{Export: "eddy_alloc", Params: []byte{0x7f}, Result: []byte{0x7f}, Body: wasmtest.I32Zero},
		wasmtest.Func{Export: "eddy_handle", Params: []byte{0x7f, 0x7f}, Result: []byte{0x7e}, Body: wasmtest.Unreachable})
	in := compile(t, r, fnrt.Function{Name: "trap", Runtime: "wasm", Module: mod}, cfg(time.Second))
	for range 3 {
		_, err := in.Run(context.Background(), msg(`{}`))
		if err == nil || !strings.Contains(err.Error(), "module trapped in eddy_handle") || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("trap: %v", err)
		}
	}
}

// TestDeployRefusals: modules that cannot work are refused at deploy with
// what is wrong.
func TestDeployRefusals(t *testing.T) {
	r := testRuntime(t)
	alloc := wasmtest.Func{Export: "eddy_alloc", Params: []byte{0x7f}, Result: []byte{0x7f}, Body: wasmtest.I32Zero}
	handle := wasmtest.Func{Export: "eddy_handle", Params: []byte{0x7f, 0x7f}, Result: []byte{0x7e}, Body: wasmtest.I64Zero}
	for _, tc := range []struct {
		name   string
		module []byte
		budget int64
		want   string
	}{
		{"empty", nil, 0, "module is empty"},
		{"text", []byte("function handle(m) { return m }"), 0, "not a WebAssembly binary"},
		{"huge", append([]byte("\x00asm"), make([]byte, MaxModuleBytes)...), 0, "the limit is"},
		{"corrupt", []byte("\x00asm\x01\x00\x00\x00\x01\xff"), 0, "invalid WebAssembly module"},
		{"no-handle", wasmtest.Module(1, alloc), 0, "does not export eddy_handle(ptr i32, len i32) -> i64"},
		{"no-alloc", wasmtest.Module(1, handle), 0, "does not export eddy_alloc(size i32) -> i32"},
		{"bad-signature", wasmtest.Module(1, alloc, wasmtest.Func{Export: "eddy_handle", Params: []byte{0x7f}, Result: []byte{0x7f}, Body: wasmtest.I32Zero}), 0, "eddy_handle with the wrong signature"},
		{"imports", wasmtest.ImportingModule("env", "abort"), 0, `module imports "env"; only WASI (wasi_snapshot_preview1) is provided`},
		{"too-much-memory", wasmtest.Module(32, alloc, handle), 1 << 20, "starts with 2 MiB of memory, more than its budget of 1 MiB"},
	} {
		c := cfg(time.Second)
		if tc.budget > 0 {
			c.MaxMemory = tc.budget
		}
		_, err := r.Compile(fnrt.Function{Name: tc.name, Runtime: "wasm", Module: tc.module}, c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}

// TestMemoryStaysBounded: 10 invocations that each try to take all the
// memory they can leave the process's heap within the budget's reach (each
// stops at its 32 MiB; the failed instances are freed).
func TestMemoryStaysBounded(t *testing.T) {
	r := testRuntime(t)
	in := compile(t, r, fnrt.Function{Name: "hog", Runtime: "wasm", Module: wasmtest.Build(t, "./testguests/abuse")}, cfg(5*time.Second))
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	for i := range 10 {
		_, err := in.Run(context.Background(), msg(`{"do":"hog"}`))
		if !errors.Is(err, fnrt.ErrResourceLimit) && !errors.Is(err, fnrt.ErrTimeout) {
			t.Fatalf("hog %d: %v", i, err)
		}
	}
	after := heap()
	t.Logf("heap in use %d MiB before, %d MiB after 10 hogs", before>>20, after>>20)
	// The pool may keep 2 instances of at most 32 MiB each.
	if after > before+96<<20 {
		t.Fatalf("heap grew from %d MiB to %d MiB", before>>20, after>>20)
	}
}
