package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/apps"
	"github.com/eddyrt/eddy/internal/config"
)

// The apps commands manage apps through the apps API with the operator key
// (operator_key in the config, or EDDY_OPERATOR_KEY); --app ID makes the
// client commands act as that app, with the keys the operator key reads.

func init() {
	extraCommands = append(extraCommands, newAppsCmd)
}

// operatorClient is an API client holding the operator key.
func operatorClient(g *globals) (*api.Client, error) {
	cfg, err := config.Load(g.configPath, nil)
	if err != nil {
		return nil, err
	}
	t, err := resolveTarget(&globals{configPath: g.configPath, configNamed: g.configNamed, server: g.server})
	if err != nil {
		return nil, err
	}
	if cfg.OperatorKey == "" {
		return nil, fmt.Errorf("no operator key: set operator_key in the config or EDDY_OPERATOR_KEY")
	}
	return api.NewClient(t.base, cfg.OperatorKey), nil
}

// appKeys is GET /api/v1/apps/{id}/keys.
type appKeys struct {
	JWTKeys   []apps.JWTKey `json:"jwt_keys"`
	APIKeys   []apps.Key    `json:"api_keys"`
	AdminKeys []apps.Key    `json:"admin_keys"`
}

// useApp points t at app id: its newest keys, read with the operator key.
// Keys given by environment (EDDY_API_KEY, EDDY_ADMIN_KEY) or flags still
// win, so the CLI works as an app without the operator key too.
func (t *target) useApp(g *globals, id string) error {
	t.app = id
	if id == "" || id == apps.DefaultID {
		t.app = ""
		return nil
	}
	c, err := operatorClient(g)
	if err != nil {
		if k := os.Getenv("EDDY_API_KEY"); k != "" {
			t.apiKey, t.adminKey, t.secret = k, os.Getenv("EDDY_ADMIN_KEY"), ""
			return nil
		}
		return fmt.Errorf("--app %s: %w (or set EDDY_API_KEY to the app's API key)", id, err)
	}
	var k appKeys
	if err := c.Do(context.Background(), http.MethodGet, "/api/v1/apps/"+url.PathEscape(id)+"/keys", nil, &k); err != nil {
		return fmt.Errorf("--app %s: %w", id, err)
	}
	t.apiKey, t.adminKey, t.secret, t.kid = "", "", "", ""
	if n := len(k.APIKeys); n > 0 {
		t.apiKey = k.APIKeys[n-1].Key
	}
	if n := len(k.AdminKeys); n > 0 {
		t.adminKey = k.AdminKeys[n-1].Key
	}
	if n := len(k.JWTKeys); n > 0 {
		t.secret, t.kid = k.JWTKeys[n-1].Secret, k.JWTKeys[n-1].ID
	}
	if v := os.Getenv("EDDY_API_KEY"); v != "" {
		t.apiKey = v
	}
	return nil
}

func newAppsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "Manage apps (isolated applications on this deployment) with the operator key",
		Example: `  eddy apps create shop --name "Shop"   # prints its keys, shown this once
  eddy apps list
  eddy apps keys add shop --kind jwt       # rotation: add, roll out, retire
  eddy apps keys retire shop KEY_ID
  eddy --app shop token --sub alice        # a token of app shop`,
	}
	do := func(method, path string, in, out any) error {
		c, err := operatorClient(g)
		if err != nil {
			return err
		}
		return c.Do(context.Background(), method, path, in, out)
	}
	appPath := func(id string) string { return "/api/v1/apps/" + url.PathEscape(id) }
	var name string
	create := &cobra.Command{
		Use: "create ID", Short: "Create an app and print its keys (shown in full this once)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"id": args[0]}
			if name != "" {
				body["name"] = name
			}
			var out map[string]any
			if err := do(http.MethodPost, "/api/v1/apps", body, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	create.Flags().StringVar(&name, "name", "", "display name (default: the id)")
	list := &cobra.Command{
		Use: "list", Short: "List the apps", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Apps []struct {
					ID, Name string
					Limits   apps.Limits
				}
			}
			if err := do(http.MethodGet, "/api/v1/apps", nil, &out); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tMAX_CONNECTIONS\tMAX_PUBLISH_RATE")
			for _, a := range out.Apps {
				fmt.Fprintf(w, "%s\t%s\t%d\t%g\n", a.ID, a.Name, a.Limits.MaxConnections, a.Limits.MaxPublishRate)
			}
			return w.Flush()
		},
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show an app (keys masked)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			if err := do(http.MethodGet, appPath(args[0]), nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	del := &cobra.Command{
		Use: "delete ID", Short: "Delete an app: its clients are closed (4011, no reconnect), its channels and functions removed", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := do(http.MethodDelete, appPath(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted app %s\n", args[0])
			return nil
		},
	}
	keys := &cobra.Command{Use: "keys", Short: "Add, list and retire an app's keys (rotation without downtime)"}
	var kind string
	add := &cobra.Command{
		Use: "add ID --kind api|jwt|admin", Short: "Add a fresh key and print it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			if err := do(http.MethodPost, appPath(args[0])+"/keys", map[string]string{"kind": kind}, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	add.Flags().StringVar(&kind, "kind", "", "api, jwt or admin")
	_ = add.MarkFlagRequired("kind")
	klist := &cobra.Command{
		Use: "list ID", Short: "List an app's keys (masked)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				JWTKeys   []apps.JWTKey `json:"jwt_keys"`
				APIKeys   []apps.Key    `json:"api_keys"`
				AdminKeys []apps.Key    `json:"admin_keys"`
			}
			if err := do(http.MethodGet, appPath(args[0]), nil, &out); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KIND\tID\tKEY")
			for _, k := range out.JWTKeys {
				fmt.Fprintf(w, "jwt\t%s\t%s\n", k.ID, k.Secret)
			}
			for _, k := range out.APIKeys {
				fmt.Fprintf(w, "api\t%s\t%s\n", k.ID, k.Key)
			}
			for _, k := range out.AdminKeys {
				fmt.Fprintf(w, "admin\t%s\t%s\n", k.ID, k.Key)
			}
			return w.Flush()
		},
	}
	retire := &cobra.Command{
		Use: "retire ID KEY_ID", Short: "Retire a key (the last of its kind stays)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := do(http.MethodDelete, appPath(args[0])+"/keys/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "retired key %s of app %s\n", args[1], args[0])
			return nil
		},
	}
	keys.AddCommand(add, klist, retire)
	cmd.AddCommand(create, list, show, del, keys)
	return cmd
}

// printAppInfo prints the asking app's figures on each node, when the
// server gives them.
func printAppInfo(out io.Writer, nodes []api.NodeInfo) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	header := false
	for _, n := range nodes {
		if n.Apps == nil {
			continue
		}
		for _, a := range *n.Apps {
			if !header {
				fmt.Fprintln(w, "\nNODE\tAPP\tCONNECTIONS\tSUBSCRIPTIONS\tPUBLISHED\tMSGS/S")
				header = true
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%.1f\n", n.ID, a.ID, a.Connections, a.Subscriptions, a.Published, a.PublishRate)
		}
	}
	return w.Flush()
}
