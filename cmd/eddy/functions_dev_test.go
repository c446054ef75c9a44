package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions/secrets"
	"github.com/eddyrt/eddy/internal/servertest"
)

// mockAPI is a real local HTTP server standing in for the translation API
// (/translate: needs "Authorization: Bearer <key>", answers {"text"}) and
// for a webhook (/hook: rejects messages whose text says "spam").
func mockAPI(t *testing.T, key string) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var in struct {
			Text   string `json:"text"`
			Target string `json:"target"`
			Data   struct {
				Text string `json:"text"`
			} `json:"data"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in)
		switch r.URL.Path {
		case "/translate":
			if r.Header.Get("Authorization") != "Bearer "+key {
				http.Error(w, "bad key", http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, `{"text":%q}`, "["+in.Target+"] "+in.Text)
		case "/hook":
			if strings.Contains(in.Data.Text, "spam") {
				fmt.Fprint(w, `{"action":"reject","reason":"spam"}`)
				return
			}
			fmt.Fprint(w, `{"action":"pass","data":{"text":"checked: `+in.Data.Text+`"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// templateCase is what each template must do with its test message, run
// locally and on a real server; extra are the flags it needs (with {API}
// standing for the mock API's base).
var templateCases = []struct {
	name  string
	extra []string
	want  []string // substrings of the printed result
}{
	{"filter", []string{"--env", "WORDS=darn,heck"}, []string{`"action": "reject"`, "blocked word"}},
	{"enricher", nil, []string{`"action": "pass"`, `"words": 3`, `"received_at"`}},
	{"bot", nil, []string{`"event": "bot"`, `"text": "hi bot"`}},
	{"counter", nil, []string{`"seq": 1`}},
	{"translate", []string{"--env", "TRANSLATE_URL={API}/translate", "--allow-host", "127.0.0.1"}, []string{`"translated": "[fr] hello"`}},
	{"http", []string{"--env", "WEBHOOK_URL={API}/hook", "--allow-host", "127.0.0.1"}, []string{`"text": "checked: check me"`}},
}

// TestTemplatesRunLocally: every template written by `functions new` runs
// under `functions test` without a server and does what it says, the
// fetch-calling ones against a real local HTTP server, the translation one
// with a secret given by --secret.
func TestTemplatesRunLocally(t *testing.T) {
	const key = "tr-key-0123456789"
	api, calls := mockAPI(t, key)
	dir := t.TempDir()
	for _, c := range templateCases {
		t.Run(c.name, func(t *testing.T) {
			name := "my_" + c.name
			if out, err := runRoot("functions", "new", name, "--template", c.name, "--dir", dir); err != nil || !strings.Contains(out, "eddy functions test") {
				t.Fatalf("new: %v %s", err, out)
			}
			args := []string{"functions", "test", filepath.Join(dir, name+".js"), "--allow-private", "--secret", "TRANSLATE_KEY=" + key}
			for _, a := range c.extra {
				args = append(args, strings.ReplaceAll(a, "{API}", api.URL))
			}
			out, err := runRoot(args...)
			if err != nil {
				t.Fatalf("test: %v\n%s", err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Fatalf("functions test printed:\n%s\nwant %q", out, w)
				}
			}
		})
	}
	if calls.Load() != 2 {
		t.Fatalf("the mock API got %d calls, want 2 (translate, http)", calls.Load())
	}
	// Existing files are not overwritten; a test run that fails exits non-zero.
	if _, err := runRoot("functions", "new", "my_bot", "--template", "bot", "--dir", dir); err == nil {
		t.Fatal("new overwrote my_bot.js")
	}
	if out, err := runRoot("functions", "test", filepath.Join(dir, "my_translate.js"), "--data", `{"text":"x"}`, "--env", "TRANSLATE_URL="+api.URL); err == nil || !strings.Contains(out, "fetch_refused") {
		t.Fatalf("translate without allow_hosts: %v %s", err, out)
	}
	ts := filepath.Join(dir, "typed.ts")
	_ = os.WriteFile(ts, []byte("type M = { data: number }\nexport default function handle(m: M): M {\n  m.data = m.data * 2\n  return m\n}\n"), 0o600)
	if out, err := runRoot("functions", "test", ts, "--data", `21`); err != nil || !strings.Contains(out, `"data": 42`) {
		t.Fatalf("a .ts file: %v %s", err, out)
	}
	_ = os.WriteFile(ts, []byte("export default function handle(m: any) {\n  return m +\n}\n"), 0o600)
	if out, err := runRoot("functions", "test", ts, "--data", `1`); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("a .ts syntax error: %v %s", err, out)
	}
}

// TestTemplatesOnARealServer: each template deployed with the CLI to a
// running node (secrets_key set, loopback allowed for the mock API) does
// the same there; the translation key is set with `functions secrets set`
// from stdin and listed by name only.
func TestTemplatesOnARealServer(t *testing.T) {
	const key = "tr-key-0123456789"
	api, _ := mockAPI(t, key)
	s := servertest.StartNode(t, func(c *config.Config) {
		c.SecretsKey = config.NewSecretsKey()
		c.AllowPrivateURLs = true
	})
	run := cliEnv(t, s)
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(key + "\n"))
	cfgArgs := cliConfigArgs(t, s)
	root.SetArgs(append(cfgArgs, "functions", "secrets", "set", "TRANSLATE_KEY"))
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("secrets set: %v %s", err, out.String())
	}
	if o, err := run("functions", "secrets", "list"); err != nil || strings.TrimSpace(o) != "TRANSLATE_KEY" {
		t.Fatalf("secrets list: %v %q", err, o)
	}
	// The API never answers with the value.
	res, err := http.DefaultClient.Do(adminReq(t, s, http.MethodGet, "/api/v1/secrets"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(b), key) || !strings.Contains(string(b), "TRANSLATE_KEY") {
		t.Fatalf("GET /api/v1/secrets: %s", b)
	}
	dir := t.TempDir()
	for _, c := range templateCases {
		t.Run(c.name, func(t *testing.T) {
			name := "srv_" + c.name
			if o, err := runRoot("functions", "new", name, "--template", c.name, "--dir", dir); err != nil {
				t.Fatalf("new: %v %s", err, o)
			}
			args := []string{"functions", "deploy", name, filepath.Join(dir, name+".js"), "--timeout", "2s"}
			for _, a := range c.extra {
				args = append(args, strings.ReplaceAll(a, "{API}", api.URL))
			}
			if o, err := run(args...); err != nil {
				t.Fatalf("deploy: %v %s", err, o)
			}
			var msg struct {
				Channel string          `json:"channel"`
				Data    json.RawMessage `json:"data"`
			}
			raw, _ := os.ReadFile(filepath.Join(dir, name+".test.json"))
			if err := json.Unmarshal(raw, &msg); err != nil {
				t.Fatal(err)
			}
			o, err := run("functions", "invoke", name, "--channel", msg.Channel, "--data", string(msg.Data))
			if err != nil {
				t.Fatalf("invoke: %v %s", err, o)
			}
			compact := strings.NewReplacer(" ", "", "\n", "").Replace(o)
			for _, w := range c.want {
				if !strings.Contains(compact, strings.NewReplacer(" ", "").Replace(w)) {
					t.Fatalf("invoke on the server printed:\n%s\nwant %q", o, w)
				}
			}
		})
	}
	// Published for real: the counter numbers the messages of its channel.
	if o, err := run("associations", "set", "count:*", "srv_counter"); err != nil {
		t.Fatalf("associate: %v %s", err, o)
	}
	for i := 1; i <= 3; i++ {
		if _, err := s.API().Publish(context.Background(), "count:a", "message", json.RawMessage(`{"text":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	o, err := run("functions", "invoke", "srv_counter", "--channel", "count:a", "--data", `{}`)
	if err != nil || !strings.Contains(strings.ReplaceAll(o, " ", ""), `"seq":4`) {
		t.Fatalf("after 3 publishes the next number is 4: %v %s", err, o)
	}
	if o, err := run("functions", "secrets", "delete", "TRANSLATE_KEY"); err != nil {
		t.Fatalf("secrets delete: %v %s", err, o)
	}
	if o, _ := run("functions", "secrets", "list"); strings.TrimSpace(o) != "" {
		t.Fatalf("after delete: %q", o)
	}
}

func adminReq(t *testing.T, s *servertest.Server, method, path string) *http.Request {
	req, err := http.NewRequest(method, s.APIBase()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+servertest.AdminKey)
	return req
}

// cliConfigArgs are the global flags that point the CLI at s (as cliEnv).
func cliConfigArgs(t *testing.T, s *servertest.Server) []string {
	cfg := filepath.Join(t.TempDir(), "eddy.yaml")
	yaml := fmt.Sprintf("secret: %q\napi_key: %q\nadmin_key: %q\n", servertest.Secret, servertest.APIKey, servertest.AdminKey)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", cfg, "--server", s.Base}
}

// TestTypeScriptThroughDeployAndApply: a .ts file deployed with `functions
// deploy` and one named in associations.json deployed with `functions
// apply` run on a real server; a syntax error names the .ts line.
func TestTypeScriptThroughDeployAndApply(t *testing.T) {
	s := servertest.StartNode(t)
	run := cliEnv(t, s)
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	twice := write("twice.ts", "type M = { data: number }\nexport default function handle(m: M): M {\n  m.data = m.data * 2\n  return m\n}\n")
	if o, err := run("functions", "deploy", "twice", twice); err != nil {
		t.Fatalf("deploy .ts: %v %s", err, o)
	}
	if o, err := run("functions", "invoke", "twice", "--channel", "c:1", "--data", "21"); err != nil || !strings.Contains(o, "42") {
		t.Fatalf("invoke: %v %s", err, o)
	}
	bad := write("bad.ts", "const a: number = 1\n\nexport default function handle(m: any) {\n  return (m +\n}\n")
	if o, err := run("functions", "deploy", "bad", bad); err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("deploy of a .ts syntax error: %v %s (want line 5)", err, o)
	}
	write("neg.ts", "export default (m: { data: number }) => { m.data = -m.data; return m }\n")
	write("associations.json", `{"functions": {"neg": {"file": "neg.ts"}}, "associations": [{"pattern": "neg:*", "functions": ["neg"]}]}`)
	if o, err := run("functions", "apply", dir); err != nil {
		t.Fatalf("apply: %v %s", err, o)
	}
	if o, err := run("functions", "invoke", "neg", "--channel", "neg:1", "--data", "5"); err != nil || !strings.Contains(o, "-5") {
		t.Fatalf("invoke applied .ts: %v %s", err, o)
	}
}

// TestInitWritesASecretsKey: eddy init writes a secrets_key the secrets
// package accepts, different on every init.
func TestInitWritesASecretsKey(t *testing.T) {
	keys := map[string]bool{}
	for range 2 {
		path := filepath.Join(t.TempDir(), "eddy.yaml")
		if out, err := runRoot("init", "--config", path); err != nil {
			t.Fatalf("init: %v %s", err, out)
		}
		cfg, err := config.Load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := secrets.ParseKey(cfg.SecretsKey); err != nil {
			t.Fatalf("secrets_key %q: %v", cfg.SecretsKey, err)
		}
		keys[cfg.SecretsKey] = true
	}
	if len(keys) != 2 {
		t.Fatal("two inits wrote the same secrets_key")
	}
}
