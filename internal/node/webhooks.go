package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/webhooks"
)

var _ server.PusherEvents = (*webhooks.System)(nil)

// WebhooksCloseGrace is how long a closing node gives its webhook queues
// to go out.
var WebhooksCloseGrace = 2 * time.Second

// buildWebhooks assembles the node's webhooks: with Redis, occupancy and
// membership are decided in Redis and stored receivers live there; alone
// (or with NATS), on this node and in data_dir.
func (n *Node) buildWebhooks(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) error {
	name := cfg.NodeName
	if name == "" {
		name, _ = os.Hostname()
	}
	opts := webhooks.SystemOptions{
		Dispatcher: webhooks.Options{
			Logger: log, Registerer: reg, NodeID: name,
			Window: cfg.WebhookWindow, RetryFor: cfg.WebhookRetryFor,
		},
		Static:           make([]config.Webhook, len(cfg.Webhooks)),
		DefaultPusherApp: cfg.PusherAppID,
	}
	for i, w := range cfg.Webhooks {
		opts.Static[i] = cfg.WithPusherCredentials(w)
	}
	if n.Redis != nil {
		opts.Ledger = webhooks.NewRedisLedger(n.Redis, n.Redis.NodeID(), cfg.NodeTTL)
		opts.Every = cfg.NodeTTL / 3
		opts.Store = webhooks.NewRedisStore(n.Redis, n.Redis)
		opts.Dispatcher.Claims = webhooks.NewRedisClaims(n.Redis)
	} else {
		if n.NATS != nil && len(cfg.Webhooks) > 0 {
			log.Warn("webhooks with the NATS broker: channel_occupied/vacated and member events are each node's own view, not the cluster's (docs/webhooks.md); use Redis for cluster-wide webhooks")
		}
		fs, err := webhooks.NewFileStore(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("webhooks store in data_dir %s: %w", cfg.DataDir, err)
		}
		opts.Store = fs
	}
	n.Webhooks = webhooks.NewSystem(opts)
	n.Options.Webhooks = n.Webhooks
	// The Pusher protocol's own events (client_event, cache_miss) go to
	// the same receivers.
	n.Options.PusherEvents = n.Webhooks
	return nil
}

// reloadWebhooks reads the stored receivers again after a cluster notice.
func (n *Node) reloadWebhooks(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Webhooks.Reload(ctx); err != nil {
		log.Warn("reload webhooks after a cluster change", "err", err)
	}
}

// closeWebhooks releases this node's channels (reporting those it held
// last) and sends what is queued, for at most WebhooksCloseGrace.
func (n *Node) closeWebhooks() {
	if n.Webhooks == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), WebhooksCloseGrace)
	defer cancel()
	n.Webhooks.Close(ctx)
	n.Webhooks = nil
}
