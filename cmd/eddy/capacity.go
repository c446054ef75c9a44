package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/bench/capacity"
)

func init() { extraCommands = append(extraCommands, newCapacityCmd) }

// newCapacityCmd plans nodes, Redis shards and bandwidth for a workload
// from the measured costs in bench/capacity (see docs/capacity.md).
func newCapacityCmd(*globals) *cobra.Command {
	w := capacity.Workload{}
	m := capacity.DefaultMachine()
	c := capacity.DefaultCosts()
	leaves := -1.0
	cmd := &cobra.Command{
		Use:   "capacity",
		Short: "Plan nodes, Redis shards and bandwidth for a workload, showing the arithmetic",
		Long: `Turn a workload into Eddy nodes, Redis shards and bandwidth by arithmetic on
unit costs measured on the project's test machine (docs/capacity.md says where
each one comes from). Nothing is contacted; every step is printed.`,
		Example: `  eddy capacity --connections 1000000 --channels 10000 --subscribers 100 --publishes 10000
  eddy capacity --connections 100000 --channels 1 --subscribers 100000 --publishes 1 --presence --join-leave --joins 100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w.LeavesPerSec = w.JoinsPerSec
			if leaves >= 0 {
				w.LeavesPerSec = leaves
			}
			p, err := capacity.Compute(w, m, c)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), capacity.Report(w, m, p))
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&w.Connections, "connections", 1_000_000, "concurrent connections")
	f.Float64Var(&w.Channels, "channels", 10_000, "channels with subscribers")
	f.Float64Var(&w.SubscribersPerChannel, "subscribers", 100, "subscribers per channel")
	f.Float64Var(&w.PublishesPerSec, "publishes", 10_000, "publishes per second over all channels")
	f.Float64Var(&w.MessageBytes, "message-bytes", 100, "payload (data) bytes per message")
	f.Float64Var(&w.HistorySize, "history", 0, "history entries kept per channel")
	f.Float64Var(&w.ConnectsPerSec, "connects", 0, "new connections per second (churn or reconnect wave)")
	f.BoolVar(&w.Presence, "presence", false, "presence on every channel")
	f.BoolVar(&w.JoinLeave, "join-leave", false, "join/leave events to members (needs --presence)")
	f.Float64Var(&w.JoinsPerSec, "joins", 0, "presence joins per second over all channels")
	f.Float64Var(&leaves, "leaves", -1, "presence leaves per second (default: equal to --joins)")
	f.Float64Var(&m.NodeCores, "node-cores", m.NodeCores, "cores per Eddy node")
	f.Float64Var(&m.NodeMemGiB, "node-mem-gib", m.NodeMemGiB, "memory per Eddy node, GiB")
	f.Float64Var(&m.NodeNICGbps, "node-gbps", m.NodeNICGbps, "network per Eddy node, Gbit/s")
	f.Float64Var(&m.TargetUtil, "target-util", m.TargetUtil, "fraction of CPU, memory and network to plan for")
	f.Float64Var(&m.RedisMemGiB, "redis-mem-gib", m.RedisMemGiB, "memory per Redis shard, GiB")
	f.Float64Var(&m.RedisNICGbps, "redis-gbps", m.RedisNICGbps, "network per Redis shard, Gbit/s")
	// The costs that vary most between runs, to plan with a pessimistic figure.
	f.Float64Var(&c.DeliveryCPU, "delivery-us", c.DeliveryCPU, "node CPU µs per delivered message")
	f.Float64Var(&c.PublishCPU, "publish-us", c.PublishCPU, "node CPU µs per publish through the HTTP API")
	f.Float64Var(&c.IngressCPU, "ingress-us", c.IngressCPU, "node CPU µs per message received from Redis")
	f.Float64Var(&c.RedisJoinCPU, "redis-join-us", c.RedisJoinCPU, "Redis CPU µs per presence join with its leave")
	// Connections read by gws's goroutine (TLS at Eddy, compression) cost
	// more memory than the plain-TCP default; see capacity.Costs.ConnKiB.
	f.Float64Var(&c.ConnKiB, "conn-kib", c.ConnKiB, "node RSS KiB per idle connection (8.5 with TLS terminated by Eddy or compression)")
	return cmd
}
