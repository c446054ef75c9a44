package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
)

// target is what a client command needs to reach a server.
type target struct {
	base     string // http://host:port
	apiKey   string
	adminKey string
	secret   string
	pusher   string // pusher_key
	kid      string // the kid of secret ("": none)
	app      string // the app claim of tokens ("": the default app)
}

// resolveTarget reads the local config (if any) for the key, secret and
// address; --server and EDDY_* variables override it.
func resolveTarget(g *globals) (target, error) {
	cfg, err := config.Load(g.configPath, nil)
	if err != nil {
		return target{}, err
	}
	t := target{apiKey: cfg.APIKey, adminKey: cfg.AdminKey, secret: cfg.Secret, base: g.server, pusher: cfg.PusherKey}
	if t.base == "" {
		addr := cfg.Listen
		if cfg.APIListen != "" {
			addr = cfg.APIListen
		}
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		t.base = "http://" + addr
	}
	t.base = strings.TrimRight(t.base, "/")
	if !strings.Contains(t.base, "://") {
		// --server 127.0.0.1:8080 means the plain HTTP server there.
		t.base = "http://" + t.base
	}
	if _, err := url.Parse(t.base); err != nil {
		return target{}, fmt.Errorf("--server %q: not a URL or host:port: %w", g.server, err)
	}
	if g.app != "" {
		if err := t.useApp(g, g.app); err != nil {
			return target{}, err
		}
	}
	return t, nil
}

func (t target) api() (*api.Client, error) {
	if t.apiKey == "" {
		return nil, fmt.Errorf("no API key: run in the directory of eddy.yaml, pass --config, or set EDDY_API_KEY")
	}
	return api.NewClient(t.base, t.apiKey), nil
}

// apiFor returns an API client for the server the globals point at.
func apiFor(g *globals) (*api.Client, error) {
	t, err := resolveTarget(g)
	if err != nil {
		return nil, err
	}
	return t.api()
}

