package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions/wasmrt/wasmtest"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestWasmFunctionOverRealSockets (issue 20, point 7): a WebAssembly
// function built here from examples/functions/wasm/shout is deployed
// through the admin API; a message published through the HTTP API reaches
// a WebSocket subscriber transformed, and a rejection reaches the HTTP and
// the WebSocket publisher with the function's reason.
func TestWasmFunctionOverRealSockets(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) { c.WasmCacheDir = wasmtest.CacheDir(t) })
	deploy(t, s, "shout", map[string]any{"runtime": "wasm", "module": wasmtest.Build(t, "./shout"),
		"env": map[string]string{"SUFFIX": "!"}, "timeout_ms": 5000})
	associate(t, s, "yell:*", "", "shout")

	var list struct {
		Functions []struct{ Name, Runtime string }
	}
	if err := s.Admin().Do(context.Background(), http.MethodGet, "/api/v1/functions", nil, &list); err != nil || len(list.Functions) != 1 || list.Functions[0].Runtime != "wasm" {
		t.Fatalf("list: %+v %v, want shout with runtime wasm", list, err)
	}

	sub := servertest.Connect(t, s.WSURL, servertest.Token(t, "reader", nil, nil))
	if f := sub.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "yell:1"}); f.Type() != "subscribed" {
		t.Fatalf("subscribe: %v", f)
	}
	if _, err := s.API().Publish(context.Background(), "yell:1", "say", map[string]string{"text": "hello"}); err != nil {
		t.Fatalf("HTTP publish: %v", err)
	}
	m := sub.Expect("message")
	if text := m["data"].(map[string]any)["text"]; text != "HELLO!" || m.Str("event") != "say" {
		t.Fatalf("subscriber got %v, want HELLO!", m)
	}

	_, err := s.API().Publish(context.Background(), "yell:1", "say", map[string]string{"text": "spam spam"})
	if !isStatus(err, 422) || err.(*api.Error).Code != "rejected" || err.(*api.Error).Message != "no spam, please" {
		t.Fatalf("HTTP publish of a rejected message: %v", err)
	}
	pub := servertest.Connect(t, s.WSURL, servertest.Token(t, "writer", nil, []string{"*"}))
	f := pub.Request(map[string]any{"type": "publish", "id": 1, "channel": "yell:1", "event": "say", "data": map[string]string{"text": "spam"}})
	if f.Str("code") != "rejected" || f.Str("message") != "no spam, please" {
		t.Fatalf("WebSocket publish of a rejected message: %v", f)
	}
	// Nothing rejected was delivered: the next message is the sentinel.
	if f := pub.Request(map[string]any{"type": "publish", "id": 2, "channel": "yell:1", "event": "say", "data": map[string]string{"text": "after"}}); f.Type() != "ack" {
		t.Fatalf("publish: %v", f)
	}
	if text := sub.Expect("message")["data"].(map[string]any)["text"]; text != "AFTER!" {
		t.Fatalf("subscriber got %v after the rejections, want AFTER!", text)
	}
}

// TestAbusiveWasmFunctionsLeaveTheServerWorking (issue 20, point 6 for
// WebAssembly): a module that allocates without bound, one that loops
// forever, one that answers megabytes and one that panics are each
// stopped, answered (on_error drop: acknowledged, not delivered) and
// counted; the server keeps serving others, and 10 memory abuses leave its
// RSS within bounds.
func TestAbusiveWasmFunctionsLeaveTheServerWorking(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) { c.WasmCacheDir = wasmtest.CacheDir(t) })
	deploy(t, s, "abuse", map[string]any{"runtime": "wasm", "module": wasmtest.Build(t, "./testguests/abuse"),
		"timeout_ms": 3000, "max_memory_mb": 32})
	associate(t, s, "abuse:*", "drop", "abuse")

	sub := servertest.Connect(t, s.WSURL, servertest.Token(t, "reader", nil, nil))
	for i, ch := range []string{"abuse:1", "news:1"} {
		if f := sub.Request(map[string]any{"type": "subscribe", "id": i + 1, "channel": ch}); f.Type() != "subscribed" {
			t.Fatalf("subscribe %s: %v", ch, f)
		}
	}
	pub := servertest.Connect(t, s.WSURL, servertest.Token(t, "writer", nil, []string{"*"}))
	for i, do := range []string{"hog", "spin", "big", "panic"} {
		if f := pub.Request(map[string]any{"type": "publish", "id": i + 1, "channel": "abuse:1", "event": "e", "data": map[string]string{"do": do}}); f.Type() != "ack" {
			t.Fatalf("publish %s: %v (on_error drop acknowledges)", do, f)
		}
		if f := pub.Request(map[string]any{"type": "publish", "id": 100 + i, "channel": "news:1", "event": "e", "data": map[string]string{"after": do}}); f.Type() != "ack" {
			t.Fatalf("publish on news:1 after %s: %v", do, f)
		}
		// The next message is the one on news:1: the abusive one was dropped.
		if m := sub.Expect("message"); m.Str("channel") != "news:1" {
			t.Fatalf("after %s the subscriber got %v", do, m)
		}
	}
	for sample, want := range map[string]float64{
		`eddy_functions_errors_total{function="abuse"}`:          4,
		`eddy_functions_resource_limits_total{function="abuse"}`: 2,
		`eddy_functions_timeouts_total{function="abuse"}`:        1,
	} {
		if got := metricFloat(t, s, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}

	before := rss(t)
	const hogs = 10
	for i := range hogs {
		if _, err := s.API().Publish(context.Background(), "abuse:1", "e", map[string]string{"do": "hog"}); err != nil {
			t.Fatalf("hog %d: %v", i, err)
		}
	}
	after := rss(t)
	limits := metricFloat(t, s, `eddy_functions_resource_limits_total{function="abuse"}`)
	timeouts := metricFloat(t, s, `eddy_functions_timeouts_total{function="abuse"}`)
	if limits+timeouts != 3+hogs {
		t.Fatalf("resource_limits_total = %v, timeouts_total = %v after %d more hogs", limits, timeouts, hogs)
	}
	t.Logf("RSS %d MiB before %d hogs of a 32 MiB budget, %d MiB after", before>>20, hogs, after>>20)
	// Without the budget each hog would take what wasm allows (4 GiB).
	if after-before > 384<<20 {
		t.Fatalf("RSS grew by %d MiB", (after-before)>>20)
	}
}
