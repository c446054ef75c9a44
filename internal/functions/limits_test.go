package functions_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/functions"
)

// hangGuard is how long a call may take before the test calls it stuck.
// It is not a timing assertion: the calls below finish in milliseconds
// once bounded, and without the bounds they never finish.
const hangGuard = 30 * time.Second

// invoke runs Engine.Invoke and fails the test if it does not return.
func invoke(t *testing.T, e *functions.Engine, name, data string) functions.InvokeResult {
	t.Helper()
	type result struct {
		r   functions.InvokeResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := e.Invoke(context.Background(), name, msg("c:1", data))
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("invoke %s: %v", name, r.err)
		}
		return r.r
	case <-time.After(hangGuard):
		t.Fatalf("invoke %s did not return within %v", name, hangGuard)
	}
	return functions.InvokeResult{}
}

// TestMemoryLimits: every way found to make one native call allocate far
// more than the budget (or loop natively over a huge length), and loops
// that grow the heap, stop the invocation with resource_limit, counted; the
// function cannot catch it, and its VM is replaced. The default budget is
// 64 MiB; each case asks for 80 MiB to 400 MB (kept small so that the run
// without the limits stays bounded). The loops that keep memory end in a
// spin, so that the watchdog, not the loop's speed, decides how they end. The timeout is the longest allowed so
// that a busy machine does not turn a limit into a timeout.
func TestMemoryLimits(t *testing.T) {
	cases := map[string]string{
		"typed_array":      `new Float64Array(1e7).fill(1)`,
		"typed_array_like": `new Float64Array({length: 1e7})`,
		"array_buffer":     `new ArrayBuffer(1e8)`,
		"array_fill":       `new Array(5e6).fill(1)`,
		"generic_loop":     `[].indexOf.call({length: 5e7}, 1)`,
		"spread":           `var a = []; a.length = 5e6; var b = [...a]`,
		"apply":            `Math.max.apply(null, {length: 5e6})`,
		"repeat":           `"x".repeat(4e7)`,
		"pad":              `"".padStart(4e7)`,
		"join":             `new Array(4e6).join("0123456789")`,
		"replace":          `"a".repeat(1e6).replace(/a/g, "b".repeat(40))`,
		"replace_fn":       `var b = "b".repeat(4000); "a".repeat(1e4).replace(/a/g, function () { return b })`,
		"stringify":        `JSON.stringify(new Array(1e4).fill("x".repeat(4000)))`,
		"caught":           `try { new Float64Array(1e7) } catch (e) {}`,
		"push_loop":        `var a = []; for (var i = 0; i < 25; i++) a.push(new Float64Array(1e6)); for (;;) {}`,
		"doubling":         `var s = "x"; for (var i = 0; i < 27; i++) s += s; for (;;) {}`,
	}
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg, PoolSize: 1})
	for name, body := range cases {
		deployJS(t, e, name, `var calls = 0;
function handle(m) { calls++; if (m.data.abuse) { `+body+` } m.data.calls = calls; return m }`, functions.MaxTimeoutMS)
	}
	for name := range cases {
		t.Run(name, func(t *testing.T) {
			r := invoke(t, e, name, `{"abuse":true}`)
			if r.Action != "error" || !strings.Contains(r.Reason, "resource_limit") {
				t.Fatalf("got %s %q, want error resource_limit", r.Action, r.Reason)
			}
			if n := counterValue(t, reg, "eddy_functions_resource_limits_total", name); n != 1 {
				t.Fatalf("resource_limits_total = %v, want 1", n)
			}
			// The stopped VM was replaced: a fresh one has run no call yet.
			r = invoke(t, e, name, `{}`)
			if r.Action != "pass" || string(r.Message.Data) != `{"calls":1}` {
				t.Fatalf("after the limit: %s %s %q", r.Action, r.Message.Data, r.Reason)
			}
		})
	}
}

