package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/secrets"
	"github.com/eddyrt/eddy/internal/functions/templates"
	"github.com/eddyrt/eddy/internal/protocol"
)

// functionsDevCommands are the functions subcommands for writing
// functions: new (from a template), test (locally, no server) and secrets.
func functionsDevCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{newFunctionsNewCmd(), newFunctionsTestCmd(), newFunctionsSecretsCmd(g)}
}

func newFunctionsNewCmd() *cobra.Command {
	var tmpl, dir string
	cmd := &cobra.Command{
		Use:   "new NAME --template " + strings.Join(templates.Names(), "|"),
		Short: "Write NAME.js from a template and NAME.test.json, a message to try it with",
		Example: `  eddy functions new moderate --template filter
  eddy functions test moderate
  eddy functions deploy moderate moderate.js --env WORDS=darn,heck`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !functions.ValidName(name) {
				return fmt.Errorf("invalid function name %q: use 1-64 characters from A-Z a-z 0-9 _ . - (not starting with . or -)", name)
			}
			t, err := templates.Get(tmpl)
			if err != nil {
				return err
			}
			src, msg := filepath.Join(dir, name+".js"), filepath.Join(dir, name+".test.json")
			for _, p := range []string{src, msg} {
				if _, err := os.Stat(p); err == nil {
					return fmt.Errorf("%s already exists; remove it or pick another name", p)
				}
			}
			if err := os.WriteFile(src, t.Source, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(msg, t.Message, 0o644); err != nil {
				return err
			}
			deploy := strings.NewReplacer("NAME", name, "FILE", src).Replace(t.Deploy)
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\ntry it:   eddy functions test %s\ndeploy:   %s\n", src, msg, src, deploy)
			return nil
		},
	}
	cmd.Flags().StringVar(&tmpl, "template", "", "template: "+strings.Join(templates.Names(), ", "))
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write the files in")
	_ = cmd.MarkFlagRequired("template")
	return cmd
}

// testMessage is the message `functions test` runs: NAME.test.json's format.
type testMessage struct {
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	User    string          `json:"user"`
	Info    json.RawMessage `json:"info"`
}

func newFunctionsTestCmd() *cobra.Command {
	var (
		data, dataFile, channel, user string
		env, secretKVs, allowHosts    []string
		timeout                       time.Duration
		allowPrivate                  bool
		runs                          int
	)
	cmd := &cobra.Command{
		Use:   "test NAME|FILE",
		Short: "Run a function locally, without a server, on a test message; print what it did",
		Long: `Runs FILE (or NAME.js / NAME.ts) in the same sandbox as the server (time,
memory and output limits, KV in memory, ctx.fetch to allow_hosts only) on
the message in --data, --data-file or NAME.test.json, and prints the result:
the action (pass, drop, reject, error), the message passed on and the messages
published. ctx.log lines go to stderr. Exits non-zero when the function fails.`,
		Example: `  eddy functions test moderate
  eddy functions test moderate.ts --data '{"text":"hello"}'
  eddy functions test translate.js --env TRANSLATE_URL=http://localhost:9000/ --allow-host localhost --allow-private --secret TRANSLATE_KEY=k-0123456789`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := functionFile(args[0])
			if err != nil {
				return err
			}
			src, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
			msg := testMessage{Channel: "test:1", Event: "message"}
			switch {
			case data != "" && dataFile != "":
				return errors.New("give --data or --data-file, not both")
			case data != "":
				msg.Data = json.RawMessage(data)
			default:
				p := dataFile
				if p == "" {
					p = strings.TrimSuffix(file, filepath.Ext(file)) + ".test.json"
				}
				raw, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("no test message: give --data JSON, or --data-file, or write %s (%w)", p, err)
				}
				if err := json.Unmarshal(raw, &msg); err != nil {
					return fmt.Errorf("%s: want {\"channel\", \"event\", \"data\"}: %w", p, err)
				}
			}
			if !json.Valid(msg.Data) {
				return errors.New("the test message's data is not JSON")
			}
			if channel != "" {
				msg.Channel = channel
			}
			if user != "" {
				msg.User = user
			}
			fn := functions.Function{Name: functionName(base), Runtime: functions.RuntimeJS, Source: string(src),
				TimeoutMS: int(timeout / time.Millisecond), AllowHosts: allowHosts}
			if strings.HasSuffix(file, ".ts") {
				fn.Language = "ts"
			}
			if fn.Env, err = parseKVs("--env", env); err != nil {
				return err
			}
			sec, err := parseKVs("--secret", secretKVs)
			if err != nil {
				return err
			}
			return runLocal(cmd, fn, msg, sec, allowPrivate, max(runs, 1))
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "the message's data, as JSON (default: NAME.test.json's message)")
	f.StringVar(&dataFile, "data-file", "", "a file holding the test message {channel, event, data}")
	f.StringVar(&channel, "channel", "", "the message's channel (default: the test file's, else test:1)")
	f.StringVar(&user, "user", "", "the publisher's user id (message.user)")
	f.StringArrayVar(&env, "env", nil, "KEY=VALUE made available as ctx.env (repeatable)")
	f.StringArrayVar(&secretKVs, "secret", nil, "NAME=VALUE made available as ctx.secrets.NAME (repeatable; kept in memory only)")
	f.StringArrayVar(&allowHosts, "allow-host", nil, "host ctx.fetch may reach (repeatable)")
	f.BoolVar(&allowPrivate, "allow-private", false, "let ctx.fetch reach loopback and private addresses (a local mock API)")
	f.DurationVar(&timeout, "timeout", 0, "time limit per invocation (default 100ms, as on the server)")
	f.IntVar(&runs, "runs", 1, "run the message this many times (ctx.kv keeps its values between runs); the last result is printed")
	return cmd
}

