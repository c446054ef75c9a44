package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/internal/apps"
	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
)

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Write a new config file with a fresh secret, API key and admin key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := config.Init(g.configPath); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (mode 0600) with a fresh secret, API key and admin key\n", g.configPath)
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
		kid      string
		admin    bool
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint an HS256 client token signed with the configured secret (or an HS256 jwt_keys entry)",
		Example: `  eddy token --sub alice --ttl 1h --channel 'chat:*' --publish 'chat:*'
  eddy token --sub bob --info '{"name":"Bob"}'
  eddy token --sub carol --kid 2026-07   # signed with jwt_keys entry 2026-07
  eddy token --sub ops --admin           # may watch $admin:status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			app := ""
			if secret == "" && g.app != "" {
				t, err := resolveTarget(g)
				if err != nil {
					return err
				}
				secret, app = t.secret, t.app
				if kid == "" {
					kid = t.kid
				}
			} else if g.app != "" && g.app != apps.DefaultID {
				app = g.app // --secret and --kid given: sign as told
			}
			if secret == "" && app == "" {
				cfg, err := config.Load(g.configPath, nil)
				if err != nil {
					return err
				}
				if secret, err = signingSecret(cfg, kid); err != nil {
					return err
				}
			}
			if secret == "" {
				return fmt.Errorf("no secret: run 'eddy init' or pass --secret")
			}
			if ttl < 0 {
				return fmt.Errorf("--ttl %s is negative: the token would be expired already (0 means it never expires)", ttl)
			}
			spec := auth.TokenSpec{Subject: sub, TTL: ttl, Channels: channels, Publish: publish, KeyID: kid, Admin: admin, App: app}
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
	cmd.Flags().BoolVar(&admin, "admin", false, "add the admin claim: the token may subscribe to the status channel $admin:status (docs/operations.md)")
	cmd.Flags().StringVar(&kid, "kid", "", "sign with the HS256 jwt_keys entry of this kid and name it in the token (default: the secret, no kid)")
	_ = cmd.MarkFlagRequired("sub")
	return cmd
}

// signingSecret is the secret that signs tokens for kid: the secret for
// none, else the HS256 jwt_keys entry of that kid.
func signingSecret(cfg config.Config, kid string) (string, error) {
	if kid == "" {
		return cfg.Secret, nil
	}
	for _, k := range cfg.JWTKeys {
		if k.KID != kid {
			continue
		}
		if k.Alg != auth.AlgHS256 {
			return "", fmt.Errorf("--kid %s: key is %s; eddy mints only HS256 tokens (sign with the private key's owner)", kid, k.Alg)
		}
		return k.Secret, nil
	}
	return "", fmt.Errorf("--kid %s: no jwt_keys entry has this kid", kid)
}
