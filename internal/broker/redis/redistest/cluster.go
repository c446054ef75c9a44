package redistest

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of redis-server processes on free local
// ports, created with redis-cli --cluster create, stopped when the test
// ends. Its failure detection is fast (cluster-node-timeout 1 s) and a
// replica always tries to take over (cluster-replica-validity-factor 0),
// so that a test can kill a master and await the promotion.
type Cluster struct {
	tb    testing.TB
	Nodes []*Server
}

// StartCluster creates a cluster of masters, each with replicas replicas.
// It returns once every node sees every slot served (cluster_state:ok) and
// every master has its replicas.
func StartCluster(tb testing.TB, masters, replicas int) *Cluster {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Fatalf("redistest: redis-cli is not on PATH (%v); install it, e.g. apt-get install -y redis-tools", err)
	}
	c := &Cluster{tb: tb}
	c.Nodes = make([]*Server, masters*(1+replicas))
	for i := range c.Nodes {
		c.Nodes[i] = start(tb, false,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000",
			"--cluster-replica-validity-factor", "0")
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	await(c.tb, func() error {
		for _, s := range c.Nodes {
			info, err := c.Cli(s, "cluster", "info")
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(c.Nodes))) {
				return fmt.Errorf("%s: %s", s.Addr(), info)
			}
		}
		ms, err := c.Topology()
		if err != nil {
			return err
		}
		if len(ms) != masters {
			return fmt.Errorf("%d masters, want %d", len(ms), masters)
		}
		for _, m := range ms {
			if len(m.Replicas) != replicas {
				return fmt.Errorf("master %s has %d replicas, want %d", m.Addr, len(m.Replicas), replicas)
			}
		}
		return nil
	}, "the cluster to form")
	return c
}

// Seeds are redis:// URLs of every node.
func (c *Cluster) Seeds() []string {
	var out []string
	for _, s := range c.Nodes {
		out = append(out, "redis://"+s.Addr())
	}
	return out
}

// Cli runs redis-cli against s and returns its output.
func (c *Cluster) Cli(s *Server, args ...string) (string, error) { return cli(s, args...) }

// Master is a master of the cluster with its slot ranges and replicas.
type Master struct {
	ID       string
	Addr     string
	Server   *Server
	Slots    [][2]int
	Replicas []string
}

// Owns reports whether slot is one of m's.
func (m Master) Owns(slot int) bool {
	for _, r := range m.Slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// Topology reads CLUSTER NODES from a live node: the masters that serve
// slots and are not marked failed.
func (c *Cluster) Topology() ([]Master, error) {
	var lastErr error
	for _, s := range c.Nodes {
		if !s.running() {
			continue
		}
		out, err := c.Cli(s, "cluster", "nodes")
		if err != nil {
			lastErr = err
			continue
		}
		byID := map[string]*Master{}
		var order []string
		replicaOf := map[string][]string{}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			flags := f[2]
			if strings.Contains(flags, "fail") && !strings.Contains(flags, "fail?") {
				continue
			}
			if strings.Contains(flags, "slave") {
				replicaOf[f[3]] = append(replicaOf[f[3]], addr)
				continue
			}
			if !strings.Contains(flags, "master") || len(f) < 9 {
				continue
			}
			m := &Master{ID: f[0], Addr: addr, Server: c.byAddr(addr)}
			for _, r := range f[8:] {
				if strings.HasPrefix(r, "[") {
					continue // a slot being migrated
				}
				lo, hi, ok := strings.Cut(r, "-")
				if !ok {
					hi = lo
				}
				a, _ := strconv.Atoi(lo)
				b, _ := strconv.Atoi(hi)
				m.Slots = append(m.Slots, [2]int{a, b})
			}
			byID[f[0]] = m
			order = append(order, f[0])
		}
		var ms []Master
		for _, id := range order {
			m := byID[id]
			m.Replicas = replicaOf[id]
			ms = append(ms, *m)
		}
		return ms, nil
	}
	return nil, fmt.Errorf("no live node answered: %v", lastErr)
}

