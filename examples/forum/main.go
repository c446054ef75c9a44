// Command forum is a small discussion forum that uses Eddy for live updates
// (the "River" design): the forum stores posts itself, publishes each new one
// to forum:<topic> through Eddy's HTTP API, and hands its logged-in users
// Eddy tokens so that their pages see new posts without a reload.
//
//	go run ./examples/forum --eddy http://127.0.0.1:8080 --api-key K --secret S --listen :3000
//
// Without flags, the secret, API key and Eddy address come from ./eddy.yaml
// (the file `eddy serve` writes) when it exists.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/config"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "forum:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("forum", flag.ContinueOnError)
	cfgPath := fs.String("config", "eddy.yaml", "Eddy config file to take defaults from (when it exists)")
	eddyURL := fs.String("eddy", "", "Eddy server base URL (default: from the config's listen, else http://127.0.0.1:8080)")
	apiKey := fs.String("api-key", "", "Eddy API key (default: the config's api_key)")
	secret := fs.String("secret", "", "Eddy token secret (default: the config's secret)")
	listen := fs.String("listen", ":3000", "address to serve the forum on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(*cfgPath); err == nil {
		cfg, err := config.Load(*cfgPath, nil)
		if err != nil {
			return err
		}
		if *apiKey == "" {
			*apiKey = cfg.APIKey
		}
		if *secret == "" {
			*secret = cfg.Secret
		}
		if *eddyURL == "" {
			*eddyURL = urlOf(cfg.Listen)
		}
	}
	if *eddyURL == "" {
		*eddyURL = "http://127.0.0.1:8080"
	}
	switch {
	case len(*secret) < 32:
		return errors.New("--secret is missing or shorter than 32 bytes (or run next to eddy.yaml)")
	case *apiKey == "":
		return errors.New("--api-key is missing (or run next to eddy.yaml)")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	app, err := newApp(appConfig{
		EddyURL: strings.TrimRight(*eddyURL, "/"),
		Secret:  []byte(*secret),
		API:     api.NewClient(*eddyURL, *apiKey),
		Log:     log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("forum listening", "url", "http://"+ln.Addr().String(), "eddy", *eddyURL)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// urlOf turns a listen address (":8080", "0.0.0.0:8080") into a URL on loopback.
func urlOf(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
