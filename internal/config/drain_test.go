package config

import (
	"strings"
	"testing"
	"time"
)

// drain_duration is checked against shutdown_timeout: a drain that the
// shutdown deadline would cut short ends in the very wave it is meant to
// avoid, so it is refused with a message naming both settings.
func TestDrainDurationValidation(t *testing.T) {
	cases := []struct {
		name            string
		drain, shutdown time.Duration
		want            string // "" = valid
	}{
		{"default", Default().DrainDuration, Default().ShutdownTimeout, ""},
		{"off", 0, time.Second, ""},
		{"exactly the margin", 8 * time.Second, 10 * time.Second, ""},
		{"negative", -time.Second, 10 * time.Second, "drain_duration: must be 0"},
		{"too close to shutdown_timeout", 9 * time.Second, 10 * time.Second, "shutdown_timeout: must be at least drain_duration + 2s (11s), got 10s"},
		{"longer than shutdown_timeout", 30 * time.Second, 10 * time.Second, "shutdown_timeout: must be at least drain_duration"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			cfg.DrainDuration, cfg.ShutdownTimeout = c.drain, c.shutdown
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("drain %s, shutdown %s: %v", c.drain, c.shutdown, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("drain %s, shutdown %s: err = %v, want it to contain %q", c.drain, c.shutdown, err, c.want)
			}
		})
	}
}
