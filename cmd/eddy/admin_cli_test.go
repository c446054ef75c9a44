package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestFunctionsCLIWithoutAdminKeySaysHowToTurnItOn: against a server with
// no admin_key, and a config that has none either, `eddy functions`
// reports the server's admin_disabled error, which says what to set.
func TestFunctionsCLIWithoutAdminKeySaysHowToTurnItOn(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) { c.AdminKey = "" })
	cfg := filepath.Join(t.TempDir(), "eddy.yaml")
	yaml := fmt.Sprintf("secret: %q\napi_key: %q\n", servertest.Secret, servertest.APIKey)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDDY_ADMIN_KEY", "")
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"--config", cfg, "--server", s.Base, "functions", "list"})
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error()+out.String(), "admin_disabled") || !strings.Contains(err.Error()+out.String(), "set admin_key") {
		t.Fatalf("functions list without an admin key: %v\n%s\nwant the admin_disabled error saying to set admin_key", err, out.String())
	}
}
