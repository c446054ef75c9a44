package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/servertest"
)

// cliEnv writes an eddy.yaml for a test server and returns a runner for
// CLI commands against it.
func cliEnv(t *testing.T, s *servertest.Server) func(args ...string) (string, error) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "eddy.yaml")
	yaml := fmt.Sprintf("secret: %q\napi_key: %q\nadmin_key: %q\n", servertest.Secret, servertest.APIKey, servertest.AdminKey)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"--config", cfg, "--server", s.Base}, args...))
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
}

func TestFunctionsCLIRoundTrip(t *testing.T) {
	s := servertest.StartNode(t)
	run := cliEnv(t, s)
	src := filepath.Join(t.TempDir(), "shout.js")
	if err := os.WriteFile(src, []byte(`function handle(m, ctx){ m.data = String(m.data).toUpperCase() + ctx.env.SUFFIX; return m }`), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"functions", "deploy", "shout", src, "--timeout", "50ms", "--env", "SUFFIX=!"}, "deployed shout"},
		{[]string{"functions", "list"}, "shout"},
		{[]string{"associations", "set", "yell:*", "shout", "--on-error", "drop"}, "yell:* -> shout"},
		{[]string{"associations", "list"}, "yell:*"},
		{[]string{"functions", "invoke", "shout", "--channel", "yell:x", "--event", "e", "--data", `"hey"`}, `"HEY!"`},
	}
	for _, st := range steps {
		out, err := run(st.args...)
		if err != nil || !strings.Contains(out, st.want) {
			t.Fatalf("eddy %s: %v\n%s\nwant %q", strings.Join(st.args, " "), err, out, st.want)
		}
	}
	if out, err := run("functions", "delete", "shout"); err == nil {
		t.Fatalf("deleting a function still associated succeeded: %s", out)
	}
	for _, args := range [][]string{{"associations", "delete", "yell:*"}, {"functions", "delete", "shout"}} {
		if out, err := run(args...); err != nil {
			t.Fatalf("eddy %v: %v %s", args, err, out)
		}
	}
	if out, _ := run("functions", "list"); strings.Contains(out, "shout") {
		t.Fatalf("function still listed after delete:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.js")
	_ = os.WriteFile(bad, []byte("function handle(m) {\n  return m +\n}\n"), 0o600)
	if out, err := run("functions", "deploy", "bad", bad); err == nil || !strings.Contains(err.Error(), "3") {
		t.Fatalf("deploying a syntax error: %v %s (want an error naming the line)", err, out)
	}
}

func TestFunctionsApplyDirectory(t *testing.T) {
	s := servertest.StartNode(t)
	run := cliEnv(t, s)
	out, err := run("functions", "apply", "../../examples/functions")
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	for _, want := range []string{"function profanity deployed", "association chat:* -> profanity, enricher, bot"} {
		if !strings.Contains(out, want) {
			t.Fatalf("apply output lacks %q:\n%s", want, out)
		}
	}
	// Applying again after removing a function from the directory prunes it.
	if out, err := run("associations", "list"); err != nil || !strings.Contains(out, "chat:*") {
		t.Fatalf("associations after apply: %v\n%s", err, out)
	}
}

func TestPublishAndTokenCLI(t *testing.T) {
	s := servertest.Start(t)
	run := cliEnv(t, s)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:lobby"})
	if out, err := run("publish", "chat:lobby", "new-post", `{"text": "hi"}`); err != nil {
		t.Fatalf("publish: %v %s", err, out)
	}
	if m := ws.Expect("message"); m["data"].(map[string]any)["text"] != "hi" {
		t.Fatalf("got %v", m)
	}
	if out, err := run("publish", "chat:lobby", "e", `{oops`); err == nil {
		t.Fatalf("publish of invalid JSON succeeded: %s", out)
	}
	out, err := run("token", "--sub", "alice", "--channel", "chat:*")
	if err != nil || strings.Count(strings.TrimSpace(out), ".") != 2 {
		t.Fatalf("token: %v %q", err, out)
	}
	servertest.Connect(t, s.WSURL, strings.TrimSpace(out))
	if out, err := run("info"); err != nil || !strings.Contains(out, s.NodeID()) {
		t.Fatalf("info: %v\n%s", err, out)
	}
}