// TestGuardedBuiltinsBehave: the guards around the builtins keep their
// results (this test passes on goja's own builtins too).
func TestGuardedBuiltinsBehave(t *testing.T) {
	e := newEngine(t, functions.Options{})
	deployJS(t, e, "f", `function handle(m) {
	var out = [];
	out.push([1, [2, [3, [4]]]].flat(2).join("-"));
	out.push([1, 2].concat([3], 4).toString());
	out.push(String([1, null, undefined, 2]));
	out.push("abc".replace(/b/g, "[$&]") + "abc".replace("c", function (x) { return x.toUpperCase() }));
	out.push("ab".repeat(2) + "7".padStart(3, "0") + "7".padEnd(3, "!"));
	out.push(Array.from(new Uint8Array([1, 2, 300])).join());
	out.push(Math.max.apply(null, [1, 5, 3]) + Math.max(...[4, 2]));
	out.push(new Uint8Array(2).constructor === Uint8Array && [] instanceof Array && new Int16Array(3).length === 3);
	out.push(JSON.stringify({a: [1, "x", null, undefined, function () {}], b: undefined, c: {toJSON: function (k) { return "k=" + k }}, d: new Date(0), e: -0, f: 1e21, g: NaN}));
	out.push(JSON.stringify({a: 1, b: [1, 2]}, null, 2));
	out.push(JSON.stringify({a: 1, b: 2, c: {a: 3, d: 4}}, ["a", "c"]));
	out.push(JSON.stringify({a: 1, b: "x"}, function (k, v) { return typeof v === "number" ? v * 10 : v }));
	out.push(JSON.stringify("q\"\\\n\u0001é") + JSON.stringify(undefined) + JSON.stringify([new Number(3), new String("s"), new Boolean(false)]));
	var cyc = {}; cyc.self = cyc;
	try { JSON.stringify(cyc); out.push("no error") } catch (e) { out.push(e instanceof TypeError) }
	var a = [1]; a.push(a); out.push(a.join() === "1,");
	class L extends Array {} ; var l = new L(); l.push(1, 2); out.push(l instanceof L && l.length === 2);
	m.data = out;
	return m;
}`, 0)
	r := invoke(t, e, "f", `{}`)
	want := []any{
		"1-2-3-4",
		"1,2,3,4",
		"1,,,2",
		"a[b]cabC",
		"abab0077!!",
		"1,2,44",
		float64(9),
		true,
		`{"a":[1,"x",null,null,null],"c":"k=c","d":"1970-01-01T00:00:00.000Z","e":0,"f":1e+21,"g":null}`,
		"{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}",
		`{"a":1,"c":{"a":3}}`,
		`{"a":10,"b":"x"}`,
		`"q\"\\\n\u0001é"undefined[3,"s",false]`,
		true,
		true,
		true,
	}
	var got []any
	if r.Action != "pass" || json.Unmarshal(r.Message.Data, &got) != nil {
		t.Fatalf("got %s %s %q", r.Action, r.Message.Data, r.Reason)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d: %s", len(got), len(want), r.Message.Data)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("result %d: got %#v, want %#v", i, got[i], want[i])
		}
	}
}

// TestBacktrackingRegexpIsStopped: a catastrophic regular expression (one
// native call goja cannot interrupt) ends with the invocation's timeout,
// counted, instead of pinning a core for hours.
func TestBacktrackingRegexpIsStopped(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg})
	deployJS(t, e, "re", `function handle(m) { m.data.ok = /^(\w+\s?)+(?=!)$/.test(m.data.text); return m }`, 50)
	r := invoke(t, e, "re", `{"text":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`) // 41 characters
	if r.Action != "error" || !strings.Contains(r.Reason, "timeout") {
		t.Fatalf("got %s %q, want a timeout", r.Action, r.Reason)
	}
	if n := counterValue(t, reg, "eddy_functions_timeouts_total", "re"); n != 1 {
		t.Fatalf("timeouts_total = %v, want 1", n)
	}
	// A reasonable match on the same function still works.
	r = invoke(t, e, "re", `{"text":"hello world!"}`)
	if r.Action != "pass" || string(r.Message.Data) != `{"text":"hello world!","ok":false}` {
		t.Fatalf("got %s %s %q", r.Action, r.Message.Data, r.Reason)
	}
}

// blockingHandler is a slog handler whose Handle waits for release: a
// ctx.log call inside a function then holds its VM for as long as the test
// wants, in a native call no timeout can cut short.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
}

func (h blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h blockingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "hold" {
		h.entered <- struct{}{}
		<-h.release
	}
	return nil
}
func (h blockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h blockingHandler) WithGroup(string) slog.Handler      { return h }

