package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/servertest"
)

// topConfig writes an eddy.yaml holding the test server's keys.
func topConfig(t *testing.T, adminKey string) string {
	cfg := filepath.Join(t.TempDir(), "eddy.yaml")
	yaml := fmt.Sprintf("secret: %q\napi_key: %q\nadmin_key: %q\n", servertest.Secret, servertest.APIKey, adminKey)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// Unset, not empty: an empty variable would override the file's key.
	t.Setenv("EDDY_ADMIN_KEY", "")
	_ = os.Unsetenv("EDDY_ADMIN_KEY")
	return cfg
}

func runCLI(t *testing.T, args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// eddy top draws frames from the stats stream: the node with its
// connection, and, while a channel is published to, its rate among the
// busiest channels. Piped (not a terminal) it writes no escape codes.
func TestTopShowsNodesAndBusiestChannels(t *testing.T) {
	s := servertest.StartNode(t)
	cfg := topConfig(t, servertest.AdminKey)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:busy"})

	out, err := runCLI(t, "--config", cfg, "--server", s.Base, "top", "--once")
	if err != nil {
		t.Fatalf("top --once: %v\n%s", err, out)
	}
	row := regexp.MustCompile(`(?m)^\S+ \*\s+` + regexp.QuoteMeta(s.NodeID()) + `\s+\S+\s+1\s+1\s+`)
	if !row.MatchString(out) || !strings.Contains(out, "memory broker ready") || strings.Contains(out, "\x1b[") {
		t.Fatalf("top --once: want this node's row with 1 connection and 1 subscription, no escapes:\n%s", out)
	}

	done := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		tick := time.NewTicker(10 * time.Millisecond) // a steady load, not a tight loop
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			_, _ = s.API().Publish(context.Background(), "chat:busy", "e", i)
		}
	}()
	defer func() { close(done); <-published }()
	// Frames come once a second; the run ends at the first that shows the
	// channel's rate, or fails after 30.
	busy := regexp.MustCompile(`(?m)^chat:busy\s+1\s+[1-9]`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &watchWriter{match: busy, found: cancel}
	if err := runTop(ctx, api.NewClient(s.Base, servertest.AdminKey), w, 30, false); err != nil {
		t.Fatalf("top: %v\n%s", err, w.buf.String())
	}
	if !busy.Match(w.buf.Bytes()) {
		t.Fatalf("chat:busy never showed among the busiest channels in 30 frames:\n%s", w.buf.String())
	}
}

// watchWriter collects frames and calls found once they match.
type watchWriter struct {
	buf   bytes.Buffer
	match *regexp.Regexp
	found func()
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if w.match.Match(w.buf.Bytes()) {
		w.found()
	}
	return len(p), nil
}

// A wrong admin key is refused with the server's message.
func TestTopWithAWrongKey(t *testing.T) {
	s := servertest.StartNode(t)
	cfg := topConfig(t, "not-the-admin-key")
	out, err := runCLI(t, "--config", cfg, "--server", s.Base, "top", "--once")
	if err == nil || !strings.Contains(err.Error(), "unauthorized") || !strings.Contains(err.Error(), "admin key") {
		t.Fatalf("top with a wrong key: %v\n%s", err, out)
	}
}
