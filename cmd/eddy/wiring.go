package main

import (
	"log/slog"

	jsclient "github.com/eddyrt/eddy/clients/js"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/demo"
	"github.com/eddyrt/eddy/internal/home"
	"github.com/eddyrt/eddy/internal/node"
	"github.com/eddyrt/eddy/internal/server"
)

// buildServerOptions assembles the broker, functions and extra handlers the
// config asks for. cleanup releases what it opened.
func buildServerOptions(cfg config.Config, log *slog.Logger) (server.Options, func(), error) {
	n, err := node.Build(cfg, log)
	if err != nil {
		return server.Options{}, nil, err
	}
	opts := n.Options
	opts.ExtraHandlers["GET /eddy.js"] = jsclient.Handler()
	opts.ExtraHandlers["GET /{$}"] = home.Handler(home.Page{Version: versionInfo(), Demo: cfg.Demo})
	if cfg.Demo {
		for pattern, h := range demo.Handlers(cfg, log, n.Engine) {
			opts.ExtraHandlers[pattern] = h
		}
	}
	return opts, n.Close, nil
}
