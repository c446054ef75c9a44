package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/functions"
)

func init() {
	extraCommands = append(extraCommands, newFunctionsCmd, newAssociationsCmd)
}

// adminClient is an API client with the admin key (EDDY_ADMIN_KEY or the
// config's admin_key). Without one it sends the API key, which the server
// refuses with a message saying to set admin_key.
func adminClient(g *globals) (*api.Client, error) {
	t, err := resolveTarget(g)
	if err != nil {
		return nil, err
	}
	c, err := t.api()
	if err != nil {
		return nil, err
	}
	// The admin key guards functions; the API key never opens them.
	if k := os.Getenv("EDDY_ADMIN_KEY"); k != "" {
		c.APIKey = k
	} else if t.adminKey != "" {
		c.APIKey = t.adminKey
	}
	return c, nil
}

func newFunctionsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "functions",
		Short: "Deploy and manage functions: middleware that sees every message of its channels",
		Long:  "Functions modify, enrich, filter or analyze messages between publish and delivery. See docs/functions.md.",
	}
	cmd.AddCommand(newFunctionsDeployCmd(g), newFunctionsListCmd(g), newFunctionsDeleteCmd(g), newFunctionsInvokeCmd(g), newFunctionsApplyCmd(g), newFunctionsLogsCmd(g))
	cmd.AddCommand(functionsDevCommands(g)...)
	return cmd
}

// wasmDeployHTTP is the admin client of deploys that carry WebAssembly: the
// server compiles the module before it answers, which for a Go module
// takes seconds, more on a busy node than the usual 10 s allow.
var wasmDeployHTTP = &http.Client{Timeout: 2 * time.Minute}

func newFunctionsDeployCmd(g *globals) *cobra.Command {
	var (
		timeout time.Duration
		env     []string
		fnURL   string
		secret  string
		hosts   []string
	)
	cmd := &cobra.Command{
		Use:   "deploy NAME [FILE.js|FILE.ts|FILE.wasm]",
		Short: "Deploy a JavaScript, TypeScript or WebAssembly function from a file, or an HTTP function with --url",
		Example: `  eddy functions deploy profanity examples/functions/profanity.js --timeout 50ms --env WORDS=darn,heck
  eddy functions deploy shout shout.wasm --env SUFFIX=!
  eddy functions deploy translate --url https://fn.example.com/translate --secret s3cret`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			fn := functions.Function{Name: args[0], TimeoutMS: int(timeout / time.Millisecond), AllowHosts: hosts}
			switch {
			case fnURL != "" && len(args) == 2:
				return fmt.Errorf("give a FILE.js or --url, not both")
			case fnURL != "":
				fn.Runtime, fn.URL, fn.Secret = functions.RuntimeHTTP, fnURL, secret
			case len(args) == 2 && strings.HasSuffix(args[1], ".wasm"):
				mod, err := os.ReadFile(args[1])
				if err != nil {
					return err
				}
				fn.Runtime, fn.Module = functions.RuntimeWasm, mod
			case len(args) == 2:
				src, err := os.ReadFile(args[1])
				if err != nil {
					return err
				}
				fn.Runtime, fn.Source = functions.RuntimeJS, string(src)
				if strings.HasSuffix(args[1], ".ts") {
					fn.Language = "ts" // transpiled by the server (docs/functions.md)
				}
			default:
				return fmt.Errorf("give a FILE.js to deploy, or --url for an HTTP function")
			}
			if len(env) > 0 {
				fn.Env = map[string]string{}
				for _, kv := range env {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return fmt.Errorf("--env %q: want KEY=VALUE", kv)
					}
					fn.Env[k] = v
				}
			}
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			if fn.Runtime == functions.RuntimeWasm {
				c.HTTP = wasmDeployHTTP
			}
			if err := c.Do(cmd.Context(), http.MethodPut, "/api/v1/functions/"+url.PathEscape(fn.Name), fn, nil); err != nil {
				return fmt.Errorf("deploy %s: %w", fn.Name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployed %s (%s)\n", fn.Name, fn.Runtime)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "time limit per invocation (default: 100ms for js, 500ms for http)")
	cmd.Flags().StringArrayVar(&env, "env", nil, "KEY=VALUE made available as ctx.env (repeatable)")
	cmd.Flags().StringVar(&fnURL, "url", "", "URL of an HTTP function")
	cmd.Flags().StringVar(&secret, "secret", "", "secret that signs requests to the HTTP function (X-Eddy-Signature)")
	cmd.Flags().StringArrayVar(&hosts, "allow-host", nil, "host ctx.fetch may reach, like api.example.com or *.example.com (repeatable)")
	return cmd
}

func newFunctionsListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List deployed functions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			fns, err := listFunctions(cmd, c)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tRUNTIME\tTIMEOUT_MS\tTARGET")
			for _, f := range fns {
				target := f.URL
				if f.Runtime == functions.RuntimeJS {
					target = fmt.Sprintf("%d bytes of JS", len(f.Source))
				}
				if f.Runtime == functions.RuntimeWasm {
					target = fmt.Sprintf("%d bytes of WebAssembly", len(f.Module))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Name, f.Runtime, effectiveTimeout(f), target)
			}
			return w.Flush()
		},
	}
}

