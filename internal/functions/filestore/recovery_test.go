package filestore_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/filestore"
)

// TestLeftoverTempFilesAreRemoved: a write killed between CreateTemp and
// rename (kill -9) leaves .tmp-* files; opening the store removes them and
// keeps everything else.
func TestLeftoverTempFilesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "functions"), 0o700))
	leftovers := []string{filepath.Join(dir, ".tmp-123"), filepath.Join(dir, "functions", ".tmp-456")}
	for _, p := range leftovers {
		must(t, os.WriteFile(p, []byte(`{"half":`), 0o600))
	}
	keep := filepath.Join(dir, "functions", "f.json")
	must(t, os.WriteFile(keep, []byte(`{"name":"f","runtime":"js","source":"function handle(m){return m}"}`), 0o600))
	if _, err := filestore.New(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("f.json: %v", err)
	}
}

// TestCorruptFunctionFileIsSkipped: one unreadable function file does not
// stop the engine from loading: it is skipped, counted, and the others run.
func TestCorruptFunctionFileIsSkipped(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "functions", "good.json"), []byte(`{"name":"good","runtime":"js","source":"function handle(m){ m.data = 1; return m }"}`), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "functions", "bad.json"), []byte("{\"name\":\"bad\",\"runt\x00"), 0o600))
	reg := prometheus.NewRegistry()
	e, err := functions.New(st, functions.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg})
	if err != nil {
		t.Fatalf("engine did not start: %v", err)
	}
	defer e.Close()
	fns, err := e.ListFunctions(context.Background())
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
