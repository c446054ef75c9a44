// Package capacity turns a workload into Eddy nodes, Redis shards and
// bandwidth by arithmetic on measured unit costs, and records each step so
// the reader can check it. It is pure and deterministic: no clock, no I/O.
package capacity

import (
	"errors"
	"fmt"
	"math"
)

// Workload is what the deployment must carry at its peak.
type Workload struct {
	Connections           float64 // concurrent WebSocket connections
	Channels              float64 // channels with subscribers
	SubscribersPerChannel float64 // average subscribers per channel
	PublishesPerSec       float64 // publishes per second over all channels (HTTP API)
	MessageBytes          float64 // JSON payload (data) size
	HistorySize           float64 // entries kept per channel (0: none)
	ConnectsPerSec        float64 // new connections per second (churn, or a reconnect wave)
	Presence              bool    // presence on every channel
	JoinLeave             bool    // join/leave events sent to members (needs Presence)
	JoinsPerSec           float64 // presence joins per second over all channels
	LeavesPerSec          float64 // presence leaves per second (in a steady state, equal to joins)
}

// Machine describes one Eddy node and one Redis shard.
type Machine struct {
	NodeCores     float64 // cores per node
	NodeMemGiB    float64 // memory per node
	NodeNICGbps   float64 // network per node
	TargetUtil    float64 // fraction of each resource planned for (headroom for spikes and failover)
	RedisMemGiB   float64 // memory per Redis shard
	RedisNICGbps  float64 // network per Redis shard
	RedisCPUCores float64 // Redis runs commands on one core; I/O threads do not change that
}

// DefaultMachine is a 2-core node like the one the costs were measured on.
func DefaultMachine() Machine {
	return Machine{NodeCores: 2, NodeMemGiB: 4, NodeNICGbps: 10, TargetUtil: 0.7,
		RedisMemGiB: 8, RedisNICGbps: 10, RedisCPUCores: 1}
}

// Step is one line of arithmetic.
type Step struct {
	Section string
	Text    string // the expression with its result
}

// Plan is the answer and how it was reached.
type Plan struct {
	Nodes          int
	NodesByCPU     int
	NodesByMemory  int
	NodesByNetwork int
	NodeCPU        float64 // CPU-s/s over all nodes
	NodeMemGiB     float64 // over all nodes
	NodeOutGbps    float64 // to clients, over all nodes
	NodesPerChan   float64 // nodes holding subscribers of one channel
	RedisCPU       float64 // CPU-s/s over all shards
	RedisMemGiB    float64
	RedisOutGbps   float64 // Redis to nodes
	RedisInGbps    float64 // nodes to Redis
	RedisShards    int
	HotChannelCPU  float64 // Redis CPU-s/s one channel needs (cannot be split over shards)
	Bottleneck     string
	Steps          []Step
}

// Validate names the first field that makes no sense.
func (w Workload) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"connections", w.Connections}, {"channels", w.Channels},
		{"subscribers per channel", w.SubscribersPerChannel}, {"publishes/s", w.PublishesPerSec},
		{"message bytes", w.MessageBytes}, {"history", w.HistorySize},
		{"connects/s", w.ConnectsPerSec}, {"joins/s", w.JoinsPerSec}, {"leaves/s", w.LeavesPerSec},
	} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("capacity: %s must be a finite number ≥ 0, got %v", f.name, f.v)
		}
	}
	if w.Connections == 0 {
		return errors.New("capacity: connections must be > 0")
	}
	if w.Channels == 0 || w.SubscribersPerChannel == 0 {
		return errors.New("capacity: channels and subscribers per channel must be > 0")
	}
	if w.JoinLeave && !w.Presence {
		return errors.New("capacity: join/leave events need presence on")
	}
	if !w.Presence && (w.JoinsPerSec > 0 || w.LeavesPerSec > 0) {
		return errors.New("capacity: joins/s and leaves/s need presence on")
	}
	return nil
}

