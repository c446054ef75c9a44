package functions_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/transpile"
)

func deployLang(e *functions.Engine, name, lang, src string) error {
	return e.PutFunction(context.Background(), functions.Function{Name: name, Runtime: "js", Language: lang, Source: src, TimeoutMS: 1000})
}

// TestTypeScriptAndModules: a .ts function with types, an ES module with
// export default, and one with a named export handle all run on goja.
func TestTypeScriptAndModules(t *testing.T) {
	e := newEngine(t, functions.Options{})
	ts := `interface Msg { data: { text: string } }
type Ctx = { env: Record<string, string> }
enum Mode { Upper = "upper" }
export default function handle(m: Msg, ctx: Ctx): Msg {
  const mode: Mode = Mode.Upper
  m.data.text = mode === Mode.Upper ? m.data.text.toUpperCase() : m.data.text
  return m
}
`
	if err := deployLang(e, "shout", "ts", ts); err != nil {
		t.Fatal(err)
	}
	if r := invoke(t, e, "shout", `{"text":"hi"}`); r.Action != "pass" || string(r.Message.Data) != `{"text":"HI"}` {
		t.Fatalf("ts: %+v", r)
	}
	esm := "const suffix = '!'\nexport default async function handle(m, ctx) {\n  m.data = m.data + suffix\n  return m\n}\n"
	if err := deployLang(e, "esm", "", esm); err != nil {
		t.Fatal(err)
	}
	if r := invoke(t, e, "esm", `"a"`); r.Action != "pass" || string(r.Message.Data) != `"a!"` {
		t.Fatalf("esm: %+v", r)
	}
	named := "export function handle(m) { return null }\n"
	if err := deployLang(e, "named", "js", named); err != nil {
		t.Fatal(err)
	}
	if r := invoke(t, e, "named", `1`); r.Action != "drop" {
		t.Fatalf("named export: %+v", r)
	}
	// A module without handle is refused like a script without one.
	err := deployLang(e, "none", "ts", "export const x: number = 1\n")
	if err == nil || !strings.Contains(err.Error(), "handle") {
		t.Fatalf("module without handle: %v", err)
	}
}

// TestTypeScriptErrorsPointAtTheUsersLine: a syntax error at line N of the
// .ts says line N; an error thrown at runtime from line N says line N
// (through the inline source map), though the transpiled script is longer.
func TestTypeScriptErrorsPointAtTheUsersLine(t *testing.T) {
	e := newEngine(t, functions.Options{})
	bad := "type A = { x: number }\n\nexport default function handle(m: A) {\n  const y: number = (m.x +\n}\n"
	err := deployLang(e, "bad", "ts", bad)
	var br *functions.BadRequestError
	if !errors.As(err, &br) || !strings.Contains(err.Error(), "syntax error at line 5") {
		t.Fatalf("syntax error: %v", err)
	}
	src := `type M = { data: { n: number } }

export default function handle(m: M) {
  if (m.data.n > 1) {
    throw new Error("too big: " + m.data.n)
  }
  const o: any = null
  return o.missing
}
`
	if err := deployLang(e, "thrower", "ts", src); err != nil {
		t.Fatal(err)
	}
	r := invoke(t, e, "thrower", `{"n":5}`)
	if r.Action != "reject" || r.Reason != "too big: 5" || !strings.HasPrefix(r.At, "thrower.ts:5:") {
		t.Fatalf("throw at line 5: %+v", r)
	}
	r = invoke(t, e, "thrower", `{"n":0}`)
	if r.Action != "reject" || !strings.HasPrefix(r.At, "thrower.ts:8:") {
		t.Fatalf("TypeError at line 8: %+v", r)
	}
	// An async handler's rejection too.
	if err := deployLang(e, "async_thrower", "ts", "type M = { data: any }\n\nexport default async function handle(m: M) {\n  await Promise.resolve(1)\n  throw new Error('later')\n}\n"); err != nil {
		t.Fatal(err)
	}
	if r := invoke(t, e, "async_thrower", `1`); r.Action != "reject" || r.Reason != "later" || !strings.HasPrefix(r.At, "async_thrower.ts:5:") {
		t.Fatalf("async throw at line 5: %+v", r)
	}
	// Plain scripts get the same position.
	deployJS(t, e, "plain", "function handle(m) {\n  throw new Error('x')\n}\n", 0)
	if r := invoke(t, e, "plain", `1`); r.At != "plain.js:2:9" {
		t.Fatalf("script throw: %+v", r)
	}
}

// TestTranspilationBounds: imports (which would read the server's files),
// pathological nesting, oversized sources and unknown languages are
// refused at deploy with errors that say so; nothing is deployed.
func TestTranspilationBounds(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg})
	cases := map[string]struct{ lang, src, want string }{
		"import":     {"js", "import fs from '/etc/passwd'\nexport default function handle(m) { return fs }\n", `cannot import "/etc/passwd"`},
		"import ts":  {"ts", "import { x } from './other'\nexport default function handle(m: any) { return x }\n", `cannot import "./other"`},
		"nesting":    {"ts", "export default function handle(m) { return " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000) + " }\n", "source_limit: function source exceeds the deploy limits: brackets nest deeper than 256 levels (line 1)"},
		"nesting js": {"", "function handle(m) { return " + strings.Repeat("[", 100000) + " }\n", "source_limit"},
		"size":       {"ts", "export default function handle(m) { return m }\n//" + strings.Repeat("x", 300<<10), "source is"},
		"language":   {"coffee", "function handle(m) { return m }", "language must be js or ts"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := deployLang(e, "f", c.lang, c.src)
			var br *functions.BadRequestError
			if !errors.As(err, &br) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a bad request containing %q", err, c.want)
			}
		})
	}
	if n := plainCounter(t, reg, "eddy_functions_source_limits_total"); n != 3 {
		t.Fatalf("source_limits_total = %v, want 3 (nesting twice, size)", n)
	}
	if _, err := e.GetFunction(context.Background(), "f"); !errors.Is(err, functions.ErrNotFound) {
		t.Fatalf("a refused deploy left a function: %v", err)
	}
	if !errors.Is(transpile.CheckNesting(strings.Repeat("{", 300)), transpile.ErrLimit) {
		t.Fatal("CheckNesting let 300 levels through")
	}
	if err := transpile.CheckNesting(`"` + strings.Repeat("(", 300) + `" // ` + strings.Repeat("[", 300)); err != nil {
		t.Fatalf("brackets in strings and comments counted: %v", err)
	}
}

// TestSourceMapFilesAreNotRead is a regression test: goja's parser reads
// the file a `//# sourceMappingURL=` comment names, so a deployed source
// could make the server read any path; a FIFO nobody writes hung the
// deploy forever. Only inline maps are honoured now.
func TestSourceMapFilesAreNotRead(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "map")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		// Unblock a reader left by a failing run.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	e := newEngine(t, functions.Options{})
	done := make(chan error, 1)
	go func() {
		done <- deployLang(e, "m", "", "function handle(m) { return m }\n//# sourceMappingURL="+fifo+"\n")
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("deploy: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("deploy blocked reading the source map file the source named")
	}
}

// plainCounter reads an unlabelled counter; 0 when absent.
func plainCounter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