func (c *Cluster) byAddr(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// Slot is CLUSTER KEYSLOT key, asked of a live node.
func (c *Cluster) Slot(key string) int {
	c.tb.Helper()
	for _, s := range c.Nodes {
		if !s.running() {
			continue
		}
		out, err := c.Cli(s, "cluster", "keyslot", key)
		if err != nil {
			c.tb.Fatalf("redistest: %v", err)
		}
		n, err := strconv.Atoi(out)
		if err != nil {
			c.tb.Fatalf("redistest: keyslot %q: %q", key, out)
		}
		return n
	}
	c.tb.Fatalf("redistest: no live node")
	return 0
}

// MasterOf is the live master serving slot.
func (c *Cluster) MasterOf(slot int) Master {
	c.tb.Helper()
	ms, err := c.Topology()
	if err != nil {
		c.tb.Fatalf("redistest: %v", err)
	}
	for _, m := range ms {
		if m.Owns(slot) {
			return m
		}
	}
	c.tb.Fatalf("redistest: no master serves slot %d", slot)
	return Master{}
}

// AwaitFailover waits until a replica has taken over every slot of dead
// (which the test killed) and every live node reports cluster_state:ok.
func (c *Cluster) AwaitFailover(dead Master) Master {
	c.tb.Helper()
	var promoted Master
	await(c.tb, func() error {
		ms, err := c.Topology()
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Addr != dead.Addr && len(dead.Slots) > 0 && m.Owns(dead.Slots[0][0]) {
				promoted = m
			}
		}
		if promoted.Addr == "" {
			return fmt.Errorf("slot %d not taken over yet", dead.Slots[0][0])
		}
		for _, s := range c.Nodes {
			if !s.running() {
				continue
			}
			info, err := c.Cli(s, "cluster", "info")
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("%s not ok yet", s.Addr())
			}
		}
		return nil
	}, "a replica to take over "+dead.Addr)
	return promoted
}

// MoveSlot migrates slot, with its keys, from one master to another the
// way redis-cli --cluster reshard does: IMPORTING/MIGRATING, MIGRATE of
// its keys, then SETSLOT NODE on every master.
func (c *Cluster) MoveSlot(slot int, from, to Master) {
	c.tb.Helper()
	s := strconv.Itoa(slot)
	must := func(srv *Server, args ...string) string {
		out, err := c.Cli(srv, args...)
		if err != nil || strings.HasPrefix(out, "ERR") {
			c.tb.Fatalf("redistest: move slot %d: %v %s", slot, err, out)
		}
		return out
	}
	must(to.Server, "cluster", "setslot", s, "importing", from.ID)
	must(from.Server, "cluster", "setslot", s, "migrating", to.ID)
	for {
		keys := strings.Fields(must(from.Server, "cluster", "getkeysinslot", s, "100"))
		if len(keys) == 0 {
			break
		}
		host, port, _ := strings.Cut(to.Addr, ":")
		must(from.Server, append([]string{"migrate", host, port, "", "0", "5000", "keys"}, keys...)...)
	}
	ms, err := c.Topology()
	if err != nil {
		c.tb.Fatalf("redistest: %v", err)
	}
	must(to.Server, "cluster", "setslot", s, "node", to.ID)
	must(from.Server, "cluster", "setslot", s, "node", to.ID)
	for _, m := range ms {
		if m.ID != to.ID && m.ID != from.ID {
			must(m.Server, "cluster", "setslot", s, "node", to.ID)
		}
	}
}

// AwaitReplicas waits until the master at addr has n replicas.
func (c *Cluster) AwaitReplicas(addr string, n int) {
	c.tb.Helper()
	await(c.tb, func() error {
		ms, err := c.Topology()
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Addr == addr {
				if len(m.Replicas) != n {
					return fmt.Errorf("%s has %d replicas", addr, len(m.Replicas))
				}
				if r := c.byAddr(m.Replicas[0]); r != nil {
					if info, err := c.Cli(r, "info", "replication"); err != nil || !strings.Contains(info, "master_link_status:up") {
						return fmt.Errorf("replica %s not in sync: %v", m.Replicas[0], err)
					}
				}
				return nil
			}
		}
		return fmt.Errorf("%s is not a master", addr)
	}, "replicas of "+addr)
}

// await polls cond (a cluster's or sentinels' state has no event to wait
// on) for up to 60 s, failing the test with cond's last error.
func await(tb testing.TB, cond func() error, what string) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}
