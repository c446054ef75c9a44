package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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

Channel options (history, presence, join/leave) are set per namespace in the
config file under channel_defaults and namespaces; docs/configuration.md lists
every setting and option with its default.

With no config file at the default path, serve writes one (mode 0600) holding
a fresh random secret, API key and admin key, then serves. A config file named
with --config or EDDY_CONFIG must exist. Without an admin_key the admin API
(functions, associations) is off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, g)
		},
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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
	log := newLogger(cmd.ErrOrStderr(), cfg.LogFormat, cfg.LogLevel)
	opts, cleanup, err := buildServerOptions(cfg, log)
	if err != nil {
		return err
	}
	defer cleanup()
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
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
	ws, web := "ws://", "http://"
	if cfg.TLSEnabled() {
		ws, web = "wss://", "https://"
	}
	wsURL := ws + clickableAddr(srv.Addr()) + "/ws"
	apiBase := web + clickableAddr(srv.APIAddr())
	attrs := []any{"websocket", wsURL, "api", apiBase + "/api/v1", "broker", brokerName(cfg), "node", srv.NodeID()}
	if cfg.Demo {
		attrs = append(attrs, "demo", web+clickableAddr(srv.Addr())+"/demo/")
	}
	log.Info("eddy listening", attrs...)
	// Keys are printed only when this start generated them, and only to a
	// terminal-style log: never into a JSON log stream, where they would
	// land in container logs and break the stream's format.
	if cfg.LogFormat != "json" {
		if created {
			fmt.Fprintf(cmd.ErrOrStderr(), "\nAPI key: %s\nAdmin key: %s (deploys functions: keep it apart from the API key)\nBoth are saved in %s.\nMint a client token:\n  eddy token --config %s --sub alice --ttl 1h --channel 'chat:*' --publish 'chat:*'\n", cfg.APIKey, cfg.AdminKey, g.configPath, g.configPath)
		}
		if cfg.Demo {
			fmt.Fprintf(cmd.ErrOrStderr(), "\nDemo: open %s/demo/ in two browser windows\n", web+clickableAddr(srv.Addr()))
		}
		fmt.Fprintln(cmd.ErrOrStderr())
	}
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

// clickableAddr turns a listener address into one a browser can open: a
// wildcard host ([::], 0.0.0.0) becomes localhost.
func clickableAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func brokerName(cfg config.Config) string {
	if cfg.UsesRedis() {
		return "redis"
	}
	return "memory"
}