// functionFile finds the file of arg: a path, or NAME.js or NAME.ts.
func functionFile(arg string) (string, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return arg, nil
	}
	for _, ext := range []string{".js", ".ts"} {
		if _, err := os.Stat(arg + ext); err == nil {
			return arg + ext, nil
		}
	}
	return "", fmt.Errorf("no file %s, %s.js or %s.ts", arg, arg, arg)
}

// functionName turns a file's base name into a valid function name.
func functionName(base string) string {
	if functions.ValidName(base) {
		return base
	}
	return "test"
}

func parseKVs(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// runLocal deploys fn into an engine of its own (memory store, memory KV,
// an in-memory vault) and dry-runs msg through it.
func runLocal(cmd *cobra.Command, fn functions.Function, msg testMessage, sec map[string]string, allowPrivate bool, runs int) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	vault, err := secrets.New(ctx, config.NewSecretsKey(), secrets.NewMemoryStore())
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := functions.New(functions.NewMemoryStore(), functions.Options{
		Logger: log, ValidChannel: protocol.ValidateChannel, AllowPrivateURLs: allowPrivate, Secrets: vault,
	})
	if err != nil {
		return err
	}
	defer e.Close()
	for k, v := range sec {
		if err := e.SetSecret(ctx, k, v); err != nil {
			return fmt.Errorf("--secret %s: %w", k, err)
		}
	}
	if err := e.PutFunction(ctx, fn); err != nil {
		return err // names the line of a syntax error
	}
	var res functions.InvokeResult
	for range runs {
		res, err = e.Invoke(ctx, fn.Name, functions.Message{Channel: msg.Channel, Event: msg.Event, Data: msg.Data, User: msg.User, Info: msg.Info})
		if err != nil {
			return err
		}
	}
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s\n", out)
	if res.Action == "error" {
		return fmt.Errorf("function failed: %s", res.Reason)
	}
	return nil
}

func newFunctionsSecretsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage the secrets functions read as ctx.secrets.NAME (stored encrypted; values are never shown)",
	}
	var value string
	set := &cobra.Command{
		Use:   "set NAME",
		Short: "Store a secret; the value is read from stdin unless --value is given",
		Example: `  printf %s "$STRIPE_KEY" | eddy functions secrets set STRIPE_KEY
  eddy functions secrets set STRIPE_KEY --value sk_live_...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := value
			if !cmd.Flags().Changed("value") {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), secrets.MaxValueBytes+2))
				if err != nil {
					return fmt.Errorf("read the value from stdin: %w", err)
				}
				v = strings.TrimRight(string(b), "\r\n") // echo adds a newline
			}
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), http.MethodPut, "/api/v1/secrets/"+url.PathEscape(args[0]), map[string]string{"value": v}, nil); err != nil {
				return fmt.Errorf("set secret %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "secret %s set\n", args[0])
			return nil
		},
	}
	set.Flags().StringVar(&value, "value", "", "the value (visible in the shell's history and process list: prefer stdin)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the secrets' names",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			var out struct {
				Secrets []string `json:"secrets"`
			}
			if err := c.Do(cmd.Context(), http.MethodGet, "/api/v1/secrets", nil, &out); err != nil {
				return fmt.Errorf("list secrets: %w", err)
			}
			for _, n := range out.Secrets {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
	del := adminDeleteCmd(g, "delete NAME", "Remove a secret", "/api/v1/secrets/", "secret", "secret %s deleted\n")
	cmd.AddCommand(set, list, del)
	return cmd
}