// Validate names the first machine figure that makes no sense.
func (m Machine) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"node cores", m.NodeCores}, {"node memory", m.NodeMemGiB}, {"node network", m.NodeNICGbps},
		{"Redis memory", m.RedisMemGiB}, {"Redis network", m.RedisNICGbps}, {"Redis cores", m.RedisCPUCores},
	} {
		if !(f.v > 0) || math.IsInf(f.v, 0) {
			return fmt.Errorf("capacity: %s must be > 0, got %v", f.name, f.v)
		}
	}
	if !(m.TargetUtil > 0 && m.TargetUtil <= 1) {
		return fmt.Errorf("capacity: target utilisation must be in (0, 1], got %v", m.TargetUtil)
	}
	return nil
}

// NodesPerChannel is how many of n nodes hold at least one of s
// subscribers placed at random (a load balancer that ignores channels):
// n × (1 − (1 − 1/n)^s). Each of them receives every message of the
// channel from Redis.
func NodesPerChannel(n int, s float64) float64 {
	if n <= 1 {
		return 1
	}
	return float64(n) * (1 - math.Pow(1-1/float64(n), s))
}

// Compute plans for w on m with costs c.
func Compute(w Workload, m Machine, c Costs) (Plan, error) {
	if err := w.Validate(); err != nil {
		return Plan{}, err
	}
	if err := m.Validate(); err != nil {
		return Plan{}, err
	}
	// Node count and ingress depend on each other: more nodes, more nodes
	// per channel, more messages from Redis. Start from one node and
	// iterate to the fixed point (the count only grows, so it stops).
	n := 1
	var p Plan
	for i := 0; i < 100; i++ {
		p = plan(w, m, c, n)
		if p.Nodes <= n {
			break
		}
		n = p.Nodes
	}
	return p, nil
}