// TestBusyPoolAnswersUnavailable: when every VM of a function is stuck, a
// publish is refused with an UnavailableError after the function's
// timeout instead of waiting forever, and counted.
func TestBusyPoolAnswersUnavailable(t *testing.T) {
	h := blockingHandler{entered: make(chan struct{}, 1), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg, PoolSize: 1, Logger: slog.New(h)})
	deployJS(t, e, "stuck", `function handle(m, ctx) { if (m.data.block) ctx.log("hold"); return m }`, 50)
	associate(t, e, "c:*", "", "stuck")
	first := make(chan error, 1)
	go func() {
		_, err := e.Apply(context.Background(), msg("c:1", `{"block":true}`))
		first <- err
	}()
	<-h.entered // the only VM is now held
	second := make(chan error, 1)
	go func() {
		_, err := e.Apply(context.Background(), msg("c:1", `{}`))
		second <- err
	}()
	select {
	case err := <-second:
		var busy *functions.UnavailableError
		if !errors.As(err, &busy) || busy.Function != "stuck" {
			t.Fatalf("got %v, want an UnavailableError for stuck", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("the second publish waited for the busy VM without bound")
	}
	if n := counterValue(t, reg, "eddy_functions_unavailable_total", "stuck"); n != 1 {
		t.Fatalf("unavailable_total = %v, want 1", n)
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Fatalf("first publish: %v", err)
	}
}

// TestOutputSerializationIsInsideTheBudget: turning the result into JSON
// is part of the invocation: a deep result fails fast, a getter that spins
// is stopped by the timeout (counted), and a result too large is refused.
func TestOutputSerializationIsInsideTheBudget(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg})
	deployJS(t, e, "deep", `function handle(m) {
	var d = {}, c = d;
	for (var i = 0; i < 20000; i++) { c.a = {}; c = c.a }
	m.data = d; return m }`, 1000)
	deployJS(t, e, "getter", `function handle(m) { return {get data() { for (;;) {} }} }`, 50)
	deployJS(t, e, "getter_event", `function handle(m) { return {get event() { for (;;) {} }} }`, 50)
	deployJS(t, e, "big", `function handle(m) { var s = "x".repeat(100000); m.data = [s, s, s]; return m }`, 0)

	r := invoke(t, e, "deep", `{}`)
	if r.Action != "error" || !strings.Contains(r.Reason, "nested deeper than 1000") {
		t.Fatalf("deep: got %s %q", r.Action, r.Reason)
	}
	for _, name := range []string{"getter", "getter_event"} {
		r = invoke(t, e, name, `{}`)
		if r.Action != "error" || !strings.Contains(r.Reason, "timeout") {
			t.Fatalf("%s: got %s %q, want a timeout", name, r.Action, r.Reason)
		}
		if n := counterValue(t, reg, "eddy_functions_timeouts_total", name); n != 1 {
			t.Fatalf("%s: timeouts_total = %v, want 1", name, n)
		}
	}
	r = invoke(t, e, "big", `{}`)
	if r.Action != "error" || !strings.Contains(r.Reason, "larger than") {
		t.Fatalf("big: got %s %q", r.Action, r.Reason)
	}
}

// TestInvalidOutputIsTheFunctionsFault: output that the publish path would
// refuse fails the function (on_error applies, counted), while the
// publisher's own message is published.
func TestInvalidOutputIsTheFunctionsFault(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg, ValidData: func(d json.RawMessage) (json.RawMessage, error) {
		if strings.Contains(string(d), "bad") {
			return nil, errors.New("data is bad")
		}
		return d, nil
	}})
	deployJS(t, e, "spoil", `function handle(m, ctx) { if (m.data.emit) ctx.publish("c:2", "e", "bad"); else m.data = "bad"; return m }`, 0)
	associate(t, e, "c:*", "pass", "spoil")
	for _, data := range []string{`{"emit":false}`, `{"emit":true}`} {
		out, err := e.Apply(context.Background(), msg("c:1", data))
		if err != nil || summary(out) != "c:1 message "+data+"\n" {
			t.Fatalf("%s: got %q %v, want the original passed", data, summary(out), err)
		}
	}
	if n := counterValue(t, reg, "eddy_functions_invalid_output_total", "spoil"); n != 2 {
		t.Fatalf("invalid_output_total = %v, want 2", n)
	}
	if n := counterValue(t, reg, "eddy_functions_errors_total", "spoil"); n != 2 {
		t.Fatalf("errors_total = %v, want 2", n)
	}
}

// lineCounter counts log lines that carry msg.
type lineCounter struct {
	mu    sync.Mutex
	lines int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.lines += strings.Count(string(p), "msg=spam")
	c.mu.Unlock()
	return len(p), nil
}

// TestLogIsRateLimited: one invocation writes at most MaxLogLines lines,
// a function at most its token bucket's worth, and the rest are counted.
func TestLogIsRateLimited(t *testing.T) {
	lc := &lineCounter{}
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg, Logger: slog.New(slog.NewTextHandler(lc, nil))})
	deployJS(t, e, "chatty", `function handle(m, ctx) { for (var i = 0; i < 1000; i++) ctx.log("spam"); return m }`, 1000)
	const calls = 20
	for range calls {
		if r := invoke(t, e, "chatty", `{}`); r.Action != "pass" {
			t.Fatalf("got %s %q", r.Action, r.Reason)
		}
	}
	lc.mu.Lock()
	lines := lc.lines
	lc.mu.Unlock()
	// 20 calls within a few seconds at most: the bucket's burst plus what
	// it refilled; the hang guard bounds the refill.
	maxLines := functions.LogBurst + int(hangGuard.Seconds())*functions.LogRate
	if lines == 0 || lines > maxLines || lines > calls*20 {
		t.Fatalf("%d lines written, want 1..%d", lines, min(maxLines, calls*20))
	}
	dropped := counterValue(t, reg, "eddy_functions_log_dropped_total", "chatty")
	if int(dropped)+lines != calls*1000 {
		t.Fatalf("%d written + %v dropped, want %d", lines, dropped, calls*1000)
	}
}

