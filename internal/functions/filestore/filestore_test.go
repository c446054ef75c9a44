package filestore_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/filestore"
)

func TestPersistenceAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := functions.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}

	st, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := functions.New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	must(t, e.PutFunction(ctx, functions.Function{Name: "up", Runtime: "js", Source: `function handle(m){ m.data = m.data.toUpperCase(); return m }`, Env: map[string]string{"A": "1"}}))
	must(t, e.PutFunction(ctx, functions.Function{Name: "hook", Runtime: "http", URL: "http://127.0.0.1:1/", Secret: "s"}))
	must(t, e.PutFunction(ctx, functions.Function{Name: "gone", Runtime: "js", Source: `function handle(m){ return m }`}))
	must(t, e.PutAssociation(ctx, functions.Association{Pattern: "chat:*", Functions: []string{"up"}}))
	must(t, e.PutAssociation(ctx, functions.Association{Pattern: "tmp", Functions: []string{"gone"}}))
	must(t, e.DeleteAssociation(ctx, "tmp"))
	must(t, e.DeleteFunction(ctx, "gone"))
	must(t, e.Close())

	if fi, err := os.Stat(filepath.Join(dir, "functions", "hook.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hook.json: %v %v", fi, err)
	}

	st2, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := functions.New(st2, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	fns, _ := e2.ListFunctions(ctx)
	if len(fns) != 2 || fns[0].Name != "hook" || fns[0].Secret != "s" || fns[1].Env["A"] != "1" {
		t.Fatalf("functions after restart: %+v", fns)
	}
	as, _ := e2.ListAssociations(ctx)
	if len(as) != 1 || as[0].Pattern != "chat:*" || as[0].OnError != "pass" {
		t.Fatalf("associations after restart: %+v", as)
	}
	out, err := e2.Apply(ctx, functions.Message{Channel: "chat:a", Event: "m", Data: json.RawMessage(`"hi"`)})
	if err != nil || len(out) != 1 || string(out[0].Data) != `"HI"` {
		t.Fatalf("Apply after restart: %v %v", out, err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "functions"))
	for _, ent := range entries {
		if ent.Name() != "hook.json" && ent.Name() != "up.json" {
			t.Errorf("stray file %s", ent.Name())
		}
	}
}

func TestReloadPicksUpAnotherWriter(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := functions.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	st, err := filestore.New(dir)
	must(t, err)
	a, err := functions.New(st, opts)
	must(t, err)
	defer a.Close()
	b, err := functions.New(st, opts) // a second node on the same store
	must(t, err)
	defer b.Close()
	must(t, a.PutFunction(ctx, functions.Function{Name: "f", Runtime: "js", Source: `function handle(m){ return null }`}))
	must(t, a.PutAssociation(ctx, functions.Association{Pattern: "*", Functions: []string{"f"}}))
	if out, err := b.Apply(ctx, functions.Message{Channel: "c"}); err != nil || len(out) != 1 {
		t.Fatalf("b ran functions before Reload: %v %v", out, err)
	}
	must(t, b.Reload(ctx))
	// The function drops the message: no error and nothing out. A failing
	// Apply also returns nothing, so its error must be checked.
	if out, err := b.Apply(ctx, functions.Message{Channel: "c"}); err != nil || len(out) != 0 {
		t.Fatalf("b did not pick up the change: %v %v", out, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
