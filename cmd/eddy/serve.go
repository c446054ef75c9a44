package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
)

func newServeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an Eddy server",
		Long: `Run an Eddy server. Every setting is a flag, an EDDY_* environment variable and a
key in the config file (flag > env > file > default): key auth_timeout is flag
--auth-timeout and variable EDDY_AUTH_TIMEOUT.

With no config file, serve writes one (mode 0600) holding a fresh random secret,
API key and admin key, then serves. Without an admin_key the admin API
(functions, associations) is off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, g)
		},
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func newLogger(format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func runServe(cmd *cobra.Command, g *globals) error {
	created := false
	if _, err := os.Stat(g.configPath); errors.Is(err, os.ErrNotExist) && !cmd.Flags().Changed("secret") && os.Getenv("EDDY_SECRET") == "" {
		if _, _, err := config.Init(g.configPath); err != nil {
			return err
		}
		created = true
	}
	cfg, err := config.Load(g.configPath, cmd.Flags())
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, cfg.LogLevel)
	opts, cleanup, err := buildServerOptions(cfg, log)
	if err != nil {
		return err
	}
	defer cleanup()
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	if created {
		log.Info("created config with a fresh secret, API key and admin key", "file", g.configPath)
	}
	if cfg.AdminKey == "" {
		log.Warn("admin API is off: set admin_key (eddy.yaml, EDDY_ADMIN_KEY or --admin-key) to deploy functions and associations")
	}
	addr := srv.Addr().String()
	ws, web := "ws://", "http://"
	if cfg.TLSEnabled() {
		ws, web = "wss://", "https://"
	}
	log.Info("eddy listening", "websocket", ws+addr+"/ws", "api", web+srv.APIAddr().String()+"/api/v1", "broker", brokerName(cfg), "node", srv.NodeID())
	// The keys go to the terminal, never into the structured log.
	admin := "off (set admin_key to deploy functions)"
	if cfg.AdminKey != "" {
		admin = cfg.AdminKey + " (deploys functions: keep it apart from the API key)"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "\nAPI key: %s\nAdmin key: %s\nMint a client token:\n  eddy token --config %s --sub alice --ttl 1h --channel 'chat:*' --publish 'chat:*'\n\n", cfg.APIKey, admin, g.configPath)
	<-ctx.Done()
	stop()
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func brokerName(cfg config.Config) string {
	if len(cfg.Redis) > 0 {
		return "redis"
	}
	return "memory"
}