// effectiveTimeout is the time limit a function runs with: its own, or the
// runtime's default when it set none (shown as such).
func effectiveTimeout(f functions.Function) string {
	if f.TimeoutMS > 0 {
		return strconv.Itoa(f.TimeoutMS)
	}
	d := functions.DefaultTimeout
	if f.Runtime == functions.RuntimeHTTP {
		d = functions.DefaultHTTPTimeout
	}
	return fmt.Sprintf("%d (default)", d.Milliseconds())
}

func newFunctionsDeleteCmd(g *globals) *cobra.Command {
	return adminDeleteCmd(g, "delete NAME", "Delete a function (remove it from associations first)",
		"/api/v1/functions/", "", "deleted %s\n")
}

// adminDeleteCmd is a command deleting one named item of the admin API at
// collection+NAME; what, when set, names it in an error ("delete what
// NAME: ..."); done is the line printed after, with the name.
func adminDeleteCmd(g *globals, use, short, collection, what, done string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), http.MethodDelete, collection+url.PathEscape(args[0]), nil, nil); err != nil {
				if what == "" {
					return err
				}
				return fmt.Errorf("delete %s %s: %w", what, args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), done, args[0])
			return nil
		},
	}
}

func newFunctionsInvokeCmd(g *globals) *cobra.Command {
	var channel, event, data, user string
	cmd := &cobra.Command{
		Use:     "invoke NAME",
		Short:   "Dry-run a function on a sample message and print what it would do",
		Example: `  eddy functions invoke profanity --channel chat:lobby --event msg --data '{"text":"darn it"}'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !json.Valid([]byte(data)) {
				return fmt.Errorf("--data is not valid JSON: %s", data)
			}
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			req := map[string]any{"channel": channel, "event": event, "data": json.RawMessage(data), "user": user}
			var out json.RawMessage
			if err := c.Do(cmd.Context(), http.MethodPost, "/api/v1/functions/"+url.PathEscape(args[0])+"/invoke", req, &out); err != nil {
				return err
			}
			var pretty any
			_ = json.Unmarshal(out, &pretty)
			return printJSON(cmd.OutOrStdout(), pretty)
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "test", "channel of the sample message")
	cmd.Flags().StringVar(&event, "event", "test", "event of the sample message")
	cmd.Flags().StringVar(&data, "data", "null", "JSON data of the sample message")
	cmd.Flags().StringVar(&user, "user", "", "publishing user of the sample message")
	return cmd
}

// newFunctionsApplyCmd deploys a directory: associations.json plus the
// function files it names. Functions and associations the directory does not
// name are only listed; removing them is destructive, so it takes --prune.
func newFunctionsApplyCmd(g *globals) *cobra.Command {
	var prune bool
	cmd := &cobra.Command{
		Use:   "apply DIR",
		Short: "Deploy the functions and associations of DIR/associations.json (--prune also removes the ones DIR does not name)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fns, assocs, err := functions.LoadDir(args[0])
			if err != nil {
				return err
			}
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			for _, f := range fns {
				if f.Runtime == functions.RuntimeWasm {
					c.HTTP = wasmDeployHTTP
				}
				if err := c.Do(ctx, http.MethodPut, "/api/v1/functions/"+url.PathEscape(f.Name), f, nil); err != nil {
					return fmt.Errorf("deploy %s: %w", f.Name, err)
				}
				fmt.Fprintf(out, "function %s deployed\n", f.Name)
			}
			for _, a := range assocs {
				if err := c.Do(ctx, http.MethodPut, "/api/v1/associations", a, nil); err != nil {
					return fmt.Errorf("associate %s: %w", a.Pattern, err)
				}
				fmt.Fprintf(out, "association %s -> %s\n", a.Pattern, strings.Join(a.Functions, ", "))
			}
			wantA := map[string]bool{}
			for _, a := range assocs {
				wantA[a.Pattern] = true
			}
			current, err := listAssociations(cmd, c)
			if err != nil {
				return err
			}
			for _, a := range current {
				if !wantA[a.Pattern] {
					if !prune {
						fmt.Fprintf(out, "association %s is not in %s: kept (--prune removes it)\n", a.Pattern, args[0])
						continue
					}
					if err := c.Do(ctx, http.MethodDelete, "/api/v1/associations?"+url.Values{"pattern": {a.Pattern}}.Encode(), nil, nil); err != nil {
						return err
					}
					fmt.Fprintf(out, "association %s removed\n", a.Pattern)
				}
			}
			wantF := map[string]bool{}
			for _, f := range fns {
				wantF[f.Name] = true
			}
			deployed, err := listFunctions(cmd, c)
			if err != nil {
				return err
			}
			for _, f := range deployed {
				if !wantF[f.Name] {
					if !prune {
						fmt.Fprintf(out, "function %s is not in %s: kept (--prune removes it)\n", f.Name, args[0])
						continue
					}
					if err := c.Do(ctx, http.MethodDelete, "/api/v1/functions/"+url.PathEscape(f.Name), nil, nil); err != nil {
						return err
					}
					fmt.Fprintf(out, "function %s removed\n", f.Name)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "also remove the deployed functions and associations that DIR does not name")
	return cmd
}

func listAssociations(cmd *cobra.Command, c *api.Client) ([]functions.Association, error) {
	var out struct {
		Associations []functions.Association `json:"associations"`
	}
	if err := c.Do(cmd.Context(), http.MethodGet, "/api/v1/associations", nil, &out); err != nil {
		return nil, err
	}
	return out.Associations, nil
}

func listFunctions(cmd *cobra.Command, c *api.Client) ([]functions.Function, error) {
	var out struct {
		Functions []functions.Function `json:"functions"`
	}
	if err := c.Do(cmd.Context(), http.MethodGet, "/api/v1/functions", nil, &out); err != nil {
		return nil, err
	}
	return out.Functions, nil
}

func newAssociationsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "associations",
		Short: "Attach functions to channel patterns",
	}
	var onError string
	set := &cobra.Command{
		Use:     "set PATTERN FN [FN...]",
		Short:   "Run the functions, in order, on every message of channels matching PATTERN",
		Example: `  eddy associations set 'chat:*' profanity bot --on-error pass`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			a := functions.Association{Pattern: args[0], Functions: args[1:], OnError: onError}
			if err := c.Do(cmd.Context(), http.MethodPut, "/api/v1/associations", a, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s (on_error %s)\n", a.Pattern, strings.Join(a.Functions, ", "), onError)
			return nil
		},
	}
	set.Flags().StringVar(&onError, "on-error", "pass", "when a function fails or times out: pass (continue) or drop (drop the message)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List associations in the order they run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			as, err := listAssociations(cmd, c)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PATTERN\tFUNCTIONS\tON_ERROR")
			for _, a := range as {
				fmt.Fprintf(w, "%s\t%s\t%s\n", a.Pattern, strings.Join(a.Functions, ","), a.OnError)
			}
			return w.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete PATTERN",
		Short: "Remove an association",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), http.MethodDelete, "/api/v1/associations?"+url.Values{"pattern": {args[0]}}.Encode(), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(set, list, del)
	return cmd
}