// TestConcurrentLimitsDoNotLeakInterrupts: VMs stopped by the watchdog are
// never reused, so a pending interrupt cannot fail a later invocation.
func TestConcurrentLimitsDoNotLeakInterrupts(t *testing.T) {
	e := newEngine(t, functions.Options{PoolSize: 2})
	deployJS(t, e, "mix", `function handle(m) {
	if (m.data.abuse) { var a = []; for (var i = 0; i < 25; i++) a.push(new Float64Array(1e6)); for (;;) {} }
	return m }`, functions.MaxTimeoutMS)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			abuse := i%2 == 0
			data := `{}`
			if abuse {
				data = `{"abuse":true}`
			}
			r, err := e.Invoke(context.Background(), "mix", msg("c:1", data))
			if err != nil {
				t.Error(err)
				return
			}
			// A benign call may be stopped too when it runs while another
			// grows the heap (the heap is the process's), or find the pool
			// busy; an abusive one never passes.
			ok := r.Action == "pass" && !abuse ||
				strings.Contains(r.Reason, "resource_limit") || strings.Contains(r.Reason, "unavailable")
			if !ok {
				t.Logf("abuse=%v: %s %q", abuse, r.Action, r.Reason)
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d invocations ended unexpectedly", bad.Load())
	}
	for range 4 {
		if r := invoke(t, e, "mix", `{}`); r.Action != "pass" {
			t.Fatalf("after the storm: %s %q", r.Action, r.Reason)
		}
	}
}

// TestMaxMemoryMB: the budget is per function; out-of-range values and a
// budget on an HTTP function are refused at deploy.
func TestMaxMemoryMB(t *testing.T) {
	e := newEngine(t, functions.Options{})
	src := `function handle(m) { m.data = new Float64Array(2e6).length; return m }` // 16 MB
	ctx := context.Background()
	if err := e.PutFunction(ctx, functions.Function{Name: "small", Runtime: "js", Source: src, MaxMemoryMB: 8, TimeoutMS: functions.MaxTimeoutMS}); err != nil {
		t.Fatal(err)
	}
	deployJS(t, e, "default", src, functions.MaxTimeoutMS)
	if r := invoke(t, e, "small", `{}`); !strings.Contains(r.Reason, "resource_limit") {
		t.Fatalf("8 MiB budget: got %s %q", r.Action, r.Reason)
	}
	if r := invoke(t, e, "default", `{}`); r.Action != "pass" || string(r.Message.Data) != "2000000" {
		t.Fatalf("default budget: got %s %+v %q", r.Action, r.Message, r.Reason)
	}
	for _, fn := range []functions.Function{
		{Name: "x", Runtime: "js", Source: src, MaxMemoryMB: 2000},
		{Name: "x", Runtime: "js", Source: src, MaxMemoryMB: -1},
		{Name: "x", Runtime: "http", URL: "http://example.com/", MaxMemoryMB: 8},
	} {
		var bad *functions.BadRequestError
		if err := e.PutFunction(ctx, fn); !errors.As(err, &bad) || !strings.Contains(err.Error(), "max_memory_mb") {
			t.Errorf("%+v: got %v, want a bad request naming max_memory_mb", fn, err)
		}
	}
}

// TestBacktrackingMatchIsCappedUnderALongTimeout: one backtracking match
// gives up after jsrt.MaxRegexpMatch even when the function may run for
// 10 s, so a VM left running by a redeploy cannot burn a core for hours;
// the failed match reads as no match.
func TestBacktrackingMatchIsCappedUnderALongTimeout(t *testing.T) {
	e := newEngine(t, functions.Options{})
	deployJS(t, e, "re", `function handle(m) { m.data.ok = /^(\w+\s?)+(?=!)$/.test(m.data.text); return m }`, functions.MaxTimeoutMS)
	r := invoke(t, e, "re", `{"text":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`) // 50 characters
	if r.Action != "pass" || !strings.Contains(string(r.Message.Data), `"ok":false`) {
		t.Fatalf("got %s %+v %q, want pass with ok false", r.Action, r.Message, r.Reason)
	}
}
