// Package wasmtest builds the WebAssembly guests of examples/functions/wasm
// for tests, with the Go toolchain that runs them (GOOS=wasip1, a WASI
// reactor), and assembles tiny hand-written modules for the cases Go cannot
// produce (a bare trap, missing exports).
package wasmtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Dir is the Go module of the example guests.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "examples", "functions", "wasm")
}

// Build compiles the guest package pkg (relative to Dir, like "./shout")
// and returns the module. Builds are shared within a test binary and
// cached across runs by Go's build cache. Under the race detector the
// module is also compiled into CacheDir by a separate ordinary process.
func Build(t testing.TB, pkg string) []byte {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[pkg]; ok {
		return b
	}
	out := filepath.Join(t.TempDir(), "guest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = Dir()
	cmd.Env = append(withoutGoVars(os.Environ()), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s for wasip1: %v\n%s", pkg, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if raceEnabled {
		// Compile it into CacheDir outside the race detector (see
		// precompile), so this process loads it instead.
		cmd := exec.Command("go", "test", "-count=1", "-run=^TestPrecompile$", "./internal/functions/wasmrt/wasmtest/precompile")
		cmd.Dir = filepath.Join(Dir(), "..", "..", "..")
		cmd.Env = append(os.Environ(), "EDDY_WASM_PRECOMPILE_DIR="+CacheDir(t), "EDDY_WASM_PRECOMPILE="+out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("precompile %s: %v\n%s", pkg, err, msg)
		}
	}
	built[pkg] = b
	return b
}

var (
	cacheOnce sync.Once
	cacheDir  string
)

// CacheDir is the compilation cache directory tests give the WebAssembly
// runtime (wasmrt.NewCached, functions.Options.WasmCacheDir, config
// functions_wasm_cache_dir): it lasts across test runs, so each module is
// compiled once per machine.
func CacheDir(t testing.TB) string {
	cacheOnce.Do(func() {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		cacheDir = filepath.Join(base, "eddy-test", "wazero")
	})
	return cacheDir
}

// withoutGoVars drops the variables that would change what is built (a
// test binary's GOOS, GOFLAGS=-race...).
func withoutGoVars(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOS", "GOARCH", "GOFLAGS", "CGO_ENABLED", "GOWORK", "GOTOOLCHAIN":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Func is a function of a hand-assembled module: its export name (empty:
// not exported), parameter and result types (0x7f i32, 0x7e i64) and body
// (instructions without the final end).
type Func struct {
	Export         string
	Params, Result []byte
	Body           []byte
}

// Instructions for Func bodies.
var (
	Unreachable = []byte{0x00}
	I32Zero     = []byte{0x41, 0x00}
	I64Zero     = []byte{0x42, 0x00}
)

// Module assembles a module with one exported memory of pages pages and
// the given functions (each with its own type).
func Module(pages byte, funcs ...Func) []byte {
	var types, fsec, exports, code []byte
	types = append(types, byte(len(funcs)))
	fsec = append(fsec, byte(len(funcs)))
	nexp := 1
	exports = append(exports, wasmName("memory")...)
	exports = append(exports, 0x02, 0x00)
	for i, f := range funcs {
		types = append(types, 0x60, byte(len(f.Params)))
		types = append(types, f.Params...)
		types = append(types, byte(len(f.Result)))
		types = append(types, f.Result...)
		fsec = append(fsec, byte(i))
		if f.Export != "" {
			nexp++
			exports = append(exports, wasmName(f.Export)...)
			exports = append(exports, 0x00, byte(i))
		}
		body := append(append([]byte{0x00}, f.Body...), 0x0b) // no locals
		code = append(code, byte(len(body)))
		code = append(code, body...)
	}
	var m bytes.Buffer
	m.WriteString("\x00asm\x01\x00\x00\x00")
	section(&m, 1, types)
	section(&m, 3, fsec)
	section(&m, 5, []byte{0x01, 0x00, pages})
	section(&m, 7, append([]byte{byte(nexp)}, exports...))
	section(&m, 10, append([]byte{byte(len(funcs))}, code...))
	return m.Bytes()
}

// ConstModule assembles a module that implements the ABI by answering
// output, whatever its input: eddy_alloc hands out offset 1024 of its one
// page, eddy_handle returns output, which a data segment puts at offset 0.
// output must be shorter than 64 bytes.
func ConstModule(output string) []byte {
	if len(output) >= 64 {
		panic("wasmtest: ConstModule output too long")
	}
	m := Module(1,
		Func{Export: "eddy_alloc", Params: []byte{0x7f}, Result: []byte{0x7f}, Body: []byte{0x41, 0x80, 0x08}},               // i32.const 1024
		Func{Export: "eddy_handle", Params: []byte{0x7f, 0x7f}, Result: []byte{0x7e}, Body: []byte{0x42, byte(len(output))}}) // i64.const 0<<32 | len
	// Data section: one active segment for memory 0 at i32.const 0.
	data := append([]byte{0x01, 0x00, 0x41, 0x00, 0x0b, byte(len(output))}, output...)
	var b bytes.Buffer
	b.Write(m)
	section(&b, 11, data)
	return b.Bytes()
}

func wasmName(s string) []byte { return append([]byte{byte(len(s))}, s...) }

// section writes one section; every test module is small enough for
// one-byte LEB128 lengths.
func section(m *bytes.Buffer, id byte, content []byte) {
	if len(content) > 127 {
		panic("wasmtest: section too large for this assembler")
	}
	m.WriteByte(id)
	m.WriteByte(byte(len(content)))
	m.Write(content)
}

// ImportingModule assembles a module that imports function name from
// module (of type () -> ()) and exports a memory: what the runtime must
// refuse when module is not WASI.
func ImportingModule(module, name string) []byte {
	var b bytes.Buffer
	b.WriteString("\x00asm\x01\x00\x00\x00")
	section(&b, 1, []byte{0x01, 0x60, 0x00, 0x00})
	imp := append([]byte{0x01}, wasmName(module)...)
	imp = append(imp, wasmName(name)...)
	section(&b, 2, append(imp, 0x00, 0x00))
	section(&b, 5, []byte{0x01, 0x00, 0x01})
	section(&b, 7, append(append([]byte{0x01}, wasmName("memory")...), 0x02, 0x00))
	return b.Bytes()
}
