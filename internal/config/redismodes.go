package config

import (
	"errors"
	"fmt"
	"net"
)

// validateRedisModes checks the Redis Cluster, Sentinel and WAIT settings
// against each other and against redis and nats.
func (c *Config) validateRedisModes() error {
	sentinel := c.RedisSentinelMaster != "" || len(c.RedisSentinelAddrs) > 0
	switch {
	case c.RedisCluster && len(c.Redis) == 0:
		return errors.New("redis_cluster: needs redis to list at least one seed address of the cluster")
	case c.RedisCluster && sentinel:
		return errors.New("redis_cluster and redis_sentinel_master: choose one")
	case sentinel && c.RedisSentinelMaster == "":
		return errors.New("redis_sentinel_addrs: needs redis_sentinel_master (the master set's name)")
	case sentinel && len(c.RedisSentinelAddrs) == 0:
		return errors.New("redis_sentinel_master: needs redis_sentinel_addrs (host:port of each Sentinel)")
	case sentinel && len(c.Redis) > 1:
		return errors.New("redis_sentinel_master: redis may give at most one URL (the master's password and database)")
	case sentinel && c.NATS != "":
		return errors.New("nats and redis_sentinel_master: set one broker, not both")
	case c.RedisWaitReplicas < 0:
		return fmt.Errorf("redis_wait_replicas: must be 0 (off) or more, got %d", c.RedisWaitReplicas)
	case c.RedisWaitTimeout <= 0:
		return fmt.Errorf("redis_wait_timeout: must be positive, got %s", c.RedisWaitTimeout)
	}
	for i, a := range c.RedisSentinelAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("redis_sentinel_addrs: address %d (%q): write it as host:port: %w", i, a, err)
		}
	}
	return nil
}

// UsesRedis reports whether the node's broker is Redis (servers, a
// Cluster or a Sentinel-managed master).
func (c *Config) UsesRedis() bool { return len(c.Redis) > 0 || c.RedisSentinelMaster != "" }
