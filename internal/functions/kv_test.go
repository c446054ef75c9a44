package functions_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/functions"
)

// TestKVFromJavaScript: ctx.kv's four operations with JSON values, a
// function's own scope, and a scope shared by name between functions.
func TestKVFromJavaScript(t *testing.T) {
	e := newEngine(t, functions.Options{})
	deployJS(t, e, "a", `function handle(m, ctx) {
  var kv = ctx.kv, out = {};
  out.missing = kv.get("k") === undefined;
  kv.set("k", {list: [1, "two"], n: null});
  out.k = kv.get("k");
  out.n1 = kv.incr("n");
  out.n2 = kv.incr("n", 41);
  kv.delete("k");
  out.deleted = kv.get("k") === undefined;
  ctx.kv.shared("room").set("who", "a");
  out.mine = kv.get("who") === undefined;
  m.data = out;
  return m
}`, 0)
	deployJS(t, e, "b", `function handle(m, ctx) {
  m.data = {shared: ctx.kv.shared("room").get("who"), own: ctx.kv.get("n") === undefined};
  return m
}`, 0)
	if r := invoke(t, e, "a", `1`); r.Action != "pass" ||
		string(r.Message.Data) != `{"missing":true,"k":{"list":[1,"two"],"n":null},"n1":1,"n2":42,"deleted":true,"mine":true}` {
		t.Fatalf("a: %s %s %q", r.Action, r.Message.Data, r.Reason)
	}
	if r := invoke(t, e, "b", `1`); r.Action != "pass" || string(r.Message.Data) != `{"shared":"a","own":true}` {
		t.Fatalf("b: %s %s %q", r.Action, r.Message.Data, r.Reason)
	}
	// The counts survive a redeploy of the function.
	deployJS(t, e, "a", `function handle(m, ctx) { m.data = ctx.kv.incr("n"); return m }`, 0)
	if r := invoke(t, e, "a", `1`); string(r.Message.Data) != `43` {
		t.Fatalf("after redeploy: %s %s %q", r.Action, r.Message.Data, r.Reason)
	}
}

// TestKVMisuseIsAFailure: bad arguments fail the invocation with an error
// naming the call and what was wrong.
func TestKVMisuseIsAFailure(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"key type":    {`ctx.kv.get(1)`, "ctx.kv.get: key must be a string"},
		"empty key":   {`ctx.kv.set("", 1)`, "ctx.kv.set: key is empty"},
		"undefined":   {`ctx.kv.set("k", undefined)`, "ctx.kv.set: value is undefined"},
		"ttl":         {`ctx.kv.set("k", 1, {ttl: -1})`, "ctx.kv.set: ttl must be"},
		"by":          {`ctx.kv.incr("k", 1.5)`, "ctx.kv.incr: by must be an integer"},
		"not integer": {`ctx.kv.set("k", "x"); ctx.kv.incr("k")`, "ctx.kv.incr: value is not an integer"},
		"shared name": {`ctx.kv.shared("a b")`, "ctx.kv.shared: name must be"},
		"caught":      {`try { ctx.kv.get(1) } catch (e) {}`, "ctx.kv.get: key must be a string"},
	}
	e := newEngine(t, functions.Options{})
	for name, c := range cases {
		fn := strings.ReplaceAll(name, " ", "_")
		deployJS(t, e, fn, `function handle(m, ctx) { `+c.body+`; return m }`, 0)
		if r := invoke(t, e, fn, `1`); r.Action != "error" || !strings.Contains(r.Reason, c.want) {
			t.Errorf("%s: got %s %q, want error %q", name, r.Action, r.Reason, c.want)
		}
	}
}

// TestKVAbuseIsStopped: a function that stores a value too large, fills
// its scope past the key bound or the byte bound, is stopped with a
// kv_limit error (a try/catch cannot hide it), counted in
// resource_limits_total, and the store keeps only what fitted.
func TestKVAbuseIsStopped(t *testing.T) {
	cases := map[string]string{
		"value":      `ctx.kv.set("big", "x".repeat(70000))`,
		"key":        `ctx.kv.set("k".repeat(600), 1)`,
		"keys":       `for (var i = 0; ; i++) ctx.kv.incr("k" + i)`,
		"bytes":      `var v = "x".repeat(60000); for (var i = 0; ; i++) ctx.kv.set("k" + i, v)`,
		"caught":     `for (var i = 0; ; i++) { try { ctx.kv.incr("k" + i) } catch (e) {} }`,
		"incr range": `ctx.kv.incr("n", 9007199254740991); ctx.kv.incr("n")`,
	}
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg, PoolSize: 1})
	for name, body := range cases {
		fn := strings.ReplaceAll(name, " ", "_")
		deployJS(t, e, fn, `function handle(m, ctx) { if (m.data.abuse) { `+body+` } m.data = {n: ctx.kv.incr("ok")}; return m }`, functions.MaxTimeoutMS)
		t.Run(name, func(t *testing.T) {
			r := invoke(t, e, fn, `{"abuse":true}`)
			if r.Action != "error" || !strings.Contains(r.Reason, "kv_limit") {
				t.Fatalf("got %s %q, want error kv_limit", r.Action, r.Reason)
			}
			if n := counterValue(t, reg, "eddy_functions_resource_limits_total", fn); n != 1 {
				t.Fatalf("resource_limits_total = %v, want 1", n)
			}
			if name == "keys" || name == "bytes" || name == "caught" {
				return // the scope is full: "ok" cannot be added
			}
			if r := invoke(t, e, fn, `{}`); r.Action != "pass" || string(r.Message.Data) != `{"n":1}` {
				t.Fatalf("after the limit: %s %s %q", r.Action, r.Message.Data, r.Reason)
			}
		})
	}
}
