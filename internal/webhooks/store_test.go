package webhooks_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/webhooks"
)

// TestFileStoreKeepsReceiversAcrossRestarts: what one store wrote, a new
// store over the same data_dir reads; the file is readable by its owner
// only (it holds secrets).
func TestFileStoreKeepsReceiversAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a, err := webhooks.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := config.Webhook{ID: "wh_1", URL: "https://x.example/h", Secret: "s", Events: []string{"channel_occupied"}}
	if err := a.Put(ctx, w); err != nil {
		t.Fatal(err)
	}
	b, _ := webhooks.NewFileStore(dir)
	got, err := b.List(ctx)
	if err != nil || len(got) != 1 || got[0].ID != "wh_1" || got[0].Secret != "s" {
		t.Fatalf("after a restart: %+v, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "webhooks.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("webhooks.json: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	if err := b.Delete(ctx, "wh_1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "wh_1"); !errors.Is(err, webhooks.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}
