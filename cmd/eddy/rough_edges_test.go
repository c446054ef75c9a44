package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := runRoot(args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.HasPrefix(out, "eddy dev (commit ") || !strings.Contains(out, "go1.") {
			t.Fatalf("%v printed %q, want the version, commit and Go version", args, out)
		}
	}
}

func TestNamedConfigThatDoesNotExistIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doesnotexist.yaml")
	for _, args := range [][]string{
		{"serve", "--config", path, "--listen", "127.0.0.1:0"},
		{"token", "--config", path, "--sub", "a"},
	} {
		_, err := runRoot(args...)
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("%v: %v, want an error saying the file does not exist", args, err)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("serve created the named config file")
	}
}

func TestTokenRefusesNegativeTTL(t *testing.T) {
	_, err := runRoot("token", "--secret", servertest.Secret, "--sub", "a", "--ttl", "-1h")
	if err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("token --ttl -1h: %v, want a refusal", err)
	}
}

func TestSettingErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	good := `secret: "0123456789abcdef0123456789abcdef"` + "\napi_key: k\n"
	cases := []struct {
		name, file string
		env        map[string]string
		want       []string
	}{
		{"duration in file", good + "auth_timeout: 5 seconds\n", nil, []string{"auth_timeout", `"5 seconds"`, "not a duration"}},
		{"duration in namespace", good + "namespaces:\n  chat: { history_ttl: forever }\n", nil, []string{"namespaces.chat", "history_ttl", `"forever"`}},
		{"duration in env", good, map[string]string{"EDDY_AUTH_TIMEOUT": "5 seconds"}, []string{"EDDY_AUTH_TIMEOUT", `"5 seconds"`}},
		{"log level", good + "log_level: verbose\n", nil, []string{"log_level", `"verbose"`}},
		{"redis url", good + "redis: [notaurl]\n", nil, []string{"redis", `"notaurl"`, "redis://"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := runRoot("serve", "--config", path, "--listen", "127.0.0.1:0")
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("serve: %v, want an error containing %s", err, w)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveBriefly runs `eddy serve args...` until it has printed its listening
// line, then stops it and returns everything it printed.
func serveBriefly(t *testing.T, dir string, args ...string) string {
	t.Helper()
	root := newRootCmd()
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t.Chdir(dir)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "eddy listening") {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling our own output buffer
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	return out.String()
}

func TestServePrintsKeysOnlyWhenItGeneratedThem(t *testing.T) {
	dir := t.TempDir()
	first := serveBriefly(t, dir)
	cfg, err := config.Load(filepath.Join(dir, "eddy.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first, cfg.APIKey) {
		t.Fatalf("first start did not print the generated API key:\n%s", first)
	}
	if !strings.Contains(first, "http://127.0.0.1:") {
		t.Fatalf("no clickable URL in:\n%s", first)
	}
	second := serveBriefly(t, dir)
	if strings.Contains(second, cfg.APIKey) {
		t.Fatalf("second start printed the API key again:\n%s", second)
	}
	t.Setenv("EDDY_API_KEY", "ek_from_the_environment_0123456789")
	third := serveBriefly(t, dir)
	if strings.Contains(third, "ek_from_the_environment") {
		t.Fatalf("start with EDDY_API_KEY printed it:\n%s", third)
	}
}

func TestServeJSONLogStaysJSONAndKeyless(t *testing.T) {
	dir := t.TempDir()
	out := serveBriefly(t, dir, "--log-format", "json", "--demo")
	cfg, err := config.Load(filepath.Join(dir, "eddy.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, cfg.APIKey) || strings.Contains(out, cfg.Secret) {
		t.Fatalf("a key reached the JSON log:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Fatalf("non-JSON line in the JSON log: %q", line)
		}
	}
	if !strings.Contains(out, `"demo":"http://127.0.0.1:`) {
		t.Fatalf("the demo URL is not in the log:\n%s", out)
	}
}

func TestClientCommandRoughEdges(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) {
		c.Namespaces["chat"] = config.ChannelOptions{HistorySize: 10, HistoryTTL: time.Minute}
	})
	run := cliEnv(t, s)
	hostPort := strings.TrimPrefix(s.Base, "http://")
	if out, err := run("--server", hostPort, "info"); err != nil {
		t.Fatalf("--server host:port: %v %s", err, out)
	}
	_, err := run("publish", "chat:é", "ev", "{}")
	if err == nil || !strings.Contains(err.Error(), `'é'`) || strings.Contains(err.Error(), "eddy api") {
		t.Fatalf("publish to chat:é: %v, want the character named once, without a doubled prefix", err)
	}
	_, err = run("subscribe", "bad channel")
	if err == nil || !strings.Contains(err.Error(), "channel name") || strings.Contains(err.Error(), "token") {
		t.Fatalf("subscribe 'bad channel': %v, want a channel name error", err)
	}
	out, err := run("history", "nokeep:x")
	if err != nil || !strings.Contains(out, "history is off") {
		t.Fatalf("history of a namespace without history: %v %q", err, out)
	}
	out, err = run("history", "chat:x")
	if err != nil || !strings.Contains(out, "0 messages") {
		t.Fatalf("history of a kept channel: %v %q", err, out)
	}
}

func TestFunctionsApplyKeepsWhatDirDoesNotNameUnlessPrune(t *testing.T) {
	s := servertest.StartNode(t)
	run := cliEnv(t, s)
	extra := filepath.Join(t.TempDir(), "extra.js")
	if err := os.WriteFile(extra, []byte(`function handle(m){ return m }`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run("functions", "deploy", "extra", extra); err != nil {
		t.Fatalf("deploy: %v %s", err, out)
	}
	out, err := run("functions", "apply", "../../examples/functions")
	if err != nil || !strings.Contains(out, "function extra is not in ../../examples/functions: kept") {
		t.Fatalf("apply without --prune: %v\n%s", err, out)
	}
	if out, err := run("functions", "list"); err != nil || !strings.Contains(out, "extra") || !strings.Contains(out, "100 (default)") {
		t.Fatalf("list after apply without --prune: %v\n%s", err, out)
	}
	if out, err := run("functions", "apply", "--prune", "../../examples/functions"); err != nil || !strings.Contains(out, "function extra removed") {
		t.Fatalf("apply --prune: %v\n%s", err, out)
	}
	if out, err := run("functions", "list"); err != nil || strings.Contains(out, "extra") {
		t.Fatalf("list after --prune: %v\n%s", err, out)
	}
}

func TestHomePage(t *testing.T) {
	cfg := servertest.Config()
	cfg.Demo = true
	opts, cleanup, err := buildServerOptions(cfg, servertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	s := servertest.StartWith(t, opts)
	resp, err := http.Get(s.Base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "eddy dev") || !strings.Contains(string(body), `href="/demo/"`) {
		t.Fatalf("GET / = %d:\n%s", resp.StatusCode, body)
	}
	if resp, err := http.Get(s.Base + "/nothing-here"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("GET /nothing-here: %v %v, want 404", resp, err)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	s := servertest.Start(t)
	if out, err := runRoot("healthcheck", "--url", s.Base+"/readyz"); err != nil || !strings.Contains(out, "ready") {
		t.Fatalf("healthcheck of a ready server: %v %q", err, out)
	}
	if _, err := runRoot("healthcheck", "--url", s.Base+"/nothing"); err == nil {
		t.Fatal("healthcheck of a 404 succeeded")
	}
}
