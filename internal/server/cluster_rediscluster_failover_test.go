package server_test

import (
	"fmt"
	"testing"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
)

// TestRedisClusterMasterKilled: a master is SIGKILLed while a node
// publishes (redis_wait_replicas 1) to a channel it serves and a client on
// another node listens; its replica takes over, the killed node returns as
// the new master's replica, publishes flow again, the client keeps its
// WebSocket and ends with every acknowledged message.
func TestRedisClusterMasterKilled(t *testing.T) {
	rc := redistest.StartCluster(t, 3, 1)
	nodes := redisClusterNodes(t, rc, 2, func(c *config.Config) { c.RedisWaitReplicas = 1 })
	masters, err := rc.Topology()
	if err != nil {
		t.Fatal(err)
	}
	victim := masters[0]
	var channel string
	for i := 0; channel == ""; i++ {
		if ch := fmt.Sprintf("feed:failover-%d", i); victim.Owns(rc.Slot("{" + ch + "}")) {
			channel = ch
		}
	}
	failoverRun(t, nodes[0], nodes[1], channel, func() {
		victim.Server.Stop()
		promoted := rc.AwaitFailover(victim)
		victim.Server.Restart()
		rc.AwaitReplicas(promoted.Addr, 1)
	})
}
