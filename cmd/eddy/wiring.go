package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	jsclient "github.com/eddyrt/eddy/clients/js"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/adminapi"
	"github.com/eddyrt/eddy/internal/functions/filestore"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/server"
)

// buildServerOptions assembles the broker, functions and extra handlers the
// config asks for. cleanup releases what it opened.
func buildServerOptions(cfg config.Config, log *slog.Logger) (server.Options, func(), error) {
	reg := prometheus.NewRegistry()
	opts := server.Options{Config: cfg, Logger: log, Registry: reg}
	store, err := filestore.New(filepath.Join(cfg.DataDir, "functions"))
	if err != nil {
		return opts, nil, fmt.Errorf("functions store in data_dir %s: %w", cfg.DataDir, err)
	}
	engine, err := functions.New(store, functions.Options{
		Logger:       log.With("component", "functions"),
		Registerer:   reg,
		ValidChannel: protocol.ValidateChannel,
	})
	if err != nil {
		return opts, nil, fmt.Errorf("load functions: %w", err)
	}
	opts.Functions = functions.Pipeline{Engine: engine}
	opts.ExtraHandlers = map[string]http.Handler{"GET /eddy.js": jsclient.Handler()}
	opts.AdminHandler = adminapi.NewHandler(engine)
	return opts, func() { _ = engine.Close() }, nil
}
