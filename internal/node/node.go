// Package node assembles a server's parts from its config: the broker
// (memory or Redis), the functions engine and its store, and the admin API.
// The CLI and the tests build nodes the same way through it.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/apps"
	natsbroker "github.com/eddyrt/eddy/internal/broker/nats"
	redisbroker "github.com/eddyrt/eddy/internal/broker/redis"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/adminapi"
	"github.com/eddyrt/eddy/internal/functions/filestore"
	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/kvstore"
	"github.com/eddyrt/eddy/internal/functions/redisstore"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/webhooks"
)

// Node is a server's assembled parts, not yet started. The node owns what
// Build created: the server it is given to uses them and closes none of
// them; Close releases them after the server has shut down.
type Node struct {
	Options server.Options
	Engine  *functions.Engine
	Redis   *redisbroker.Broker // nil with the memory broker
	NATS    *natsbroker.Broker  // nil unless cfg.NATS is set
	// Webhooks is the node's webhooks (webhooks.go); Options.Webhooks too.
	Webhooks *webhooks.System
	apps     *appFunctions // the functions of every app but the default one
}

// RedisWait is how long Build waits for Redis to answer before giving up.
var RedisWait = 15 * time.Second

// Build assembles the parts cfg asks for. Close releases them. When Build
// fails it has already released whatever it had created.
func Build(cfg config.Config, log *slog.Logger) (*Node, error) {
	reg := prometheus.NewRegistry()
	n := &Node{Options: server.Options{Config: cfg, Logger: log, Registry: reg, ExtraHandlers: map[string]http.Handler{}}}
	var store functions.Store
	var kv fnrt.KV // nil: the engine's own memory store
	if cfg.UsesRedis() {
		rb, err := startRedis(cfg, log)
		if err != nil {
			return nil, err
		}
		n.Redis = rb
		n.Options.Broker, n.Options.NodeID = rb, rb.NodeID()
		store = redisstore.New(rb)
		kv = kvstore.NewRedis(rb)
		n.Options.AppStore = apps.NewRedisStore(rb)
	} else {
		if cfg.NATS != "" {
			nb, err := startNATS(cfg, log)
			if err != nil {
				return nil, err
			}
			n.NATS = nb
			n.Options.Broker, n.Options.NodeID = nb, nb.NodeID()
		}
		// Functions stay in each node's data_dir with NATS: its broker
		// carries no cluster notices (docs/cluster.md).
		fs, err := filestore.New(filepath.Join(cfg.DataDir, "functions"))
		if err != nil {
			return nil, fmt.Errorf("functions store in data_dir %s: %w", cfg.DataDir, err)
		}
		store = fs
		as, err := apps.NewFileStore(filepath.Join(cfg.DataDir, "apps"))
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("apps store in data_dir %s: %w", cfg.DataDir, err)
		}
		n.Options.AppStore = as
	}
	if err := n.buildWebhooks(cfg, log, reg); err != nil {
		n.Close()
		return nil, err
	}
	ops := n.buildOperations(cfg, log, reg)
	vault, err := buildVault(cfg, n.Redis, log)
	if err != nil {
		n.Close()
		return nil, err
	}
	engine, err := functions.New(store, functions.Options{
		Logger:           log, // the engine names its own component
		Registerer:       reg,
		ValidChannel:     protocol.ValidateChannel,
		ValidData:        validFunctionData,
		AllowPrivateURLs: cfg.AllowPrivateURLs,
		PoolSize:         cfg.FunctionsPool,
		WasmCacheDir:     cfg.WasmCacheDir,
		KV:               kv,
		OnFailure:        n.Webhooks.FunctionFailed,
		Observer:         ops,
		Secrets:          vault,
	})
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("load functions: %w", err)
	}
	n.Engine = engine
	n.apps = &appFunctions{cfg: cfg, log: log, redis: n.Redis, failed: n.Webhooks.FunctionFailedIn}
	n.Options.AppFunctions = n.apps
	n.Options.Functions = functions.Pipeline{Engine: engine}
	n.Options.AdminHandler = newAdminAPI(adminapi.NewHandler(engine, log.With("component", "admin-api")), n.Webhooks.Admin())
	if n.Redis != nil {
		notices := &server.NoticeRelay{}
		n.Options.Notices = notices
		// A change made through any node is in force on every node for the
		// next message: the store notifies, every node reloads. A node that
		// was cut off missed the notices (or Redis lost its data), so it also
		// reloads whenever its pub/sub reconnects.
		appNotices := make(chan struct{}, 1)
		n.Options.AppNotices = appNotices
		n.Redis.OnNotify(func(topic string, payload []byte) {
			if notices.Route(topic, payload) {
				return // the console's (a user's connections on every node)
			}
			if ops.route(topic, payload) {
				return
			}
			if topic == webhooks.Topic || topic == redisbroker.TopicReconnected {
				n.reloadWebhooks(log)
			}
			if topic == apps.Topic || topic == redisbroker.TopicReconnected {
				// One pending notice is enough: the reload reads everything.
				select {
				case appNotices <- struct{}{}:
				default:
				}
			}
			if topic != redisstore.Topic && topic != redisbroker.TopicReconnected {
				return
			}
			// Right after a reconnect the command connection may still be
			// the broken one: retry, or the node would keep its stale set
			// until the next change. The last attempt's error is logged.
			var err error
			for attempt, wait := 0, 100*time.Millisecond; attempt < 8; attempt, wait = attempt+1, min(2*wait, 2*time.Second) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err = engine.Reload(ctx)
				if err == nil {
					err = n.apps.reload(ctx)
				}
				cancel()
				if err == nil {
					return
				}
				time.Sleep(wait) // no event tells when Redis answers again; back off
			}
			log.Warn("reload functions after a cluster change", "topic", topic, "err", err)
		})
	}
	return n, nil
}

