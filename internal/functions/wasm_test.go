package functions_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/wasmrt/wasmtest"
)

// TestWasmAbuseIsCounted: each kind of abusive WebAssembly function is
// stopped and counted in the function error metrics (and the limits or
// timeouts among them); with on_error pass the message still goes through.
func TestWasmAbuseIsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg, WasmCacheDir: wasmtest.CacheDir(t)})
	err := e.PutFunction(context.Background(), functions.Function{Name: "abuse", Runtime: "wasm", TimeoutMS: 3000, MaxMemoryMB: 32,
		Module: wasmtest.Build(t, "./testguests/abuse")})
	if err != nil {
		t.Fatal(err)
	}
	associate(t, e, "x:*", "", "abuse")
	for _, do := range []string{"hog", "spin", "big", "panic", "echo"} {
		out, err := e.Apply(context.Background(), msg("x:1", `{"do":"`+do+`"}`))
		if err != nil || len(out) != 1 {
			t.Fatalf("%s: %v %v, want the message passed on (on_error pass)", do, out, err)
		}
	}
	for name, want := range map[string]float64{
		"eddy_functions_invocations_total":     5,
		"eddy_functions_errors_total":          4,
		"eddy_functions_resource_limits_total": 2, // hog, big
		"eddy_functions_timeouts_total":        1, // spin
	} {
		if got := counterValue(t, reg, name, "abuse"); got != want {
			t.Errorf("%s{abuse} = %v, want %v", name, got, want)
		}
	}
}

// TestWasmDeployChecks: what the engine refuses before or while compiling
// a wasm function, each with the reason.
func TestWasmDeployChecks(t *testing.T) {
	e := newEngine(t, functions.Options{})
	alloc := wasmtest.Func{Export: "eddy_alloc", Params: []byte{0x7f}, Result: []byte{0x7f}, Body: wasmtest.I32Zero}
	for _, tc := range []struct {
		fn   functions.Function
		want string
	}{
		{functions.Function{Name: "a", Runtime: "wasm"}, "runtime wasm needs a module"},
		{functions.Function{Name: "a", Runtime: "wasm", Module: []byte("\x00asm"), Source: "x"}, "takes a module, not source"},
		{functions.Function{Name: "a", Runtime: "js", Source: "function handle(m){return m}", Module: []byte("\x00asm")}, "module is for runtime wasm"},
		{functions.Function{Name: "a", Runtime: "wasm", Module: []byte("\x00asm"), MaxMemoryMB: 4096}, "max_memory_mb of a wasm function is between 1 and 1024"},
		{functions.Function{Name: "a", Runtime: "wasm", Module: wasmtest.Module(1, alloc)}, "does not export eddy_handle"},
		{functions.Function{Name: "a", Runtime: "wasm", Module: []byte("\x00asm"), AllowHosts: []string{"example.com"}}, "allow_hosts is for runtime js"},
	} {
		err := e.PutFunction(context.Background(), tc.fn)
		var bre *functions.BadRequestError
		if !errors.As(err, &bre) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("deploy %+v: %v, want a bad request naming %q", tc.fn.Name, err, tc.want)
		}
	}
	if fns, _ := e.ListFunctions(context.Background()); len(fns) != 0 {
		t.Fatalf("refused deploys left %d functions", len(fns))
	}
}
