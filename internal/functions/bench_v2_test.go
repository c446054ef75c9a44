package functions_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/eddyrt/eddy/internal/functions"
)

// BenchmarkApplyKVCounter: messages through examples/functions/counter.js,
// one ctx.kv.incr each (the in-memory store of a single node).
func BenchmarkApplyKVCounter(b *testing.B) {
	src, err := os.ReadFile("../../examples/functions/counter.js")
	if err != nil {
		b.Fatal(err)
	}
	e := newEngine(b, functions.Options{})
	deployJS(b, e, "counter", string(src), 0)
	associate(b, e, "chat:*", "", "counter")
	benchApply(b, e, msg("chat:lobby", `{"text":"hi"}`), true)
}

// BenchmarkApplyFetch: messages through an async function that awaits one
// ctx.fetch to a local HTTP server and puts its answer in the message.
func BenchmarkApplyFetch(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"score":0.1}`)
	}))
	b.Cleanup(srv.Close)
	e := newEngine(b, functions.Options{AllowPrivateURLs: true})
	if err := e.PutFunction(context.Background(), functions.Function{Name: "f", Runtime: "js", TimeoutMS: 2000,
		AllowHosts: []string{"127.0.0.1"}, Source: `async function handle(m, ctx) {
  var r = await ctx.fetch("` + srv.URL + `/score");
  m.data.score = (await r.json()).score;
  return m
}`}); err != nil {
		b.Fatal(err)
	}
	associate(b, e, "chat:*", "", "f")
	benchApply(b, e, msg("chat:lobby", `{"text":"hi"}`), true)
}
