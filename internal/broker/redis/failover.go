package redis

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// topologyRefresh is how often the client asks a Redis Cluster for its
// slot map, or the Sentinels for the master, besides reacting to MOVED
// replies, lost connections and Sentinel's +switch-master: a missed event
// then costs at most this long.
const topologyRefresh = 2 * time.Second

// failoverShard sets the broker up for a Redis Cluster (Options.Cluster) or
// a Sentinel-managed master (Options.SentinelMaster): one shard whose
// client follows the topology, with the scripts checking for a takeover
// (takeoverLua).
//
// In a Cluster the keys of a channel share the hash tag {channel} as in
// single-server mode (the layout is unchanged), the channel's pub/sub
// channel gets the same tag, and the node registry's two keys share the
// tag {nodes}, so every script touches one slot.
func (b *Broker) failoverShard() error {
	o := b.opts
	if o.Cluster && o.SentinelMaster != "" {
		return errors.New("redis broker: Cluster and SentinelMaster: choose one")
	}
	if o.Cluster && len(o.Addrs) == 0 {
		return errors.New("redis broker: Cluster needs at least one seed address")
	}
	var copt rueidis.ClientOption
	if len(o.Addrs) > 0 {
		var err error
		if copt, err = rueidis.ParseURL(o.Addrs[0]); err != nil {
			return fmt.Errorf("redis broker: address 0: %w", err)
		}
	}
	var name string
	if o.Cluster {
		// A hash tag in the prefix would pull every channel into one slot.
		if strings.ContainsAny(o.Prefix, "{}") {
			return fmt.Errorf("redis broker: prefix %q: no braces in Redis Cluster (they are hash tags)", o.Prefix)
		}
		copt.InitAddress = nil
		for i, a := range o.Addrs {
			u, err := rueidis.ParseURL(a)
			if err != nil {
				return fmt.Errorf("redis broker: address %d: %w", i, err)
			}
			if u.SelectDB != 0 {
				return fmt.Errorf("redis broker: address %d: Redis Cluster has only database 0, not %d", i, u.SelectDB)
			}
			copt.InitAddress = append(copt.InitAddress, u.InitAddress...)
		}
		copt.ClusterOption.ShardsRefreshInterval = topologyRefresh
		b.pubCmd = "spublish"
		b.chanPrefix += "{"
		b.chanSuffix = "}"
		b.nodesKey = o.Prefix + ":{nodes}"
		b.nodesExp = o.Prefix + ":{nodes}:exp"
		b.cluster = &sharded{b: b, subs: make(map[string]*chanSub)}
		shown := make([]string, len(o.Addrs))
		for i, a := range o.Addrs {
			shown[i] = redactURL(a)
		}
		name = "cluster " + strings.Join(shown, ",")
	} else {
		if len(o.SentinelAddrs) == 0 {
			return errors.New("redis broker: SentinelMaster needs SentinelAddrs")
		}
		copt.InitAddress = append([]string(nil), o.SentinelAddrs...)
		copt.Sentinel.MasterSet = o.SentinelMaster
		copt.Sentinel.TopologyRefreshInterval = topologyRefresh
		copt.Sentinel.Username, copt.Sentinel.Password = "", ""
		name = "sentinel " + o.SentinelMaster + "@" + strings.Join(o.SentinelAddrs, ",")
	}
	copt.ForceSingleClient = false
	copt.DisableCache = true
	copt.DisableRetry = true // as in New: a publish is never retried behind the caller's back
	if copt.ClientName == "" {
		copt.ClientName = "eddy-" + o.NodeID
	}
	b.takeover = "1"
	s := &shard{b: b, opt: copt, name: name, wanted: make(map[string]struct{}), kick: make(chan struct{}, 1)}
	if b.cluster == nil {
		// Sentinel: the usual pub/sub connection, to whichever server is master.
		s.wanted[b.ctlChannel] = struct{}{}
	} else {
		b.cluster.s = s
	}
	b.shards = []*shard{s}
	return nil
}
