package config

import (
	"strings"
	"testing"
)

// The nats setting is checked when loaded: a usable URL, and not together
// with redis.
func TestNATSSetting(t *testing.T) {
	c, err := Load(writeConfig(t, "nats: nats://127.0.0.1:4222,nats://127.0.0.2:4222\n"), nil)
	if err != nil || c.NATS != "nats://127.0.0.1:4222,nats://127.0.0.2:4222" {
		t.Fatalf("valid nats setting: %+v, %v", c.NATS, err)
	}
	cases := []struct{ name, body, want string }{
		{"scheme", "nats: http://127.0.0.1:4222\n", "nats: \"http://127.0.0.1:4222\": must start with nats://"},
		{"no host", "nats: nats://\n", "has no host"},
		{"both brokers", "nats: nats://127.0.0.1:4222\nredis: [redis://127.0.0.1:6379]\n", "set one broker, not both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, c.body), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}
