package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// crc16 is CRC-16/XMODEM, the hash of Redis Cluster key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is Redis Cluster's slot of key: the CRC16 of its hash tag (the
// part between the first { and the next }, when not empty) or of the key.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % 16384
}

// slotRange is one range of CLUSTER SLOTS and the servers of its shard.
type slotRange struct {
	lo, hi int
	shard  string // master, then replicas, as host:port
}

// shardOf is the shard serving slot in ranges, "" if none.
func shardOf(ranges []slotRange, slot int) string {
	for _, r := range ranges {
		if slot >= r.lo && slot <= r.hi {
			return r.shard
		}
	}
	return ""
}

// clusterSlots reads CLUSTER SLOTS from whichever node the client asks.
func clusterSlots(ctx context.Context, c rueidis.Client) ([]slotRange, error) {
	arr, err := c.Do(ctx, c.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return nil, err
	}
	out := make([]slotRange, 0, len(arr))
	for _, e := range arr {
		f, err := e.ToArray()
		if err != nil || len(f) < 3 {
			return nil, fmt.Errorf("cluster slots: bad entry: %v", err)
		}
		lo, err1 := f[0].AsInt64()
		hi, err2 := f[1].AsInt64()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("cluster slots: bad range")
		}
		var servers []string
		for _, n := range f[2:] {
			nf, err := n.ToArray()
			if err != nil || len(nf) < 2 {
				return nil, fmt.Errorf("cluster slots: bad node: %v", err)
			}
			host, _ := nf[0].ToString()
			port, _ := nf[1].AsInt64()
			servers = append(servers, host+":"+strconv.FormatInt(port, 10))
		}
		slices.Sort(servers[1:]) // replicas in any order
		out = append(out, slotRange{lo: int(lo), hi: int(hi), shard: strings.Join(servers, ",")})
	}
	return out, nil
}

// masterOf is the master (host:port) serving slot in ranges, "" if none.
func masterOf(ranges []slotRange, slot int) string {
	m, _, _ := strings.Cut(shardOf(ranges, slot), ",")
	return m
}

// topology returns the last slot map read, reading it now when there is
// none yet or fresh is set.
func (z *sharded) topology(ctx context.Context, c rueidis.Client, fresh bool) []slotRange {
	z.mu.Lock()
	ranges := z.slots
	z.mu.Unlock()
	if ranges != nil && !fresh {
		return ranges
	}
	rctx, cancel := context.WithTimeout(ctx, topologyRefresh)
	defer cancel()
	now, err := clusterSlots(rctx, c)
	if err != nil {
		return ranges
	}
	z.mu.Lock()
	z.slots = now
	z.mu.Unlock()
	return now
}

// watchTopology reads the cluster's slot map every topologyRefresh (every
// waitingRefresh while a subscription waits to be subscribed again) and
// moves every subscription that is not at its slot's master (as that map
// says) there; a subscription waiting between two attempts is woken when
// the map names another master than the one it last tried. Without that,
// a subscription lost with its master kept retrying the dead address with
// a growing backoff and reached the promoted replica up to seconds after
// publishes did: every message published there in between was missed
// live (the server resynchronises from history, but with the new epoch of
// a failover its subscribers only get recovered:false). Redis does not always tell a subscriber that it should
// move: a master killed and restarted rejoins believing it still serves
// its slots, and a replica accepts SSUBSCRIBE for its master's slots; both
// may later drop the subscription (when the node learns it is a replica,
// or resynchronises from its master) without a SUNSUBSCRIBE. Subscribing
// again at the master puts the subscription where messages are published,
// and the reconnect it counts makes the server resynchronise from history.
func (z *sharded) watchTopology(ctx context.Context) {
	t := time.NewTimer(topologyRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(z.refreshInterval())
		c, err := z.s.client()
		if err != nil {
			continue
		}
		now := z.topology(ctx, c, true)
		if now == nil {
			continue
		}
		var moved []*chanSub
		z.mu.Lock()
		for name, cs := range z.subs {
			m := masterOf(now, keySlot(name))
			switch {
			case m == "" || cs.addr == m:
			case cs.attempt != nil:
				moved = append(moved, cs)
			case !cs.stopping:
				// Waiting to try again, where it last failed: try the
				// new master now.
				select {
				case cs.wake <- struct{}{}:
				default:
				}
			}
		}
		z.mu.Unlock()
		for _, cs := range moved {
			z.again(cs)
		}
	}
}

// waitingRefresh is how often watchTopology reads the slot map while a
// subscription waits to be subscribed again: a promoted replica then gets
// its subscribers within this long, not a backoff later. One CLUSTER SLOTS
// per node per waitingRefresh, and only during an outage.
const waitingRefresh = 200 * time.Millisecond

// refreshInterval is watchTopology's next pause: waitingRefresh while a
// channel subscription is between two attempts, else topologyRefresh.
func (z *sharded) refreshInterval() time.Duration {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, cs := range z.subs {
		if cs.attempt == nil && !cs.stopping {
			return waitingRefresh
		}
	}
	return topologyRefresh
}

// again ends cs's current subscription attempt so that its goroutine
// subscribes anew at the slot's master.
func (z *sharded) again(cs *chanSub) {
	z.mu.Lock()
	cancel, addr := cs.attempt, cs.addr
	z.mu.Unlock()
	if cancel != nil {
		z.b.log.Info("redis cluster channel not subscribed at its master; subscribing again", "channel", cs.name, "at", addr)
		cancel()
	}
}
