package redis

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestKeySlotMatchesRedis(t *testing.T) {
	// The test vector of the Redis Cluster specification.
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16 = %#x", got)
	}
	if keySlot("eddy:m:{chat:a}") != keySlot("chat:a") {
		t.Fatal("hash tag ignored")
	}
}

// realisticChannels are n channel names as applications make them: rooms
// numbered in sequence, users by numeric id and by UUID, documents by
// short ids, namespaced tenants.
func realisticChannels(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, 0, n)
	for i := range n {
		switch i % 5 {
		case 0:
			out = append(out, fmt.Sprintf("chat:room-%d", i/5))
		case 1:
			out = append(out, fmt.Sprintf("user:%d", 1000+i/5))
		case 2:
			out = append(out, fmt.Sprintf("user:%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xfff, r.Uint64()&0xffffffffffff))
		case 3:
			out = append(out, fmt.Sprintf("doc:%s", strconvBase36(r.Uint64()>>24)))
		default:
			out = append(out, fmt.Sprintf("org-%d:team-%d", i/50, i/5%10))
		}
	}
	return out
}

func strconvBase36(v uint64) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b []byte
	for v > 0 {
		b = append([]byte{digits[v%36]}, b...)
		v /= 36
	}
	return string(b)
}

// spread counts keys per master, given their slots, when the 16384 slots
// are split evenly into masters contiguous ranges (as redis-cli --cluster
// create does) and returns the busiest master's count over the mean, and
// how many masters got nothing.
func spread(slots []int, masters int) (maxOverMean float64, idle int) {
	per := make([]int, masters)
	for _, s := range slots {
		per[s*masters/16384]++
	}
	most := 0
	for _, n := range per {
		most = max(most, n)
		if n == 0 {
			idle++
		}
	}
	return float64(most) / (float64(len(slots)) / float64(masters)), idle
}

// TestChannelSlotSpread measures how channels spread over masters with
// Eddy's hash tag (the whole channel name: each channel its own slot) and,
// for comparison, with a fixed set of partition tags {0}..{31} (the scheme
// of centrifugal/centrifuge#554, where half of a 16-master cluster idled).
// docs/cluster.md quotes the table it logs.
func TestChannelSlotSpread(t *testing.T) {
	b := &Broker{opts: Options{Prefix: "eddy"}, chanPrefix: "eddy:c:{", chanSuffix: "}"}
	t.Logf("%-8s %-8s %-26s %-26s", "masters", "channels", "channel tag: max/mean idle", "32 partitions: max/mean idle")
	type sample struct{ keys, parts []int }
	samples := map[int]sample{}
	for _, n := range []int{1000, 100000} {
		var sm sample
		for i, ch := range realisticChannels(n) {
			sm.keys = append(sm.keys, keySlot(b.metaKey(ch)))
			sm.parts = append(sm.parts, keySlot(fmt.Sprintf("eddy{%d}.%s", i%32, ch)))
		}
		samples[n] = sm
	}
	for _, masters := range []int{3, 8, 16, 32, 64} {
		for _, n := range []int{1000, 100000} {
			m, idle := spread(samples[n].keys, masters)
			pm, pidle := spread(samples[n].parts, masters)
			t.Logf("%-8d %-8d %-26s %-26s", masters, n, fmt.Sprintf("%.2f %d", m, idle), fmt.Sprintf("%.2f %d", pm, pidle))
			if n == 100000 && (m > 1.1 || idle > 0) {
				t.Fatalf("%d channels over %d masters: busiest master %.2f× the mean, %d idle", n, masters, m, idle)
			}
			if n == 1000 && masters <= 16 && (m > 1.5 || idle > 0) {
				t.Fatalf("%d channels over %d masters: busiest master %.2f× the mean, %d idle", n, masters, m, idle)
			}
		}
	}
}
