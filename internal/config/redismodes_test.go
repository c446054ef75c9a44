package config

import (
	"strings"
	"testing"
	"time"
)

// Each bad combination of the Redis Cluster, Sentinel and WAIT settings is
// refused with a message naming the setting; good ones pass.
func TestRedisModes(t *testing.T) {
	base := func() Config {
		c := Default()
		c.Secret = strings.Repeat("s", 32)
		c.APIKey = "key"
		return c
	}
	for _, tc := range []struct {
		name, want string
		set        func(*Config)
	}{
		{"cluster without seeds", "redis_cluster: needs redis", func(c *Config) { c.RedisCluster = true }},
		{"cluster and sentinel", "redis_cluster and redis_sentinel_master", func(c *Config) {
			c.RedisCluster, c.Redis = true, []string{"redis://h:1"}
			c.RedisSentinelMaster, c.RedisSentinelAddrs = "m", []string{"h:26379"}
		}},
		{"sentinel without addrs", "redis_sentinel_master: needs redis_sentinel_addrs", func(c *Config) { c.RedisSentinelMaster = "m" }},
		{"sentinel addrs without master", "redis_sentinel_addrs: needs redis_sentinel_master", func(c *Config) { c.RedisSentinelAddrs = []string{"h:26379"} }},
		{"sentinel addr without port", "redis_sentinel_addrs: address 0", func(c *Config) {
			c.RedisSentinelMaster, c.RedisSentinelAddrs = "m", []string{"h"}
		}},
		{"sentinel with two redis URLs", "at most one URL", func(c *Config) {
			c.RedisSentinelMaster, c.RedisSentinelAddrs = "m", []string{"h:26379"}
			c.Redis = []string{"redis://a:1", "redis://b:1"}
		}},
		{"sentinel and nats", "nats and redis_sentinel_master", func(c *Config) {
			c.RedisSentinelMaster, c.RedisSentinelAddrs = "m", []string{"h:26379"}
			c.NATS = "nats://h:4222"
		}},
		{"negative wait", "redis_wait_replicas", func(c *Config) { c.RedisWaitReplicas = -1 }},
		{"zero wait timeout", "redis_wait_timeout", func(c *Config) { c.RedisWaitTimeout = 0 }},
		{"cluster", "", func(c *Config) { c.RedisCluster, c.Redis = true, []string{"redis://h:1"} }},
		{"sentinel", "", func(c *Config) {
			c.RedisSentinelMaster, c.RedisSentinelAddrs = "m", []string{"h:26379", "[::1]:26379"}
			c.RedisWaitReplicas, c.RedisWaitTimeout = 1, 500*time.Millisecond
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.set(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if tc.want == "" && !c.UsesRedis() {
				t.Fatal("UsesRedis is false")
			}
		})
	}
}