// plan does the arithmetic for a deployment of n nodes.
func plan(w Workload, m Machine, c Costs, n int) Plan {
	var p Plan
	s := func(section, format string, a ...any) {
		p.Steps = append(p.Steps, Step{section, fmt.Sprintf(format, a...)})
	}
	cluster := n > 1

	// Traffic.
	deliveries := w.PublishesPerSec * w.SubscribersPerChannel
	subsPerConn := w.Channels * w.SubscribersPerChannel / w.Connections
	members := 0.0
	if w.Presence {
		members = w.Channels * w.SubscribersPerChannel
	}
	events := 0.0
	if w.JoinLeave {
		events = (w.JoinsPerSec + w.LeavesPerSec) * w.SubscribersPerChannel
	}
	s("traffic", "deliveries/s = publishes/s %s × subscribers per channel %s = %s", num(w.PublishesPerSec), num(w.SubscribersPerChannel), num(deliveries))
	s("traffic", "subscriptions per connection = channels %s × subscribers %s / connections %s = %s", num(w.Channels), num(w.SubscribersPerChannel), num(w.Connections), dec(subsPerConn))
	if w.JoinLeave {
		s("traffic", "presence events/s = (joins/s %s + leaves/s %s) × members per channel %s = %s", num(w.JoinsPerSec), num(w.LeavesPerSec), num(w.SubscribersPerChannel), num(events))
	}
	p.NodesPerChan = 1
	if cluster {
		p.NodesPerChan = NodesPerChannel(n, w.SubscribersPerChannel)
		s("traffic", "nodes per channel = %d × (1 − (1 − 1/%d)^%s) = %s (subscribers land on nodes at random)", n, n, num(w.SubscribersPerChannel), dec(p.NodesPerChan))
	}

	// Node CPU.
	cpu := func(label string, rate, us float64) float64 {
		v := rate * us / 1e6
		if rate > 0 {
			s("node CPU", "%s %s/s × %s µs = %s CPU-s/s", label, num(rate), dec(us), dec(v))
		}
		return v
	}
	p.NodeCPU = cpu("deliveries", deliveries, c.DeliveryCPU) +
		cpu("publishes", w.PublishesPerSec, c.PublishCPU) +
		cpu("connects", w.ConnectsPerSec, c.ConnectCPU) +
		cpu("presence events", events, c.PresenceEventCPU)
	if cluster {
		p.NodeCPU += cpu("messages from Redis", w.PublishesPerSec*p.NodesPerChan, c.IngressCPU)
	}
	perNodeCPU := m.NodeCores * m.TargetUtil
	p.NodesByCPU = ceil(p.NodeCPU / perNodeCPU)
	s("node CPU", "total %s CPU-s/s / (%s cores × %s target) = %d nodes", dec(p.NodeCPU), dec(m.NodeCores), pct(m.TargetUtil), p.NodesByCPU)

	// Node memory.
	connKiB := c.ConnKiB + c.KernelSocketKiB + math.Max(subsPerConn-1, 0)*c.SubscriptionKiB
	p.NodeMemGiB = w.Connections * connKiB / (1 << 20)
	s("node memory", "per connection %s KiB RSS + %s KiB kernel + %s extra subscriptions × %s KiB = %s KiB", dec(c.ConnKiB), dec(c.KernelSocketKiB), dec(math.Max(subsPerConn-1, 0)), dec(c.SubscriptionKiB), dec(connKiB))
	s("node memory", "connections %s × %s KiB = %s GiB", num(w.Connections), dec(connKiB), dec(p.NodeMemGiB))
	usable := m.NodeMemGiB*m.TargetUtil - c.NodeBaseMiB/1024
	p.NodesByMemory = ceil(p.NodeMemGiB / usable)
	s("node memory", "%s GiB / (%s GiB × %s − %s MiB base) = %d nodes", dec(p.NodeMemGiB), dec(m.NodeMemGiB), pct(m.TargetUtil), dec(c.NodeBaseMiB), p.NodesByMemory)

	// Node network (to clients).
	msgBytes := w.MessageBytes + c.EnvelopeBytes + c.WSHeaderBytes
	out := deliveries*msgBytes + events*(c.PresenceEvBytes+c.WSHeaderBytes)
	p.NodeOutGbps = out * 8 / 1e9
	s("node network", "deliveries %s/s × (%s + %s envelope + %s header) B + events %s/s × %s B = %s Gbit/s", num(deliveries), num(w.MessageBytes), num(c.EnvelopeBytes), num(c.WSHeaderBytes), num(events), num(c.PresenceEvBytes+c.WSHeaderBytes), dec(p.NodeOutGbps))
	p.NodesByNetwork = ceil(p.NodeOutGbps / (m.NodeNICGbps * m.TargetUtil))
	s("node network", "%s Gbit/s / (%s Gbit/s × %s) = %d nodes", dec(p.NodeOutGbps), dec(m.NodeNICGbps), pct(m.TargetUtil), p.NodesByNetwork)

	p.Nodes = max(p.NodesByCPU, p.NodesByMemory, p.NodesByNetwork, 1)
	s("nodes", "nodes = max(CPU %d, memory %d, network %d) = %d", p.NodesByCPU, p.NodesByMemory, p.NodesByNetwork, p.Nodes)

	if !cluster && p.Nodes == 1 {
		s("redis", "one node: the memory broker is enough, no Redis")
		p.Bottleneck = bottleneck(p, m, c, w)
		return p
	}
	if !cluster {
		// The caller iterates with the node count found; the Redis part is
		// computed on that pass.
		return p
	}

	// Redis CPU.
	rcpu := func(label string, rate, us float64) float64 {
		v := rate * us / 1e6
		if rate > 0 {
			s("Redis CPU", "%s %s/s × %s µs = %s CPU-s/s", label, num(rate), dec(us), dec(v))
		}
		return v
	}
	pubUS := c.RedisPublishCPU + (p.NodesPerChan-1)*c.RedisPerNodeCPU
	if w.HistorySize > 0 {
		pubUS += c.RedisHistoryCPU
	}
	s("Redis CPU", "per publish %s µs + (%s nodes − 1) × %s µs%s = %s µs", dec(c.RedisPublishCPU), dec(p.NodesPerChan), dec(c.RedisPerNodeCPU), ifs(w.HistorySize > 0, fmt.Sprintf(" + history %s µs", dec(c.RedisHistoryCPU))), dec(pubUS))
	p.RedisCPU = rcpu("publishes", w.PublishesPerSec, pubUS) +
		rcpu("subscribes", w.ConnectsPerSec*subsPerConn, c.RedisSubscribeCPU)
	if w.Presence {
		p.RedisCPU += rcpu("presence joins (with their leaves)", math.Max(w.JoinsPerSec, w.LeavesPerSec), c.RedisJoinCPU) +
			rcpu("member refreshes", members/c.PresenceRefreshEvery, c.RedisRefreshCPU)
	}
	perChanRate := w.PublishesPerSec / w.Channels
	p.HotChannelCPU = (perChanRate*pubUS + w.ConnectsPerSec*subsPerConn/w.Channels*c.RedisSubscribeCPU) / 1e6
	if w.Presence {
		p.HotChannelCPU += (math.Max(w.JoinsPerSec, w.LeavesPerSec)*c.RedisJoinCPU + w.SubscribersPerChannel/c.PresenceRefreshEvery*c.RedisRefreshCPU) / w.Channels / 1e6
	}
	s("Redis CPU", "one channel (all its keys share a hash slot, so one shard): %s CPU-s/s", dec(p.HotChannelCPU))

	// Redis memory.
	histBytes := w.Channels * w.HistorySize * (c.HistoryEntryBytes + w.MessageBytes)
	metaBytes := w.Channels * c.ChannelMetaBytes
	presBytes := members * c.PresenceMemBytes
	p.RedisMemGiB = (histBytes + metaBytes + presBytes) / (1 << 30)
	s("Redis memory", "history %s ch × %s entries × (%s + %s) B + meta %s ch × %s B + presence %s members × %s B = %s GiB",
		num(w.Channels), num(w.HistorySize), num(c.HistoryEntryBytes), num(w.MessageBytes),
		num(w.Channels), num(c.ChannelMetaBytes), num(members), num(c.PresenceMemBytes), dec(p.RedisMemGiB))

	// Redis network.
	p.RedisInGbps = w.PublishesPerSec * (w.MessageBytes + c.RedisPubOverhead) * 8 / 1e9
	p.RedisOutGbps = w.PublishesPerSec * p.NodesPerChan * (w.MessageBytes + c.RedisMsgOverhead) * 8 / 1e9
	s("Redis network", "in: publishes %s/s × (%s + %s) B = %s Gbit/s; out: %s/s × %s nodes × (%s + %s) B = %s Gbit/s",
		num(w.PublishesPerSec), num(w.MessageBytes), num(c.RedisPubOverhead), dec(p.RedisInGbps),
		num(w.PublishesPerSec), dec(p.NodesPerChan), num(w.MessageBytes), num(c.RedisMsgOverhead), dec(p.RedisOutGbps))

	byCPU := ceil(p.RedisCPU / (m.RedisCPUCores * m.TargetUtil))
	byMem := ceil(p.RedisMemGiB / (m.RedisMemGiB * m.TargetUtil))
	byNet := ceil(math.Max(p.RedisInGbps, p.RedisOutGbps) / (m.RedisNICGbps * m.TargetUtil))
	p.RedisShards = max(byCPU, byMem, byNet, 1)
	s("Redis shards", "shards = max(CPU %s / (%s core × %s) = %d, memory %s / (%s GiB × %s) = %d, network %d) = %d",
		dec(p.RedisCPU), dec(m.RedisCPUCores), pct(m.TargetUtil), byCPU, dec(p.RedisMemGiB), dec(m.RedisMemGiB), pct(m.TargetUtil), byMem, byNet, p.RedisShards)
	p.Bottleneck = bottleneck(p, m, c, w)
	return p
}

// bottleneck names the resource closest to its limit, and a channel that
// no number of shards can help.
func bottleneck(p Plan, m Machine, c Costs, w Workload) string {
	if p.HotChannelCPU > m.RedisCPUCores*m.TargetUtil {
		return fmt.Sprintf("one channel needs %s Redis CPU-s/s, more than one shard gives (%s): split the channel", dec(p.HotChannelCPU), dec(m.RedisCPUCores*m.TargetUtil))
	}
	switch p.Nodes {
	case p.NodesByCPU:
		return "node CPU"
	case p.NodesByMemory:
		return "node memory"
	default:
		return "node network"
	}
}

func ceil(v float64) int { return int(math.Ceil(v - 1e-9)) }

func ifs(c bool, s string) string {
	if c {
		return s
	}
	return ""
}
