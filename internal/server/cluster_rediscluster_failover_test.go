//go:build rediscluster_failover

package server_test

import (
	"fmt"
	"testing"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
)

// Run with: go test -race -tags rediscluster_failover -run TestRedisClusterMasterKilled ./internal/server/
//
// KNOWN FAILING, about half the runs under -race on this machine (so it is
// kept out of the default suite, deliberately and visibly): after the
// failover the subscriber's node is confirmed subscribed at the promoted
// master (SSUBSCRIBE confirmed there, PUBSUB SHARDNUMSUB 1 on it), the
// rueidis connection's reader is alive and idle, publishes through the
// other node are acknowledged and in history, yet no message reaches the
// subscribing node any more. A redis-cli subscriber at a promoted master
// does receive SPUBLISH (checked by hand), and the broker-level
// TestRedisClusterFailover (internal/broker/redis) passes. Not diagnosed.

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
