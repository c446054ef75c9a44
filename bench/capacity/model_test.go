package capacity

import (
	"math"
	"strings"
	"testing"
)

// million is the worked example of docs/capacity.md: 1 M connections, 1 M
// deliveries/s (10,000 channels × 100 subscribers, 10,000 publishes/s).
func million() Workload {
	return Workload{Connections: 1_000_000, Channels: 10_000, SubscribersPerChannel: 100,
		PublishesPerSec: 10_000, MessageBytes: 100, ConnectsPerSec: 300}
}

func mustCompute(t *testing.T, w Workload, m Machine) Plan {
	t.Helper()
	p, err := Compute(w, m, DefaultCosts())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMillionConnectionsExampleMatchesDoc(t *testing.T) {
	p := mustCompute(t, million(), DefaultMachine())
	// The figures docs/capacity.md states for this workload.
	if p.Nodes != 4 || p.NodesByCPU != 3 || p.NodesByMemory != 4 || p.RedisShards != 1 || p.Bottleneck != "node memory" {
		t.Fatalf("got %d nodes (CPU %d, memory %d), %d shards, bottleneck %q; docs/capacity.md says 4 (3, 4), 1, node memory",
			p.Nodes, p.NodesByCPU, p.NodesByMemory, p.RedisShards, p.Bottleneck)
	}
	deliveries := million().PublishesPerSec * million().SubscribersPerChannel
	if deliveries != 1_000_000 {
		t.Fatalf("the example is meant to deliver 1 M/s, got %v", deliveries)
	}
}

func TestReportShowsEachStep(t *testing.T) {
	w := million()
	m := DefaultMachine()
	out := Report(w, m, mustCompute(t, w, m))
	for _, want := range []string{
		"deliveries/s = publishes/s 10,000 × subscribers per channel 100 = 1,000,000",
		"deliveries 1,000,000/s × 2 µs = 2 CPU-s/s",
		"total 3.74 CPU-s/s / (2 cores × 70% target) = 3 nodes",
		"per connection 5.8 KiB RSS + 4.7 KiB kernel + 0 extra subscriptions × 0.5 KiB = 10.5 KiB",
		"connections 1,000,000 × 10.5 KiB = 10.01 GiB",
		"nodes = max(CPU 3, memory 4, network 1) = 4",
		"publishes 10,000/s × 39.2 µs = 0.392 CPU-s/s",
		"result: 4 Eddy nodes, 1 Redis shards",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if again := Report(w, m, mustCompute(t, w, m)); again != out {
		t.Fatal("two runs over the same input printed different reports")
	}
}

func TestDoublingPublishesDoublesRedisLoad(t *testing.T) {
	w := million()
	w.ConnectsPerSec = 0 // only publishes load Redis
	m := DefaultMachine()
	m.NodeMemGiB = 1 // many nodes, so the plan is a cluster at both rates
	one := mustCompute(t, w, m)
	w.PublishesPerSec *= 2
	two := mustCompute(t, w, m)
	if one.Nodes < 2 || one.NodesPerChan != two.NodesPerChan {
		t.Fatalf("want the same cluster at both rates: %d nodes, %v and %v nodes per channel", one.Nodes, one.NodesPerChan, two.NodesPerChan)
	}
	if !near(two.RedisCPU, 2*one.RedisCPU) || !near(two.RedisInGbps, 2*one.RedisInGbps) || !near(two.RedisOutGbps, 2*one.RedisOutGbps) {
		t.Fatalf("Redis CPU %v → %v, in %v → %v, out %v → %v: want each doubled",
			one.RedisCPU, two.RedisCPU, one.RedisInGbps, two.RedisInGbps, one.RedisOutGbps, two.RedisOutGbps)
	}
}

func TestPresenceAddsItsCosts(t *testing.T) {
	c := DefaultCosts()
	w := million()
	m := DefaultMachine()
	off := mustCompute(t, w, m)
	w.Presence, w.JoinLeave, w.JoinsPerSec, w.LeavesPerSec = true, true, 100, 100
	on := mustCompute(t, w, m)
	members := w.Channels * w.SubscribersPerChannel
	wantRedis := 100*c.RedisJoinCPU/1e6 + members/c.PresenceRefreshEvery*c.RedisRefreshCPU/1e6
	if !near(on.RedisCPU-off.RedisCPU, wantRedis) {
		t.Fatalf("presence added %v Redis CPU-s/s, want joins + refreshes = %v", on.RedisCPU-off.RedisCPU, wantRedis)
	}
	events := 200 * w.SubscribersPerChannel
	if on.NodesPerChan != off.NodesPerChan {
		t.Fatalf("node count changed (%d → %d); pick a workload where it does not", off.Nodes, on.Nodes)
	}
	if !near(on.NodeCPU-off.NodeCPU, events*c.PresenceEventCPU/1e6) {
		t.Fatalf("presence added %v node CPU-s/s, want %v", on.NodeCPU-off.NodeCPU, events*c.PresenceEventCPU/1e6)
	}
	wantMem := members * c.PresenceMemBytes / (1 << 30)
	if !near(on.RedisMemGiB-off.RedisMemGiB, wantMem) {
		t.Fatalf("presence added %v GiB to Redis, want %v", on.RedisMemGiB-off.RedisMemGiB, wantMem)
	}
}

func TestHotChannelBeyondOneShardIsTheBottleneck(t *testing.T) {
	// One channel taking 100,000 publishes/s cannot be spread: its keys
	// share a hash slot.
	w := Workload{Connections: 100_000, Channels: 1, SubscribersPerChannel: 100_000, PublishesPerSec: 100_000, MessageBytes: 100}
	p := mustCompute(t, w, DefaultMachine())
	if !strings.Contains(p.Bottleneck, "one channel needs") {
		t.Fatalf("bottleneck %q, want the hot channel named", p.Bottleneck)
	}
}

func TestOneSmallNodeNeedsNoRedis(t *testing.T) {
	p := mustCompute(t, Workload{Connections: 1000, Channels: 10, SubscribersPerChannel: 100, PublishesPerSec: 10, MessageBytes: 100}, DefaultMachine())
	if p.Nodes != 1 || p.RedisShards != 0 || p.RedisCPU != 0 {
		t.Fatalf("got %d nodes, %d shards, Redis CPU %v; want one node on the memory broker", p.Nodes, p.RedisShards, p.RedisCPU)
	}
}

func TestBiggerNodesNeedFewer(t *testing.T) {
	small := mustCompute(t, million(), DefaultMachine())
	m := DefaultMachine()
	m.NodeCores, m.NodeMemGiB = 8, 32
	big := mustCompute(t, million(), m)
	if big.Nodes >= small.Nodes {
		t.Fatalf("8-core 32 GiB nodes: %d, 2-core 4 GiB: %d; want fewer", big.Nodes, small.Nodes)
	}
}

func TestNodesPerChannel(t *testing.T) {
	for _, c := range []struct {
		n    int
		s    float64
		want float64
	}{
		{1, 1000, 1}, {10, 1, 1}, {2, 2, 1.5}, {100, 1e6, 100},
	} {
		if got := NodesPerChannel(c.n, c.s); !near(got, c.want) {
			t.Errorf("NodesPerChannel(%d, %v) = %v, want %v", c.n, c.s, got, c.want)
		}
	}
}

func TestBadInputIsNamed(t *testing.T) {
	for name, c := range map[string]struct {
		w    Workload
		m    Machine
		want string
	}{
		"negative":      {Workload{Connections: 1, Channels: 1, SubscribersPerChannel: 1, PublishesPerSec: -1}, DefaultMachine(), "publishes/s"},
		"no conns":      {Workload{Channels: 1, SubscribersPerChannel: 1}, DefaultMachine(), "connections"},
		"NaN":           {Workload{Connections: 1, Channels: 1, SubscribersPerChannel: 1, MessageBytes: math.NaN()}, DefaultMachine(), "message bytes"},
		"join w/o pres": {Workload{Connections: 1, Channels: 1, SubscribersPerChannel: 1, JoinLeave: true}, DefaultMachine(), "presence"},
		"zero cores":    {million(), Machine{NodeMemGiB: 1, NodeNICGbps: 1, TargetUtil: 0.5, RedisMemGiB: 1, RedisNICGbps: 1, RedisCPUCores: 1}, "node cores"},
		"util > 1":      {million(), func() Machine { m := DefaultMachine(); m.TargetUtil = 2; return m }(), "target utilisation"},
	} {
		if _, err := Compute(c.w, c.m, DefaultCosts()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", name, err, c.want)
		}
	}
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}
