package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/servertest"
)

// eddy functions logs prints a function's kept lines; with -f it goes on
// printing new ones until stopped.
func TestFunctionsLogsCLI(t *testing.T) {
	s := servertest.StartNode(t)
	run := cliEnv(t, s)
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "say.js")
	if err := os.WriteFile(src, []byte(`function handle(m, ctx){ ctx.log("said", m.data); return m }`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run("functions", "deploy", "say", src); err != nil {
		t.Fatalf("deploy: %v %s", err, out)
	}
	if out, err := run("associations", "set", "say:*", "say"); err != nil {
		t.Fatalf("associate: %v %s", err, out)
	}
	if _, err := s.API().Publish(ctx, "say:x", "e", "first"); err != nil {
		t.Fatal(err)
	}
	out, err := run("functions", "logs", "say")
	if err != nil || !strings.Contains(out, "said first") || !strings.Contains(out, s.NodeID()) || !strings.Contains(out, "info") {
		t.Fatalf("functions logs: %v\n%s", err, out)
	}
	if out, err := run("functions", "logs", "-bad"); err == nil {
		t.Fatalf("logs of a bad name succeeded: %s", out)
	}

	// -f: the kept line, then a new one, until the context ends.
	cfg := filepath.Join(t.TempDir(), "eddy.yaml")
	yaml := fmt.Sprintf("secret: %q\napi_key: %q\nadmin_key: %q\n", servertest.Secret, servertest.APIKey, servertest.AdminKey)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	var buf syncBuffer
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(&buf)
		root.SetErr(&buf)
		root.SetArgs([]string{"--config", cfg, "--server", s.Base, "functions", "logs", "say", "-f"})
		done <- root.ExecuteContext(fctx)
	}()
	servertest.Eventually(t, "the kept line printed by -f", func() bool { return strings.Contains(buf.String(), "said first") })
	if _, err := s.API().Publish(ctx, "say:x", "e", "second"); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "the new line printed by -f", func() bool { return strings.Contains(buf.String(), "said second") })
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("functions logs -f stopped by the operator: %v", err)
		}
	case <-time.After(servertest.Timeout):
		t.Fatal("functions logs -f did not stop with its context")
	}
}

// eddy token --admin mints a token that may watch $admin:status; without
// --admin the same subscribe is refused.
func TestTokenAdminWatchesStatus(t *testing.T) {
	s := servertest.Start(t)
	run := cliEnv(t, s)
	for _, admin := range []bool{true, false} {
		args := []string{"token", "--sub", "ops"}
		if admin {
			args = append(args, "--admin")
		}
		out, err := run(args...)
		if err != nil {
			t.Fatalf("token: %v %s", err, out)
		}
		ws := servertest.Connect(t, s.WSURL, strings.TrimSpace(out))
		f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "$admin:status"})
		if admin && f.Type() != "subscribed" || !admin && f.Str("code") != "forbidden" {
			t.Fatalf("token (admin %v) subscribing to $admin:status: %v", admin, f)
		}
	}
}
