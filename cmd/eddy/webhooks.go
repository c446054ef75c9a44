package main

import (
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/internal/webhooks"
)

func init() { extraCommands = append(extraCommands, newWebhooksCmd) }

func newWebhooksCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "Add, list and delete webhook receivers (admin key)",
		Long:  "Webhooks POST signed events (channel_occupied, member_added, function_error, ...) to your endpoints. Receivers added here are kept by the cluster; those in eddy.yaml are listed too. See docs/webhooks.md.",
	}
	cmd.AddCommand(newWebhooksAddCmd(g), newWebhooksListCmd(g), newWebhooksDeleteCmd(g))
	return cmd
}

func newWebhooksAddCmd(g *globals) *cobra.Command {
	var (
		secret, format, key string
		events              []string
	)
	cmd := &cobra.Command{
		Use:   "add URL",
		Short: "Add a receiver; prints its id",
		Example: `  eddy webhooks add https://app.example.com/eddy-hooks --secret s3cret --events channel_occupied,channel_vacated
  eddy webhooks add https://app.example.com/pusher/webhooks --format pusher --key APP_KEY --secret APP_SECRET --events member_added,member_removed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			in := map[string]any{"url": args[0], "secret": secret, "events": events, "format": format, "key": key}
			var out webhooks.Listed
			if err := c.Do(cmd.Context(), http.MethodPost, "/api/v1/webhooks", in, &out); err != nil {
				return fmt.Errorf("add webhook: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s\n", out.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&secret, "secret", "", "secret that signs each POST (the app's Pusher secret with --format pusher)")
	cmd.Flags().StringSliceVar(&events, "events", nil, "events to send, comma-separated: "+strings.Join(webhookEventNames(), ", "))
	cmd.Flags().StringVar(&format, "format", "eddy", "eddy (X-Eddy-Signature) or pusher (Pusher's body and headers)")
	cmd.Flags().StringVar(&key, "key", "", "with --format pusher: the app's Pusher key, sent as X-Pusher-Key")
	return cmd
}

func webhookEventNames() []string {
	return []string{webhooks.ChannelOccupied, webhooks.ChannelVacated, webhooks.MemberAdded, webhooks.MemberRemoved,
		webhooks.FunctionError, webhooks.ConnectionLimit, webhooks.ClientEvent, webhooks.CacheMiss}
}

func newWebhooksListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the receivers in force (secrets masked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			var out struct {
				Webhooks []webhooks.Listed `json:"webhooks"`
			}
			if err := c.Do(cmd.Context(), http.MethodGet, "/api/v1/webhooks", nil, &out); err != nil {
				return fmt.Errorf("list webhooks: %w", err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSOURCE\tFORMAT\tURL\tEVENTS")
			for _, h := range out.Webhooks {
				format := h.Format
				if format == "" {
					format = "eddy"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", h.ID, h.Source, format, h.URL, strings.Join(h.Events, ","))
			}
			return w.Flush()
		},
	}
}

func newWebhooksDeleteCmd(g *globals) *cobra.Command {
	return adminDeleteCmd(g, "delete ID", "Delete a receiver added with add (those of eddy.yaml are removed there)",
		"/api/v1/webhooks/", "webhook", "deleted %s\n")
}
