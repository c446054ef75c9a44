package functions_test

import (
	"context"
	"testing"

	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/wasmrt/wasmtest"
)

// shoutJS is examples/functions/wasm/shout in JavaScript, for comparison.
const shoutJS = `function handle(m, ctx) { var t = m.data.text; if (t.toLowerCase().indexOf("spam") >= 0) ctx.reject("no spam, please"); m.data = {text: t.toUpperCase() + (ctx.env.SUFFIX || "")}; return m }`

func shoutEngine(b *testing.B, fn functions.Function) (*functions.Engine, functions.Message) {
	e := newEngine(b, functions.Options{WasmCacheDir: wasmtest.CacheDir(b)})
	fn.Name, fn.Env = "shout", map[string]string{"SUFFIX": "!"}
	if err := e.PutFunction(context.Background(), fn); err != nil {
		b.Fatal(err)
	}
	associate(b, e, "chat:*", "", "shout")
	return e, msg("chat:lobby", `{"text":"hello there"}`)
}

// BenchmarkApplyShoutWasm runs the Go example compiled to WebAssembly.
func BenchmarkApplyShoutWasm(b *testing.B) {
	e, m := shoutEngine(b, functions.Function{Runtime: "wasm", Module: wasmtest.Build(b, "./shout")})
	benchApply(b, e, m, false)
}

func BenchmarkApplyShoutWasmParallel(b *testing.B) {
	e, m := shoutEngine(b, functions.Function{Runtime: "wasm", Module: wasmtest.Build(b, "./shout")})
	benchApply(b, e, m, true)
}

// BenchmarkApplyShoutJS runs the same function in JavaScript.
func BenchmarkApplyShoutJS(b *testing.B) {
	e, m := shoutEngine(b, functions.Function{Runtime: "js", Source: shoutJS})
	benchApply(b, e, m, false)
}

// BenchmarkApplyPassWasm is the cost of the wasm runtime itself: a
// hand-assembled module that answers {"action":"pass"} (compare
// BenchmarkApplyOneLineJS).
func BenchmarkApplyPassWasm(b *testing.B) {
	e, m := shoutEngine(b, functions.Function{Runtime: "wasm", Module: wasmtest.ConstModule(`{"action":"pass"}`)})
	benchApply(b, e, m, false)
}
