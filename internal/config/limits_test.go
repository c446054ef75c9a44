package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestLimitSettingsFromFileEnvAndFlags: every limit is a file key, an
// EDDY_* variable and a flag, and a negative one is refused by name.
func TestLimitSettingsFromFileEnvAndFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eddy.yaml")
	if err := os.WriteFile(path, []byte("max_connections: 7\nmax_history_bytes: 1000\nhttp_idle_timeout: 3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDDY_MAX_CONNECTIONS_PER_IP", "5")
	t.Setenv("EDDY_MAX_HISTORY_BYTES", "2048")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--max-connections-per-user", "3", "--publish-rate-per-user", "9", "--http-read-timeout", "4s"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConnections != 7 || c.MaxConnectionsPerIP != 5 || c.MaxConnectionsPerUser != 3 || c.PublishRatePerUser != 9 ||
		c.MaxHistoryBytes != 2048 || c.HTTPIdleTimeout != 3*time.Second || c.HTTPReadTimeout != 4*time.Second {
		t.Fatalf("loaded %+v", c)
	}
	d := Default()
	if d.MaxConnections != 100_000 || d.MaxHistoryBytes != 256<<20 || d.PublishRatePerUser != 1000 || d.HTTPIdleTimeout != time.Minute {
		t.Fatalf("defaults changed without docs/security.md: %+v", d)
	}
	for _, bad := range []struct {
		set  func(*Config)
		name string
	}{
		{func(c *Config) { c.MaxConnections = -1 }, "max_connections"},
		{func(c *Config) { c.MaxConnectionsPerIP = -1 }, "max_connections_per_ip"},
		{func(c *Config) { c.MaxConnectionsPerUser = -1 }, "max_connections_per_user"},
		{func(c *Config) { c.PublishRatePerUser = 0 }, "publish_rate_per_user"},
		{func(c *Config) { c.MaxHistoryBytes = -1 }, "max_history_bytes"},
		{func(c *Config) { c.HTTPIdleTimeout = 0 }, "http_idle_timeout"},
		{func(c *Config) { c.HTTPReadTimeout = 0 }, "http_read_timeout"},
	} {
		c := Default()
		bad.set(&c)
		if err := c.Validate(); err == nil || err.Error()[:len(bad.name)+1] != bad.name+":" {
			t.Errorf("%s: Validate() = %v, want an error naming it", bad.name, err)
		}
	}
}
