package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestPublishBatchFile: eddy publish --batch sends a JSON Lines file in
// batches, prints one result per message in order, fails when one was
// refused, and publishes nothing from a malformed file.
func TestPublishBatchFile(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 10}
	})
	run := runEddy(t, s)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.jsonl", `{"channel":"feed:1","event":"e","data":1}
{"channel":"feed:2","event":"e","data":{"x":"y"}}

{"channel":"feed:1","event":"e","data":2}
{"channel":"feed:1","event":"e","data":3}
`)
	out, errOut, err := run("publish", "--batch", good, "--batch-size", "2")
	if err != nil {
		t.Fatalf("publish --batch: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("printed %q, want 4 results", out)
	}
	wantOffsets := []uint64{1, 1, 2, 3}
	for i, l := range lines {
		var r api.BatchResult
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Error != nil || r.ID == "" || r.Offset != wantOffsets[i] {
			t.Fatalf("result %d: %s (%v), want offset %d", i, l, err, wantOffsets[i])
		}
	}
	h, err := s.API().History(t.Context(), "feed:1", 0, 0)
	if err != nil || len(h.Messages) != 3 || string(h.Messages[2].Data) != "3" {
		t.Fatalf("feed:1 history %+v %v, want 1 2 3", h, err)
	}

	refused := write("refused.jsonl", `{"channel":"feed:3","event":"e","data":1}
{"channel":"bad channel","event":"e","data":1}
`)
	out, _, err = run("publish", "--batch", refused)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 messages were refused") {
		t.Fatalf("refused item: err %v, want 1 of 2 refused", err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"bad_request"`) {
		t.Fatalf("printed %q, want a result and a bad_request", out)
	}

	bad := write("bad.jsonl", `{"channel":"feed:4","event":"e","data":1}
{"channel":"feed:4","event":"e","data":
`)
	if _, _, err := run("publish", "--batch", bad); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("malformed file: %v, want an error naming line 2", err)
	}
	if h, err := s.API().History(t.Context(), "feed:4", 0, 0); err != nil || len(h.Messages) != 0 {
		t.Fatalf("a malformed file published %+v %v", h, err)
	}
	if _, _, err := run("publish", "--batch", bad, "extra"); err == nil {
		t.Fatal("--batch with positional arguments was accepted")
	}
}
