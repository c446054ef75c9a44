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

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestWebhooksCLIAddListDelete: `eddy webhooks add` prints the new id,
// `list` shows it beside eddy.yaml's (secrets never printed), `delete`
// removes it, and deleting it again names the missing id.
func TestWebhooksCLIAddListDelete(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) {
		c.Webhooks = []config.Webhook{{URL: "http://127.0.0.1:9/from-yaml", Secret: "yaml-secret", Events: []string{"channel_vacated"}}}
	})
	cfg := filepath.Join(t.TempDir(), "eddy.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("secret: %q\napi_key: %q\n", servertest.Secret, servertest.APIKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDDY_ADMIN_KEY", servertest.AdminKey)
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"--config", cfg, "--server", s.Base}, args...))
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run("webhooks", "add", "http://127.0.0.1:9/hooks", "--secret", "cli-secret", "--events", "channel_occupied,member_added")
	if err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	id := regexp.MustCompile(`added (wh_\w+)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("add printed %q, want the new id", out)
	}
	out, err = run("webhooks", "list")
	if err != nil || !strings.Contains(out, id[1]) || !strings.Contains(out, "channel_occupied,member_added") ||
		!strings.Contains(out, "config-1") || strings.Contains(out, "cli-secret") || strings.Contains(out, "yaml-secret") {
		t.Fatalf("list: %v\n%s\nwant both receivers, no secrets", err, out)
	}
	if out, err = run("webhooks", "delete", id[1]); err != nil || !strings.Contains(out, "deleted "+id[1]) {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if _, err = run("webhooks", "delete", id[1]); err == nil || !strings.Contains(err.Error(), id[1]) || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("deleting again: %v, want not_found naming the id", err)
	}
	if out, err = run("webhooks", "add", "http://127.0.0.1:9/hooks", "--events", "channel_occupied"); err == nil || !strings.Contains(err.Error()+out, "secret") {
		t.Fatalf("add without a secret: %v %s, want a refusal naming secret", err, out)
	}
}
