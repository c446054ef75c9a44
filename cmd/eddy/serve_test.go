package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
)

func runRoot(args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestInitWritesPrivateConfigOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eddy.yaml")
	if out, err := runRoot("init", "--config", path); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode %v (%v), want 0600", st.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "secret:") || !strings.Contains(string(b), "api_key:") {
		t.Fatalf("config lacks secret or key:\n%s", b)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminKey == "" || cfg.AdminKey == cfg.APIKey {
		t.Fatalf("init wrote admin_key %q next to api_key %q; want its own key", cfg.AdminKey, cfg.APIKey)
	}
	if _, err := runRoot("init", "--config", path); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second init: %v, want a refusal to overwrite", err)
	}
}

func TestServeRefusesBadSettingsNamingThem(t *testing.T) {
	dir := t.TempDir()
	good := `secret: "0123456789abcdef0123456789abcdef"` + "\napi_key: k\n"
	cases := []struct {
		name, file string
		args       []string
		want       string
	}{
		{"short secret", "secret: short\napi_key: k\n", nil, "secret"},
		{"unknown key", good + "listen_port: 9\n", nil, `"listen_port"`},
		{"bad duration", good + "auth_timeout: soon\n", nil, "auth_timeout"},
		{"bad duration flag", good, []string{"--shutdown-timeout", "-1s"}, "shutdown_timeout"},
		{"unknown channel option", good + "namespaces:\n  chat: { history: 5 }\n", nil, `"history"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"serve", "--config", path, "--listen", "127.0.0.1:0"}, c.args...)
			_, err := runRoot(args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("serve: %v, want an error naming %s", err, c.want)
			}
		})
	}
}
