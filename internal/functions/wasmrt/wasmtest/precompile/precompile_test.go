package precompile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/wasmrt"
)

// TestPrecompile compiles the modules listed in EDDY_WASM_PRECOMPILE
// (separated by the OS's path list separator) into the cache directory
// EDDY_WASM_PRECOMPILE_DIR; it is skipped when they are not set (an
// ordinary test run).
func TestPrecompile(t *testing.T) {
	dir, files := os.Getenv("EDDY_WASM_PRECOMPILE_DIR"), os.Getenv("EDDY_WASM_PRECOMPILE")
	if dir == "" || files == "" {
		t.Skip("a tool of wasmtest.Build: set EDDY_WASM_PRECOMPILE_DIR and EDDY_WASM_PRECOMPILE")
	}
	r, err := wasmrt.NewCached(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, f := range filepath.SplitList(files) {
		mod, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in, err := r.Compile(fnrt.Function{Name: "precompile", Runtime: "wasm", Module: mod}, fnrt.Config{Timeout: time.Minute, PoolSize: 1})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		in.Close()
	}
}
