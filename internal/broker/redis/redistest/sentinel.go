package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sentinels is a master, its replica and three redis-sentinel processes
// watching them (quorum 2, down after 1 s), all on free local ports and
// stopped when the test ends.
type Sentinels struct {
	tb        testing.TB
	Name      string // the master set's name
	Master    *Server
	Replica   *Server
	Sentinels []*Server
}

// StartSentinels starts the set and returns once every Sentinel knows the
// master, the replica and the two other Sentinels (so that they can agree
// on a failover).
func StartSentinels(tb testing.TB) *Sentinels {
	tb.Helper()
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		tb.Fatalf("redistest: redis-sentinel is not on PATH (%v); install it, e.g. apt-get install -y redis-sentinel", err)
	}
	s := &Sentinels{tb: tb, Name: "eddy"}
	s.Master = start(tb, false)
	s.Replica = start(tb, false, "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.port))
	for i := range 3 {
		dir := tb.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\nsentinel down-after-milliseconds %[1]s 1000\nsentinel failover-timeout %[1]s 10000\nsentinel parallel-syncs %[1]s 1\n", s.Name, s.Master.port)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			tb.Fatalf("redistest: sentinel %d config: %v", i, err)
		}
		sn := &Server{tb: tb, bin: bin, dir: dir, conf: conf}
		var lastErr error
		for range 5 {
			if sn.port, err = freePort(); err != nil {
				tb.Fatalf("redistest: find a free port: %v", err)
			}
			if lastErr = sn.start(); lastErr == nil {
				break
			}
		}
		if lastErr != nil {
			tb.Fatalf("redistest: redis-sentinel did not start: %v", lastErr)
		}
		tb.Cleanup(sn.Stop)
		s.Sentinels = append(s.Sentinels, sn)
	}
	await(s.tb, func() error {
		if info, err := cli(s.Replica, "info", "replication"); err != nil || !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica not in sync: %v %s", err, info)
		}
		for _, sn := range s.Sentinels {
			for _, q := range [][]string{{"replicas", "1"}, {"sentinels", "2"}} {
				out, err := cli(sn, "sentinel", q[0], s.Name)
				if err != nil {
					return err
				}
				n := 0
				for _, line := range strings.Split(out, "\n") {
					if line == "name" {
						n++
					}
				}
				if strconv.Itoa(n) != q[1] {
					return fmt.Errorf("sentinel %s knows %d %s", sn.Addr(), n, q[0])
				}
			}
		}
		return nil
	}, "the sentinels to know each other and the replica")
	return s
}

// Addrs are the Sentinels' host:port.
func (s *Sentinels) Addrs() []string {
	var out []string
	for _, sn := range s.Sentinels {
		out = append(out, sn.Addr())
	}
	return out
}

// MasterAddr is what every Sentinel gives as the master, or an error when
// they disagree.
func (s *Sentinels) MasterAddr() (string, error) {
	var addr string
	for _, sn := range s.Sentinels {
		out, err := cli(sn, "sentinel", "get-master-addr-by-name", s.Name)
		if err != nil {
			return "", err
		}
		a := strings.Join(strings.Fields(out), ":")
		if addr != "" && a != addr {
			return "", fmt.Errorf("sentinels disagree: %s, %s", addr, a)
		}
		addr = a
	}
	return addr, nil
}

// AwaitFailover waits until every Sentinel names the replica as master and
// the replica says it is one (after the test killed the master).
func (s *Sentinels) AwaitFailover() {
	s.tb.Helper()
	await(s.tb, func() error {
		addr, err := s.MasterAddr()
		if err != nil {
			return err
		}
		if addr != s.Replica.Addr() {
			return fmt.Errorf("master is still %s", addr)
		}
		if info, err := cli(s.Replica, "info", "replication"); err != nil || !strings.Contains(info, "role:master") {
			return fmt.Errorf("replica not promoted: %v %s", err, info)
		}
		return nil
	}, "the replica's promotion")
}

// cli runs redis-cli against s.
func cli(s *Server, args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port)}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("redis-cli -p %d %v: %w: %s", s.port, args, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// AwaitReplicaOfNewMaster waits, after AwaitFailover and a Restart of the
// old master, until the Sentinels made the old master a replica of the
// promoted one and it is in sync.
func (s *Sentinels) AwaitReplicaOfNewMaster() {
	s.tb.Helper()
	await(s.tb, func() error {
		info, err := cli(s.Master, "info", "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:slave") || !strings.Contains(info, "master_port:"+strconv.Itoa(s.Replica.port)) || !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("old master not yet a replica in sync: %s", info)
		}
		return nil
	}, "the old master to become a replica")
}

// StartReplica runs a redis-server replicating master and returns once it
// is in sync.
func StartReplica(tb testing.TB, master *Server) *Server {
	tb.Helper()
	r := start(tb, false, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := cli(r, "info", "replication")
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return r
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: replica of %s not in sync: %v %s", master.Addr(), err, info)
		}
		time.Sleep(50 * time.Millisecond) // no event to await: poll
	}
}

// Cli runs redis-cli against s and returns its output.
func (s *Server) Cli(args ...string) (string, error) { return cli(s, args...) }