// validFunctionData applies the publish path's data check to what functions
// output, so that invalid output fails the function (on_error) instead of
// refusing the publisher's valid message.
func validFunctionData(d json.RawMessage) (json.RawMessage, error) {
	out, err := protocol.CompactData(d)
	if err != nil {
		return nil, errors.New(protocol.AsError(err).Message)
	}
	return out, nil
}

// Close releases what Build created; call it after the server's Shutdown
// returned. The broker goes first: its notification goroutine calls into
// the engine. Calling Close again does nothing.
func (n *Node) Close() {
	n.closeWebhooks()
	if n.Redis != nil {
		_ = n.Redis.Close()
	}
	if n.NATS != nil {
		_ = n.NATS.Close()
	}
	if n.Engine != nil {
		_ = n.Engine.Close()
	}
	if n.apps != nil {
		n.apps.close()
	}
}

// startRedis connects the cluster broker and waits a while for Redis, so a
// node that starts with Redis down says so instead of serving half-ready.
func startRedis(cfg config.Config, log *slog.Logger) (*redisbroker.Broker, error) {
	rb, err := redisbroker.New(redisbroker.Options{
		Addrs:       cfg.Redis,
		Logger:      log, // the broker names its own component
		PresenceTTL: cfg.PresenceTTL,
		NodeTTL:     cfg.NodeTTL,
		// Cluster, Sentinel and WAIT (docs/cluster.md).
		Cluster:        cfg.RedisCluster,
		SentinelMaster: cfg.RedisSentinelMaster,
		SentinelAddrs:  cfg.RedisSentinelAddrs,
		WaitReplicas:   cfg.RedisWaitReplicas,
		WaitTimeout:    cfg.RedisWaitTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	deadline := time.Now().Add(RedisWait)
	for !rb.Ready() {
		if time.Now().After(deadline) {
			_ = rb.Close()
			return nil, fmt.Errorf("redis: %v not reachable after %s", cfg.Redis, RedisWait)
		}
		time.Sleep(50 * time.Millisecond) // polling a readiness flag; there is no event to await
	}
	return rb, nil
}

// startNATS connects the NATS broker and waits a while for NATS, like
// startRedis.
func startNATS(cfg config.Config, log *slog.Logger) (*natsbroker.Broker, error) {
	nb, err := natsbroker.New(natsbroker.Options{
		URL:         cfg.NATS,
		Logger:      log, // the broker names its own component
		PresenceTTL: cfg.PresenceTTL,
		NodeTTL:     cfg.NodeTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	deadline := time.Now().Add(RedisWait)
	for !nb.Ready() {
		if time.Now().After(deadline) {
			_ = nb.Close()
			return nil, fmt.Errorf("nats: %s not ready (reachable, with JetStream enabled) after %s", cfg.NATS, RedisWait)
		}
		time.Sleep(50 * time.Millisecond) // polling a readiness flag; there is no event to await
	}
	return nb, nil
}
