package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/bench"
	"github.com/eddyrt/eddy/internal/config"
)

func init() { extraCommands = append(extraCommands, newBenchCmd) }

func newBenchCmd(g *globals) *cobra.Command {
	var (
		o          bench.Options
		jsonPath   string
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "bench SCENARIO",
		Short: "Load-test a running server: " + strings.Join(bench.Scenarios, ", "),
		Long: `Load-test a running Eddy server over real sockets. Every run is bounded: it
opens the connections asked for, publishes or holds them for --duration, then
stops, printing a table (and with --json FILE, the figures as JSON).

Scenarios:
  connections  open --conns authenticated connections at --rate per second, each
               subscribed to a channel, hold them; connect rate and server memory
  fanout       --subscribers on one channel, --rate publishes per second through
               the HTTP API (or --from-client); delivered msgs/s, latency, loss
  channels     --channels channels with --subscribers each, publishes spread
  batch        --channels channels (default 5000) with --subscribers each
               (default 1), published through POST /api/v1/batch with --batch
               messages per request
  presence     --conns clients join one presence channel (--channel, default
               chat:bench-presence: its namespace needs presence and join_leave)
  functions    fanout through a one-line JS function the tool deploys and removes
  cluster      fanout over several nodes: repeat --ws and --api

Load goes only where --ws/--api point (default the local server of eddy.yaml).
The token secret and API key come from eddy.yaml unless given.`,
		Example: `  eddy bench connections --conns 15000 --rate 5000 --duration 30s
  eddy bench fanout --subscribers 1000 --rate 1000 --duration 20s --json fanout.json
  eddy bench batch --channels 5000 --batch 100 --rate 150000 --duration 10s
  eddy bench presence --conns 10000 --rate 1000
  eddy bench cluster --ws ws://127.0.0.1:8080/ws --ws ws://127.0.0.1:8081/ws --api http://127.0.0.1:8080 --api http://127.0.0.1:8081`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: bench.Scenarios,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Scenario = args[0]
			if o.Scenario == "batch" {
				// Many single-subscriber channels unless told otherwise.
				if !cmd.Flags().Changed("subscribers") {
					o.Subscribers = 1
				}
				if !cmd.Flags().Changed("channels") {
					o.Channels = 5000
				}
			}
			t, err := resolveTarget(g)
			if err != nil && (o.Secret == "" || o.APIKey == "") {
				return err
			}
			if o.Secret == "" {
				o.Secret = t.secret
			}
			if o.APIKey == "" {
				o.APIKey = t.apiKey
			}
			if o.AdminKey == "" {
				o.AdminKey = t.adminKey
			}
			if o.PusherKey == "" {
				o.PusherKey = t.pusher
			}
			if len(o.WS) == 0 && len(o.API) == 0 && t.base != "" {
				o.API = []string{t.base}
				o.WS = []string{wsURL(t.base)}
			}
			if len(o.WS) == 0 && len(o.API) > 0 {
				for _, a := range o.API {
					o.WS = append(o.WS, wsURL(strings.TrimRight(a, "/")))
				}
			}
			o.Command = strings.Join(os.Args, " ")
			o.Progress = cmd.ErrOrStderr()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			res, err := bench.Run(ctx, o)
			if res != nil {
				bench.WriteTable(cmd.OutOrStdout(), res)
				if jsonPath != "" {
					if werr := bench.WriteJSON(jsonPath, res); werr != nil {
						return werr
					}
					fmt.Fprintln(cmd.ErrOrStderr(), "wrote", jsonPath)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.WS, "ws", nil, "WebSocket URL of a node, repeatable (default from the config's listen address)")
	f.StringArrayVar(&o.API, "api", nil, "HTTP API base URL of a node, repeatable (default from --ws)")
	f.StringVar(&o.APIKey, "api-key", os.Getenv(config.EnvName("api_key")), "API key (default from the config)")
	f.StringVar(&o.AdminKey, "admin-key", "", "admin key for the functions scenario (default from the config, else the API key)")
	f.StringVar(&o.Secret, "secret", os.Getenv(config.EnvName("secret")), "token secret to mint client tokens (default from the config)")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to publish (or hold connections)")
	f.IntVar(&o.Conns, "conns", 1000, "connections (connections, presence)")
	f.Float64Var(&o.Rate, "rate", 0, "connect rate per second (connections, presence; 0: as fast as possible) or publish rate in msgs/s (default 1000)")
	f.IntVar(&o.Subscribers, "subscribers", 1000, "subscribers (per channel for channels)")
	f.IntVar(&o.Channels, "channels", 0, "channels (channels scenario; connections: distinct channels, default one per connection)")
	f.IntVar(&o.Batch, "batch", 100, "messages per POST /api/v1/batch (batch)")
	f.BoolVar(&o.FromClient, "from-client", false, "publish over WebSocket connections instead of the HTTP API")
	f.IntVar(&o.PubConns, "publishers", 0, "publisher connections or HTTP workers (default from --rate)")
	f.StringVar(&o.Channel, "channel", "chat:bench-presence", "presence channel")
	f.IntVar(&o.Concurrency, "dial-concurrency", 256, "connection attempts in flight")
	f.IntVar(&o.ReadBuffer, "read-buffer", 0, "subscriber read buffer in bytes (default 2 KiB for connections/presence, else 32 KiB)")
	f.DurationVar(&o.DrainWait, "drain-wait", 10*time.Second, "after publishing, how long delivery may stall before what is missing counts as lost")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "upper bound on the whole run")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "no progress line")
	f.StringVar(&o.Protocol, "protocol", "eddy", "subscribers' protocol: eddy, or pusher (Pusher protocol 7 at /app/{key}; fanout, channels, cluster)")
	f.StringVar(&o.PusherKey, "pusher-key", os.Getenv(config.EnvName("pusher_key")), "Pusher app key for --protocol pusher (default from the config)")
	f.StringVar(&jsonPath, "json", "", "also write the figures as JSON to this file")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the load tool's own CPU profile to this file")
	return cmd
}
