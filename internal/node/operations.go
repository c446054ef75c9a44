package node

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions/fnlog"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/status"
)

// The operator's live view (docs/operations.md): the status feed behind
// $admin:status and the function logs. With Redis both relay over its
// cluster notifications, so a subscriber or a log reader on any node sees
// every node's; with NATS (no notifications) and the memory broker, each
// node's own.

// buildOperations makes the status feed and the function logs of n, puts
// them in n.Options for the server, and returns the engine's observer.
func (n *Node) buildOperations(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) operations {
	if n.Options.NodeID == "" {
		n.Options.NodeID = server.NewNodeID()
	}
	var notifier broker.Notifier
	var nodes broker.NodeRegistry
	switch {
	case n.Redis != nil:
		notifier, nodes = n.Redis, n.Redis
	case n.NATS != nil:
		nodes = n.NATS
	}
	every := min(5*time.Second, cfg.NodeTTL/3) // as the server announces (server.announceEvery)
	ops := operations{
		feed: status.New(status.Options{
			NodeID: n.Options.NodeID, Rate: cfg.StatusSampleRate, Notifier: notifier,
			Nodes: nodes, NodeEvery: every, Logger: log, Registerer: reg,
		}),
		logs: fnlog.New(fnlog.Options{
			NodeID: n.Options.NodeID, Lines: cfg.FunctionLogLines, Notifier: notifier,
			Logger: log, Registerer: reg,
		}),
	}
	n.Options.Status, n.Options.FunctionLogs = ops.feed, ops.logs
	return ops
}

// operations is the engine's Observer: a function's log lines go to its
// logs, its failures to its logs and to the status feed.
type operations struct {
	feed *status.Feed
	logs *fnlog.Store
}

func (o operations) FunctionLog(function, line string) { o.logs.Add(function, fnlog.LevelInfo, line) }

func (o operations) FunctionFailed(function, channel string, err error, timeout bool) {
	o.logs.Add(function, fnlog.LevelError, "on "+channel+": "+err.Error())
	kind := status.FunctionError
	if timeout {
		kind = status.FunctionTimeout
	}
	o.feed.Emit(status.Event{Type: kind, Function: function, Channel: channel, Error: err.Error()})
}

// route hands the status and function-log relays of the cluster's
// notifications to their owners, and reports whether topic was theirs.
func (o operations) route(topic string, payload []byte) bool {
	switch topic {
	case status.Topic:
		o.feed.Receive(payload)
	case fnlog.Topic:
		o.logs.Receive(payload)
	default:
		return false
	}
	return true
}
