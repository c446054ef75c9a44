package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/redis/rueidis"

	redisbroker "github.com/eddyrt/eddy/internal/broker/redis"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/adminapi"
	"github.com/eddyrt/eddy/internal/functions/filestore"
	"github.com/eddyrt/eddy/internal/functions/kvstore"
	"github.com/eddyrt/eddy/internal/functions/redisstore"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/server"
)

// appFunctions gives every app but the default one its own functions
// engine, store and key-value store, so app A's functions and
// associations never see app B's messages: in Redis under
// "<prefix>:app:<id>:", on one node under data_dir/apps/<id>/.
type appFunctions struct {
	cfg   config.Config
	log   *slog.Logger
	redis *redisbroker.Broker // nil: file stores
	// failed hears of every failure of an app's function: the
	// function_error webhook, to that app's receivers. Nil: none.
	failed func(app, function, channel string, err error)

	mu      sync.Mutex
	engines map[string]*functions.Engine
}

var _ server.AppFunctions = (*appFunctions)(nil)

// appBackend is the Redis broker seen by one app's stores: every key they
// make carries the app's id.
type appBackend struct {
	*redisbroker.Broker
	id string
}

func (b appBackend) ControlClient() (rueidis.Client, string, error) {
	c, prefix, err := b.Broker.ControlClient()
	return c, prefix + ":app:" + b.id, err
}

func (f *appFunctions) dir(id string) string { return filepath.Join(f.cfg.DataDir, "apps", id) }

// Open implements server.AppFunctions.
func (f *appFunctions) Open(id string) (server.Middleware, http.Handler, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.engines[id]; e != nil {
		return functions.Pipeline{Engine: e}, adminapi.NewHandler(e, f.log.With("component", "admin-api", "app", id)), nil
	}
	var store functions.Store
	opts := functions.Options{
		Logger:           f.log.With("app", id),
		ValidChannel:     protocol.ValidateChannel,
		ValidData:        validFunctionData,
		AllowPrivateURLs: f.cfg.AllowPrivateURLs,
		PoolSize:         f.cfg.FunctionsPool,
	}
	if f.failed != nil {
		failed := f.failed
		opts.OnFailure = func(function, channel string, err error) { failed(id, function, channel, err) }
	}
	if f.redis != nil {
		b := appBackend{Broker: f.redis, id: id}
		store = redisstore.New(b)
		opts.KV = kvstore.NewRedis(b)
	} else {
		fs, err := filestore.New(f.dir(id))
		if err != nil {
			return nil, nil, fmt.Errorf("functions store of app %s: %w", id, err)
		}
		store = fs
	}
	e, err := functions.New(store, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("functions of app %s: %w", id, err)
	}
	if f.engines == nil {
		f.engines = map[string]*functions.Engine{}
	}
	f.engines[id] = e
	return functions.Pipeline{Engine: e}, adminapi.NewHandler(e, f.log.With("component", "admin-api", "app", id)), nil
}

// Drop implements server.AppFunctions: the engine stops and the app's
// functions, associations and key-value data are deleted.
func (f *appFunctions) Drop(ctx context.Context, id string) error {
	f.mu.Lock()
	e := f.engines[id]
	delete(f.engines, id)
	f.mu.Unlock()
	if e != nil {
		_ = e.Close()
	}
	if f.redis == nil {
		if err := os.RemoveAll(f.dir(id)); err != nil {
			return fmt.Errorf("remove the functions of app %s: %w", id, err)
		}
		return nil
	}
	c, prefix, err := appBackend{Broker: f.redis, id: id}.ControlClient()
	if err != nil {
		return fmt.Errorf("remove the functions of app %s: %w", id, err)
	}
	pattern := prefix + ":*"
	var cursor uint64
	for {
		entry, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(pattern).Count(500).Build()).AsScanEntry()
		if err != nil {
			return fmt.Errorf("remove the functions of app %s: %w", id, err)
		}
		for _, k := range entry.Elements {
			if err := c.Do(ctx, c.B().Del().Key(k).Build()).Error(); err != nil {
				return fmt.Errorf("remove the functions of app %s: %w", id, err)
			}
		}
		if cursor = entry.Cursor; cursor == 0 {
			return nil
		}
	}
}

// reload re-reads every app engine's store (after a cluster notice).
func (f *appFunctions) reload(ctx context.Context) error {
	f.mu.Lock()
	engines := make([]*functions.Engine, 0, len(f.engines))
	for _, e := range f.engines {
		engines = append(engines, e)
	}
	f.mu.Unlock()
	var first error
	for _, e := range engines {
		if err := e.Reload(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (f *appFunctions) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, e := range f.engines {
		_ = e.Close()
		delete(f.engines, id)
	}
}
