package functions_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/functions"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEngine(t testing.TB, opts functions.Options) *functions.Engine {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	e, err := functions.New(functions.NewMemoryStore(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func deployJS(t testing.TB, e *functions.Engine, name, src string, timeoutMS int) {
	t.Helper()
	if err := e.PutFunction(context.Background(), functions.Function{Name: name, Runtime: "js", Source: src, TimeoutMS: timeoutMS}); err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
}

func associate(t testing.TB, e *functions.Engine, pattern, onError string, fns ...string) {
	t.Helper()
	if err := e.PutAssociation(context.Background(), functions.Association{Pattern: pattern, Functions: fns, OnError: onError}); err != nil {
		t.Fatalf("associate %s: %v", pattern, err)
	}
}

func msg(channel, data string) functions.Message {
	return functions.Message{Channel: channel, Event: "message", Data: json.RawMessage(data), User: "u1", TS: 1000}
}

func apply(t *testing.T, e *functions.Engine, m functions.Message) []functions.Message {
	t.Helper()
	out, err := e.Apply(context.Background(), m)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return out
}

// summary renders messages as "channel event data" lines for comparison.
func summary(ms []functions.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Channel + " " + m.Event + " " + string(m.Data) + "\n")
	}
	return b.String()
}

func TestNoAssociationPassesThroughWithoutAllocating(t *testing.T) {
	e := newEngine(t, functions.Options{})
	deployJS(t, e, "f", `function handle(m){ return null }`, 0)
	associate(t, e, "other:*", "", "f")
	m := msg("chat:a", `{"x":1}`)
	if got := summary(apply(t, e, m)); got != "chat:a message {\"x\":1}\n" {
		t.Fatalf("got %q", got)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = e.Apply(context.Background(), m) })
	if allocs > 1 {
		t.Fatalf("fast path allocates %v times, want 1", allocs)
	}
}

