package redisstore_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	redisbroker "github.com/eddyrt/eddy/internal/broker/redis"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/redisstore"
)

// TestCorruptEntryIsSkipped: one entry of the shared store that does not
// decode does not stop a node from loading: it is skipped and counted, and
// the other functions run.
func TestCorruptEntryIsSkipped(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rb, err := redisbroker.New(redisbroker.Options{Addrs: []string{srv.URL()}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	st := redisstore.New(rb)
	if err := st.PutFunction(ctx, functions.Function{Name: "good", Runtime: "js", Source: `function handle(m){ return m }`}); err != nil {
		t.Fatal(err)
	}
	c, prefix, err := rb.ControlClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, c.B().Hset().Key(prefix+":functions").FieldValue().FieldValue("bad", `{"name":"bad","runt`).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e, err := functions.New(st, functions.Options{Logger: quiet, Registerer: reg})
	if err != nil {
		t.Fatalf("engine did not start: %v", err)
	}
	defer e.Close()
	fns, err := e.ListFunctions(ctx)
	if err != nil || len(fns) != 1 || fns[0].Name != "good" {
		t.Fatalf("functions: %+v %v", fns, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "eddy_functions_load_errors_total" {
			n = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if n != 1 {
		t.Fatalf("load_errors_total = %v, want 1", n)
	}
}
