package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
)

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Write a new config file with a fresh secret and API key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := config.Init(g.configPath); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (mode 0600) with a fresh secret and API key\n", g.configPath)
			return nil
		},
	}
}

func newTokenCmd(g *globals) *cobra.Command {
	var (
		sub      string
		ttl      time.Duration
		channels []string
		publish  []string
		info     string
		secret   string
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint an HS256 client token signed with the configured secret",
		Example: `  eddy token --sub alice --ttl 1h --channel 'chat:*' --publish 'chat:*'
  eddy token --sub bob --info '{"name":"Bob"}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if secret == "" {
				cfg, err := config.Load(g.configPath, nil)
				if err != nil {
					return err
				}
				secret = cfg.Secret
			}
			if secret == "" {
				return fmt.Errorf("no secret: run 'eddy init' or pass --secret")
			}
			if ttl < 0 {
				return fmt.Errorf("--ttl %s is negative: the token would be expired already (0 means it never expires)", ttl)
			}
			spec := auth.TokenSpec{Subject: sub, TTL: ttl, Channels: channels, Publish: publish}
			if info != "" {
				if !json.Valid([]byte(info)) {
					return fmt.Errorf("--info is not valid JSON: %s", info)
				}
				spec.Info = json.RawMessage(info)
			}
			for _, p := range append(append([]string(nil), channels...), publish...) {
				if err := auth.ValidatePattern(p); err != nil {
					return err
				}
			}
			tok, err := auth.Mint([]byte(secret), spec)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&sub, "sub", "", "user id (the sub claim; required)")
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "lifetime (0: never expires)")
	cmd.Flags().StringSliceVar(&channels, "channel", nil, "channel pattern the token may subscribe to (repeatable; default: the server's default_channels)")
	cmd.Flags().StringSliceVar(&publish, "publish", nil, "channel pattern the token may publish to (repeatable; default none)")
	cmd.Flags().StringVar(&info, "info", "", "JSON shown to others in presence")
	cmd.Flags().StringVar(&secret, "secret", "", "secret to sign with (default: from the config)")
	_ = cmd.MarkFlagRequired("sub")
	return cmd
}