func TestJSActions(t *testing.T) {
	cases := []struct {
		name, src string
		want      string // summary, or "reject: reason"
	}{
		{"pass", `function handle(m){ return m }`, "chat:a message {\"text\":\"hi\"}\n"},
		{"modify", `function handle(m){ m.data.text = m.data.text.toUpperCase(); m.event = "shout"; return m }`, "chat:a shout {\"text\":\"HI\"}\n"},
		{"new object keeps missing fields", `function handle(m){ return {data: 42} }`, "chat:a message 42\n"},
		{"no return passes mutations", `function handle(m){ m.data.seen = true }`, "chat:a message {\"text\":\"hi\",\"seen\":true}\n"},
		{"drop", `function handle(m){ return null }`, ""},
		{"throw", `function handle(m){ throw new Error("no shouting") }`, "reject: no shouting"},
		{"throw string", `function handle(m){ throw "nope" }`, "reject: nope"},
		{"ctx.reject", `function handle(m, ctx){ ctx.reject("spam"); return m }`, "reject: spam"},
		{"ctx.reject caught", `function handle(m, ctx){ try { ctx.reject("spam") } catch (e) {} return m }`, "reject: spam"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, functions.Options{})
			deployJS(t, e, "f", c.src, 0)
			associate(t, e, "chat:*", "", "f")
			out, err := e.Apply(context.Background(), msg("chat:a", `{"text":"hi"}`))
			var got string
			var rej *functions.RejectedError
			switch {
			case errors.As(err, &rej):
				if out != nil || rej.Function != "f" {
					t.Fatalf("rejection %+v with output %v", rej, out)
				}
				got = "reject: " + rej.Reason
			case err != nil:
				t.Fatal(err)
			default:
				got = summary(out)
				if len(out) == 1 && (out[0].User != "u1" || out[0].TS != 1000) {
					t.Fatalf("user/ts not kept: %+v", out[0])
				}
			}
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestContextEnvInfoAndLog(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	e := newEngine(t, functions.Options{Logger: logger})
	err := e.PutFunction(context.Background(), functions.Function{Name: "f", Runtime: "js", Env: map[string]string{"GREETING": "hello"},
		Source: `function handle(m, ctx){ ctx.log("saw", m.user, {n: 1}); m.data = ctx.env.GREETING + " " + ctx.info.name; return m }`})
	if err != nil {
		t.Fatal(err)
	}
	associate(t, e, "*", "", "f")
	m := msg("c", `null`)
	m.Info = json.RawMessage(`{"name":"Ada"}`)
	if got := summary(apply(t, e, m)); got != "c message \"hello Ada\"\n" {
		t.Fatalf("got %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), `msg="saw u1 {\"n\":1}"`) || !strings.Contains(logs.String(), "function=f") {
		t.Fatalf("log line missing or untagged: %s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestEmittedMessagesAndDepthLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg, MaxDepth: 3})
	// echo replies on "echo:<n+1>" to every message: an endless chain.
	deployJS(t, e, "echo", `function handle(m, ctx){
		var n = parseInt(m.channel.split(":")[1], 10);
		ctx.publish("echo:" + (n + 1), "echo", {n: n + 1});
		return m;
	}`, 0)
	associate(t, e, "echo:*", "", "echo")
	out := apply(t, e, msg("echo:0", `{"n":0}`))
	want := "echo:0 message {\"n\":0}\necho:1 echo {\"n\":1}\necho:2 echo {\"n\":2}\necho:3 echo {\"n\":3}\n"
	if got := summary(out); got != want {
		t.Fatalf("got\n%swant\n%s", got, want)
	}
	if out[1].User != "" || out[1].TS == 0 {
		t.Fatalf("emitted message not stamped: %+v", out[1])
	}
	if n := counterValue(t, reg, "eddy_functions_emitted_dropped_total", "depth"); n != 1 {
		t.Fatalf("dropped counter %v, want 1", n)
	}
}

func TestEmittedMessagesRunThroughTheirChannelsFunctions(t *testing.T) {
	e := newEngine(t, functions.Options{})
	deployJS(t, e, "cmd", `function handle(m, ctx){ ctx.publish("log:x", "entry", m.data); return null }`, 0)
	deployJS(t, e, "stamp", `function handle(m){ m.data = {logged: m.data}; return m }`, 0)
	associate(t, e, "cmd:*", "", "cmd")
	associate(t, e, "log:*", "", "stamp")
	if got := summary(apply(t, e, msg("cmd:a", `"x"`))); got != "log:x entry {\"logged\":\"x\"}\n" {
		t.Fatalf("got %q", got)
	}

	// A rejection while processing an emitted message refuses everything.
	deployJS(t, e, "stamp", `function handle(m, ctx){ ctx.reject("log is read-only") }`, 0)
	_, err := e.Apply(context.Background(), msg("cmd:a", `"x"`))
	var rej *functions.RejectedError
	if !errors.As(err, &rej) || rej.Function != "stamp" {
		t.Fatalf("err = %v, want rejection by stamp", err)
	}
}

func TestTimeoutAndOnError(t *testing.T) {
	for _, onError := range []string{"pass", "drop"} {
		t.Run(onError, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			e := newEngine(t, functions.Options{Registerer: reg})
			deployJS(t, e, "spin", `function handle(m){ while(true){} }`, 20)
			deployJS(t, e, "tag", `function handle(m){ m.data.tagged = true; return m }`, 0)
			associate(t, e, "chat:*", onError, "spin", "tag")
			// The timeout counters below prove the spin was stopped; how
			// long that took is not asserted (the machine may be loaded).
			out := apply(t, e, msg("chat:a", `{}`))
			want := map[string]string{"pass": "chat:a message {\"tagged\":true}\n", "drop": ""}[onError]
			if got := summary(out); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			if n := counterValue(t, reg, "eddy_functions_timeouts_total", "spin"); n != 1 {
				t.Fatalf("timeouts = %v", n)
			}
			if n := counterValue(t, reg, "eddy_functions_errors_total", "spin"); n != 1 {
				t.Fatalf("errors = %v", n)
			}
			// The pool recovers: the function keeps timing out, the chain keeps running.
			if got := summary(apply(t, e, msg("chat:a", `{}`))); got != want {
				t.Fatalf("second run got %q", got)
			}
		})
	}
}

func TestFailureKinds(t *testing.T) {
	for name, src := range map[string]string{
		"returns a number": `function handle(m){ return 1 }`,
		"stack overflow":   `function f(){ return f() } function handle(m){ return f() }`,
		"bad channel type": `function handle(m){ m.channel = 7; return m }`,
		"too many publish": `function handle(m, ctx){ for (var i = 0; i < 17; i++) ctx.publish("x", "e", i); return m }`,
		"publish no event": `function handle(m, ctx){ ctx.publish("x") ; return m }`,
		"unserializable":   `function handle(m){ var o = {}; o.self = o; m.data = o; return m }`,
		"oversized output": `function handle(m){ m.data = "x".repeat(300 * 1024); return m }`,
		"bigint not json":  `function handle(m){ m.data = 10n; return m }`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, functions.Options{})
			deployJS(t, e, "f", src, 0)
			associate(t, e, "*", "pass", "f")
			if got := summary(apply(t, e, msg("c", `"in"`))); got != "c message \"in\"\n" {
				t.Fatalf("failure not handled as on_error pass: %q", got)
			}
			res, err := e.Invoke(context.Background(), "f", msg("c", `"in"`))
			if err != nil || res.Action != "error" || res.Reason == "" {
				t.Fatalf("Invoke = %+v, %v; want action error", res, err)
			}
		})
	}
}

func TestChainAndPatternOrder(t *testing.T) {
	e := newEngine(t, functions.Options{})
	for _, n := range []string{"a", "b", "x", "y", "z", "w"} {
		deployJS(t, e, n, `function handle(m){ m.data += "`+n+`"; return m }`, 0)
	}
	associate(t, e, "*", "", "x")
	associate(t, e, "chat:*", "", "a", "b")
	associate(t, e, "chat:?oom", "", "w")
	associate(t, e, "chat:room", "", "z")
	associate(t, e, "other", "", "y")
	if got := summary(apply(t, e, msg("chat:room", `""`))); got != "chat:room message \"zabwx\"\n" {
		t.Fatalf("got %q", got)
	}
	as, _ := e.ListAssociations(context.Background())
	var ps []string
	for _, a := range as {
		ps = append(ps, a.Pattern)
	}
	if strings.Join(ps, " ") != "chat:room other chat:* chat:?oom *" {
		t.Fatalf("ListAssociations order %q", ps)
	}
	// Changing associations invalidates the per-channel cache.
	if err := e.DeleteAssociation(context.Background(), "chat:*"); err != nil {
		t.Fatal(err)
	}
	if got := summary(apply(t, e, msg("chat:room", `""`))); got != "chat:room message \"zwx\"\n" {
		t.Fatalf("after delete got %q", got)
	}
}

func TestChannelChangeAndInvalidEmission(t *testing.T) {
	e := newEngine(t, functions.Options{ValidChannel: func(c string) error {
		if strings.ContainsAny(c, " #") {
			return errors.New("bad characters")
		}
		return nil
	}})
	deployJS(t, e, "move", `function handle(m){ m.channel = "elsewhere"; return m }`, 0)
	deployJS(t, e, "emit", `function handle(m, ctx){ ctx.publish("bad channel", "e", 1); return m }`, 0)
	associate(t, e, "move", "", "move")
	associate(t, e, "emit", "", "emit")
	for _, ch := range []string{"move", "emit"} {
		_, err := e.Apply(context.Background(), msg(ch, `1`))
		var bre *functions.BadRequestError
		if !errors.As(err, &bre) || bre.Function != ch {
			t.Fatalf("%s: err = %v, want BadRequestError", ch, err)
		}
	}
}

func TestDeployValidation(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, functions.Options{})
	deployJS(t, e, "f", `function handle(m){ m.data = "v1"; return m }`, 0)
	associate(t, e, "*", "", "f")

	err := e.PutFunction(ctx, functions.Function{Name: "f", Runtime: "js", Source: "function handle(m) {\n  return m\n  if (\n}"})
	var bre *functions.BadRequestError
	if !errors.As(err, &bre) || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("syntax error = %v, want a BadRequestError naming line 4", err)
	}
	err = e.PutFunction(ctx, functions.Function{Name: "f", Runtime: "js", Source: "function hadnle(m) { return m }"})
	if !errors.As(err, &bre) || !strings.Contains(err.Error(), "handle") {
		t.Fatalf("missing handle = %v", err)
	}
	err = e.PutFunction(ctx, functions.Function{Name: "f", Runtime: "js", Source: "while(true){}\nfunction handle(m) { return m }", TimeoutMS: 20})
	if !errors.As(err, &bre) {
		t.Fatalf("endless top level = %v", err)
	}
	if got := summary(apply(t, e, msg("c", `0`))); got != "c message \"v1\"\n" {
		t.Fatalf("old version not kept: %q", got)
	}
	for _, fn := range []functions.Function{
		{Name: "../x", Runtime: "js", Source: "function handle(m){}"},
		{Name: "x", Runtime: "lua", Source: "x"},
		{Name: "x", Runtime: "http"},
		{Name: "x", Runtime: "http", URL: "ftp://x"},
		{Name: "x", Runtime: "js", Source: "function handle(m){}", TimeoutMS: -1},
	} {
		if err := e.PutFunction(ctx, fn); !errors.As(err, &bre) {
			t.Errorf("PutFunction(%+v) = %v, want BadRequestError", fn, err)
		}
	}
	if err := e.PutAssociation(ctx, functions.Association{Pattern: "x", Functions: []string{"nope"}}); !errors.As(err, &bre) {
		t.Errorf("association with unknown function = %v", err)
	}
	if err := e.PutAssociation(ctx, functions.Association{Pattern: "x", Functions: []string{"f"}, OnError: "retry"}); !errors.As(err, &bre) {
		t.Errorf("association with bad on_error = %v", err)
	}
	if err := e.DeleteFunction(ctx, "f"); !errors.As(err, &bre) {
		t.Errorf("deleting a function in use = %v", err)
	}
	if err := e.DeleteFunction(ctx, "nope"); !errors.Is(err, functions.ErrNotFound) {
		t.Errorf("deleting a missing function = %v", err)
	}
}

func TestInvoke(t *testing.T) {
	e := newEngine(t, functions.Options{})
	deployJS(t, e, "bot", `function handle(m, ctx){
		if (m.data === "/ping") { ctx.publish(m.channel, "bot", "pong"); return null }
		if (m.data === "bad") ctx.reject("bad word");
		return m
	}`, 0)
	ctx := context.Background()
	res, err := e.Invoke(ctx, "bot", msg("c", `"/ping"`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(res)
	var got map[string]any
	json.Unmarshal(raw, &got)
	if got["action"] != "drop" || got["message"] != nil || len(res.Publish) != 1 || string(res.Publish[0].Data) != `"pong"` {
		t.Fatalf("invoke /ping = %s", raw)
	}
	res, _ = e.Invoke(ctx, "bot", msg("c", `"bad"`))
	if res.Action != "reject" || res.Reason != "bad word" {
		t.Fatalf("invoke bad = %+v", res)
	}
	res, _ = e.Invoke(ctx, "bot", msg("c", `"hi"`))
	if res.Action != "pass" || string(res.Message.Data) != `"hi"` {
		t.Fatalf("invoke hi = %+v", res)
	}
	if _, err := e.Invoke(ctx, "nope", msg("c", `1`)); !errors.Is(err, functions.ErrNotFound) {
		t.Fatalf("invoke missing = %v", err)
	}
}

func TestConcurrentApplyWhileRedeploying(t *testing.T) {
	e := newEngine(t, functions.Options{PoolSize: 2})
	deployJS(t, e, "f", `var n = 0; function handle(m){ n++; return m }`, 0)
	associate(t, e, "*", "", "f")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				out, err := e.Apply(context.Background(), msg("c", `1`))
				if err != nil || len(out) != 1 {
					t.Errorf("Apply = %v, %v", out, err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		deployJS(t, e, "f", `var n = `+string(rune('0'+i%10))+`; function handle(m){ n++; return m }`, 0)
		if err := e.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
}

// TestTouchesTellsWhichChannelsApplyMayChange: a publisher leaves Apply out
// for a channel Touches reports false for, so it must be true for every
// channel a function is associated with, and once the engine is closed
// (Apply refuses), and false otherwise, without allocating.
func TestTouchesTellsWhichChannelsApplyMayChange(t *testing.T) {
	e := newEngine(t, functions.Options{})
	if e.Touches("chat:a") {
		t.Fatal("Touches with no association")
	}
	deployJS(t, e, "f", `function handle(m){ return null }`, 0)
	associate(t, e, "chat:*", "", "f")
	if !e.Touches("chat:a") {
		t.Fatal("Touches false for a channel its association matches")
	}
	if e.Touches("other:a") {
		t.Fatal("Touches true for a channel no association matches")
	}
	if allocs := testing.AllocsPerRun(100, func() { e.Touches("other:a") }); allocs > 0 {
		t.Fatalf("Touches allocates %v times", allocs)
	}
	e.Close()
	if !e.Touches("other:a") {
		t.Fatal("Touches false after Close, where Apply refuses")
	}
}

func TestApplyAfterClose(t *testing.T) {
	e := newEngine(t, functions.Options{})
	e.Close()
	if _, err := e.Apply(context.Background(), msg("c", `1`)); !errors.Is(err, functions.ErrClosed) {
		t.Fatalf("Apply after Close = %v", err)
	}
}

// counterValue reads the value of a counter registered in reg by its name
// and label value; 0 when absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestDataIsParsedOnlyWhenRead: a function that does not touch data passes
// the publisher's bytes through as they were (1.50 stays 1.50); one that
// reads, replaces or mutates it in place gets the JSON round trip.
func TestDataIsParsedOnlyWhenRead(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"untouched", `function handle(m){ m.event = "seen"; return m }`, "chat:a seen {\"n\":1.50}\n"},
		{"read", `function handle(m){ if (m.data.n > 1) m.event = "big"; return m }`, "chat:a big {\"n\":1.5}\n"},
		{"replaced", `function handle(m){ m.data = {n: 2}; return m }`, "chat:a message {\"n\":2}\n"},
		{"spread into a new object", `function handle(m){ return Object.assign({}, m, {event: "copy"}) }`, "chat:a copy {\"n\":1.5}\n"},
		{"stringified", `function handle(m){ m.event = JSON.stringify(m).length > 0 ? "json" : "none"; return m }`, "chat:a json {\"n\":1.5}\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, functions.Options{})
			deployJS(t, e, "f", c.src, 0)
			associate(t, e, "chat:*", "", "f")
			if got := summary(apply(t, e, msg("chat:a", `{"n":1.50}`))); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