func wsURL(base string) string {
	switch {
	case strings.HasPrefix(base, "https://"):
		return "wss://" + strings.TrimPrefix(base, "https://") + "/ws"
	case strings.HasPrefix(base, "http://"):
		return "ws://" + strings.TrimPrefix(base, "http://") + "/ws"
	}
	return base + "/ws"
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newPublishCmd(g *globals) *cobra.Command {
	var batchFile string
	var batchSize int
	cmd := &cobra.Command{
		Use:   "publish CHANNEL EVENT DATA | publish --batch FILE.jsonl",
		Short: "Publish an event through the HTTP API (DATA is JSON, or - to read it from stdin)",
		Example: `  eddy publish chat:lobby new-post '{"text":"hi"}'
  echo '{"text":"hi"}' | eddy publish chat:lobby new-post -
  eddy publish --batch updates.jsonl     # one {"channel":..,"event":..,"data":..} per line`,
		Args: func(cmd *cobra.Command, args []string) error {
			if batchFile != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(3)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiFor(g)
			if err != nil {
				return err
			}
			if batchFile != "" {
				return publishBatchFile(cmd, c, batchFile, batchSize)
			}
			data := []byte(args[2])
			if args[2] == "-" {
				if data, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return fmt.Errorf("read data from stdin: %w", err)
				}
			}
			if !json.Valid(data) {
				return fmt.Errorf("data is not valid JSON: %s", strings.TrimSpace(string(data)))
			}
			id, err := c.Publish(cmd.Context(), args[0], args[1], json.RawMessage(data))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	cmd.Flags().StringVar(&batchFile, "batch", "", "publish every line of this JSON Lines file (- for stdin) through POST /api/v1/batch; prints one result per line")
	cmd.Flags().IntVar(&batchSize, "batch-size", 1000, "messages per request with --batch (at most the server's max_batch)")
	return cmd
}

func newSubscribeCmd(g *globals) *cobra.Command {
	var token string
	var presence bool
	cmd := &cobra.Command{
		Use:   "subscribe CHANNEL [CHANNEL...]",
		Short: "Print every message of the channels as one JSON line each, until interrupted",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, ch := range args {
				if err := protocol.ValidateChannel(ch); err != nil {
					return err
				}
			}
			t, err := resolveTarget(g)
			if err != nil {
				return err
			}
			if token == "" {
				if t.secret == "" {
					return fmt.Errorf("no token: pass --token or run where eddy.yaml holds the secret")
				}
				if token, err = auth.Mint([]byte(t.secret), auth.TokenSpec{Subject: "eddy-cli", Channels: args, KeyID: t.kid, App: t.app}); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			out := json.NewEncoder(cmd.OutOrStdout())
			lines := make(chan any, 1024)
			c, err := client.Dial(ctx, client.Config{
				URL: wsURL(t.base), Token: token,
				OnState: func(s client.State, err error) {
					if err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "eddy: %s: %v\n", s, err)
					}
				},
			})
			if err != nil {
				return err
			}
			defer c.Close()
			for _, ch := range args {
				opts := []client.SubscribeOption{
					client.WithHandler(func(m *client.Message) { lines <- m }),
					client.WithRecoverHandler(func(ok bool) {
						if !ok {
							fmt.Fprintf(cmd.ErrOrStderr(), "eddy: reconnected to %s; some messages could not be recovered\n", ch)
						}
					}),
				}
				if presence {
					opts = append(opts, client.WithPresenceHandler(func(ev client.PresenceEvent) { lines <- ev }))
				}
				_, err := c.Subscribe(ctx, ch, opts...)
				if err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "eddy: subscribed to %s\n", strings.Join(args, ", "))
			for {
				select {
				case <-ctx.Done():
					return nil
				case l := <-lines:
					if err := out.Encode(l); err != nil {
						return err
					}
				}
			}
		},
	}
	cmd.Flags().StringVar(&token, "token", os.Getenv("EDDY_TOKEN"), "client token (default: minted from the local config's secret)")
	cmd.Flags().BoolVar(&presence, "presence", false, "also print presence join and leave events (including this command's own join)")
	return cmd
}

func newHistoryCmd(g *globals) *cobra.Command {
	var since uint64
	var limit int
	cmd := &cobra.Command{
		Use:   "history CHANNEL",
		Short: "Print a channel's kept messages, one JSON line each",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit must be 0 (all kept) or more, got %d", limit)
			}
			c, err := apiFor(g)
			if err != nil {
				return err
			}
			h, err := c.History(cmd.Context(), args[0], since, limit)
			if err != nil {
				return err
			}
			out := json.NewEncoder(cmd.OutOrStdout())
			for _, m := range h.Messages {
				if err := out.Encode(m); err != nil {
					return err
				}
			}
			if h.HistorySize == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "history is off for %s (its namespace's history_size is 0); channel at epoch %s offset %d\n", args[0], h.Epoch, h.Offset)
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d messages; channel at epoch %s offset %d\n", len(h.Messages), h.Epoch, h.Offset)
			return nil
		},
	}
	cmd.Flags().Uint64Var(&since, "since", 0, "only messages after this offset")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many messages (0: all kept)")
	return cmd
}

func newPresenceCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "presence CHANNEL",
		Short: "List the members of a presence channel",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiFor(g)
			if err != nil {
				return err
			}
			p, err := c.Presence(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "USER\tCONN\tINFO")
			for _, m := range p.Members {
				fmt.Fprintf(w, "%s\t%s\t%s\n", m.User, m.Conn, string(m.Info))
			}
			return w.Flush()
		},
	}
}

func newInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "List the live nodes of the server or cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiFor(g)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			info, err := c.Info(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tCONNECTIONS\tSUBSCRIPTIONS\tUPTIME")
			for _, n := range info.Nodes {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", n.ID, n.Name, n.Connections, n.Subscriptions, time.Duration(n.UptimeS)*time.Second)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			return printAppInfo(cmd.OutOrStdout(), info.Nodes)
		},
	}
}
