package functions_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	redisbroker "github.com/eddyrt/eddy/internal/broker/redis"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/kvstore"
)

// TestKVSharedScopesAreBounded: shared scope names are chosen at run time,
// so a function creating new ones without end is stopped with kv_limit
// once the node's store holds fnrt.MaxKVScopes scopes, counted in
// resource_limits_total; the scopes already there keep working.
func TestKVSharedScopesAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg, PoolSize: 1})
	deployJS(t, e, "spray", `function handle(m, ctx) {
  if (m.data.abuse) { for (var i = 0; ; i++) ctx.kv.shared("s" + i).incr("n") }
  m.data = ctx.kv.shared("s0").incr("n")
  return m
}`, functions.MaxTimeoutMS)
	r := invoke(t, e, "spray", `{"abuse":true}`)
	if r.Action != "error" || !strings.Contains(r.Reason, "kv_limit") || !strings.Contains(r.Reason, "scopes") {
		t.Fatalf("got %s %q, want error kv_limit naming the scopes", r.Action, r.Reason)
	}
	if n := counterValue(t, reg, "eddy_functions_resource_limits_total", "spray"); n != 1 {
		t.Fatalf("resource_limits_total = %v, want 1", n)
	}
	if r := invoke(t, e, "spray", `{}`); r.Action != "pass" || string(r.Message.Data) != `2` {
		t.Fatalf("an existing scope after the limit: %s %s %q", r.Action, r.Message.Data, r.Reason)
	}
	// A function deployed now has no room for its own scope either: the
	// bound is the node's, and the error says so rather than hanging.
	deployJS(t, e, "late", `function handle(m, ctx) { m.data = ctx.kv.incr("n"); return m }`, 0)
	if r := invoke(t, e, "late", `1`); r.Action != "error" || !strings.Contains(r.Reason, "kv_limit") {
		t.Fatalf("new scope past the bound: %s %q", r.Action, r.Reason)
	}
	_ = fnrt.MaxKVScopes
}

// TestKVAgainstAStalledRedis is also a regression test: the Redis client
// can give up on the deadline a moment before the context reports it, and
// that failure ("kv incr: context deadline exceeded") was neither named a
// timeout nor counted as one.
//
// A redis-server frozen with SIGSTOP answers
// nothing; a function using ctx.kv fails with a timeout error within its
// own time limit (counted in timeouts_total) and the message goes on by
// the association's on_error policy instead of the pipeline hanging. Once
// Redis runs again, the function works again.
func TestKVAgainstAStalledRedis(t *testing.T) {
	srv := redistest.Start(t)
	rb, err := redisbroker.New(redisbroker.Options{Addrs: []string{srv.URL()}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rb.Close() })
	reg := prometheus.NewRegistry()
	var logs strings.Builder
	e := newEngine(t, functions.Options{Registerer: reg, KV: kvstore.NewRedis(rb), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	deployJS(t, e, "count", `function handle(m, ctx) { m.data = {n: ctx.kv.incr("n")}; return m }`, 300)
	associate(t, e, "c:*", "pass", "count")
	if out := apply(t, e, msg("c:1", `{}`)); summary(out) != "c:1 message {\"n\":1}\n" {
		t.Fatalf("before the stall: %s", summary(out))
	}
	srv.Pause()
	t.Cleanup(srv.Resume)
	done := make(chan []functions.Message, 1)
	go func() {
		out, err := e.Apply(context.Background(), msg("c:1", `{"x":1}`))
		if err != nil {
			t.Errorf("Apply: %v", err)
		}
		done <- out
	}()
	select {
	case out := <-done:
		if summary(out) != "c:1 message {\"x\":1}\n" {
			t.Fatalf("on_error pass should publish the message unchanged: %s", summary(out))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Apply hung on a stalled Redis")
	}
	if n := counterValue(t, reg, "eddy_functions_timeouts_total", "count"); n != 1 {
		t.Fatalf("timeouts_total = %v, want 1", n)
	}
	r := invoke(t, e, "count", `{}`)
	if r.Action != "error" || !strings.Contains(r.Reason, "ctx.kv.incr: timeout") {
		t.Fatalf("dry run against the stalled store: %s %q, want a ctx.kv.incr timeout", r.Action, r.Reason)
	}
	srv.Resume()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := invoke(t, e, "count", `{}`)
		if r.Action == "pass" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Redis resumed: %s %q", r.Action, r.Reason)
		}
		time.Sleep(50 * time.Millisecond) // Redis answers the backlog; nothing to await but the answer
	}
}
