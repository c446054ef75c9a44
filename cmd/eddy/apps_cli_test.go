package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

const cliOperatorKey = "eop_cli-test-operator-key-012345"

// Apps made and managed with the CLI; --app makes token, publish and
// functions act as the app, and its channels stay its own.
func TestAppsCLI(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) { c.OperatorKey = cliOperatorKey })
	cfg := filepath.Join(t.TempDir(), "eddy.yaml")
	yaml := fmt.Sprintf("secret: %q\napi_key: %q\nadmin_key: %q\noperator_key: %q\n", servertest.Secret, servertest.APIKey, servertest.AdminKey, cliOperatorKey)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"--config", cfg, "--server", s.Base}, args...))
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("eddy %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	var created struct {
		ID      string
		APIKeys []struct{ ID, Key string }    `json:"api_keys"`
		JWTKeys []struct{ ID, Secret string } `json:"jwt_keys"`
	}
	if err := json.Unmarshal([]byte(run("apps", "create", "shop", "--name", "The Shop")), &created); err != nil || created.ID != "shop" || len(created.APIKeys) != 1 {
		t.Fatalf("apps create: %v %+v", err, created)
	}
	run("apps", "create", "blog")
	if out := run("apps", "list"); !strings.Contains(out, "shop") || !strings.Contains(out, "The Shop") || !strings.Contains(out, "blog") {
		t.Fatalf("apps list:\n%s", out)
	}
	if out := run("apps", "show", "shop"); strings.Contains(out, created.APIKeys[0].Key) {
		t.Fatalf("apps show prints a key in full:\n%s", out)
	}

	shopTok := strings.TrimSpace(run("--app", "shop", "token", "--sub", "alice", "--channel", "*"))
	ws := servertest.Connect(t, s.WSURL, shopTok)
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "news"})
	def := servertest.Connect(t, s.WSURL, servertest.Token(t, "dora", nil, nil))
	def.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "news"})
	run("--app", "blog", "publish", "news", "e", `{"from":"blog"}`)
	run("--app", "shop", "publish", "news", "e", `{"from":"shop"}`)
	run("publish", "news", "e", `{"from":"default"}`)
	if f := ws.Expect("message"); fmt.Sprint(f["data"]) != "map[from:shop]" {
		t.Fatalf("shop's client got %v", f)
	}
	if f := def.Expect("message"); fmt.Sprint(f["data"]) != "map[from:default]" {
		t.Fatalf("the default app's client got %v", f)
	}
	if out := run("--app", "shop", "functions", "list"); strings.Contains(out, "error") {
		t.Fatalf("functions list as shop:\n%s", out)
	}
	// Every client command takes --app: these would fail with another app's keys.
	run("--app", "shop", "history", "news")
	run("--app", "shop", "associations", "list")

	// Rotation from the CLI: add a JWT key, retire the old one; tokens the
	// CLI mints use the newest key.
	var added struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(run("apps", "keys", "add", "shop", "--kind", "jwt")), &added); err != nil || added.Secret == "" {
		t.Fatalf("keys add: %v", err)
	}
	if out := run("apps", "keys", "list", "shop"); !strings.Contains(out, added.ID) || !strings.Contains(out, created.JWTKeys[0].ID) {
		t.Fatalf("keys list:\n%s", out)
	}
	run("apps", "keys", "retire", "shop", created.JWTKeys[0].ID)
	servertest.Connect(t, s.WSURL, strings.TrimSpace(run("--app", "shop", "token", "--sub", "bob")))
	old := servertest.Dial(t, s.WSURL)
	old.Send(map[string]any{"type": "auth", "token": shopTok})
	old.ExpectError("unauthorized")

	if out := run("--app", "shop", "info"); !strings.Contains(out, "shop") || strings.Contains(out, "default") {
		t.Fatalf("info as shop:\n%s", out)
	}
	if out := run("info"); !strings.Contains(out, "default") || strings.Contains(out, "shop") {
		t.Fatalf("info as the default app:\n%s", out)
	}
	run("apps", "delete", "shop")
	if code := ws.CloseCode(); code != 4011 {
		t.Fatalf("shop's client closed with %d, want 4011", code)
	}
	if out := run("apps", "list"); strings.Contains(out, "shop") {
		t.Fatalf("deleted app still listed:\n%s", out)
	}
}
