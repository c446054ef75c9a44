// Command eddy is the Eddy real-time messaging server and its command-line
// tools. This package only wires commands to the internal packages.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "eddy:", err)
		os.Exit(1)
	}
}

// globals are the flags every command shares.
type globals struct {
	configPath string
	// configNamed is true when the user named the config file (--config or
	// EDDY_CONFIG): then a missing file is an error, never silently created.
	configNamed bool
	server      string // base URL of a running server, for client commands
	app         string // --app: act as this app (cmd/eddy/apps.go)
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "eddy",
		Short: "Eddy: self-hosted real-time messaging (WebSocket pub/sub with functions)",
		Long: `Eddy pushes events from your application's backend to browsers the instant they happen.

Browsers hold one WebSocket to Eddy and subscribe to channels with a JWT your
backend signed; the backend publishes with one HTTP call.

Start here:
  eddy serve                      run a server (creates eddy.yaml on first run)
  eddy token --sub alice          mint a client token
  eddy subscribe chat:lobby       print a channel's messages
  eddy publish chat:lobby hi '{"text":"hello"}'`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate(versionInfo() + "\n")
	root.PersistentFlags().StringVar(&g.configPath, "config", envOr("EDDY_CONFIG", "eddy.yaml"), "config file (EDDY_CONFIG)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		g.configNamed = cmd.Flags().Changed("config") || os.Getenv("EDDY_CONFIG") != ""
		if g.configNamed && cmd.Name() != "init" {
			if _, err := os.Stat(g.configPath); errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("config file %s does not exist; create it with 'eddy init --config %s'", g.configPath, g.configPath)
			}
		}
		return nil
	}
	root.PersistentFlags().StringVar(&g.server, "server", os.Getenv("EDDY_SERVER"), "base URL of the server for client commands (default from the config's listen address; EDDY_SERVER)")
	root.PersistentFlags().StringVar(&g.app, "app", os.Getenv("EDDY_APP"), "act as this app: its keys sign tokens and call the API (found with the operator key; EDDY_APP)")
	root.AddCommand(
		newServeCmd(g),
		newInitCmd(g),
		newTokenCmd(g),
		newPublishCmd(g),
		newSubscribeCmd(g),
		newHistoryCmd(g),
		newPresenceCmd(g),
		newInfoCmd(g),
	)
	for _, add := range extraCommands {
		root.AddCommand(add(g))
	}
	return root
}

// extraCommands lets feature files register their commands from init.
var extraCommands []func(*globals) *cobra.Command

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
