package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/api"
)

// eddy top: the console's overview in a terminal, fed by the same stats
// stream (GET /api/v1/stats?follow=1), redrawn in place with plain ANSI
// so it works over SSH without a TUI library.

func init() {
	extraCommands = append(extraCommands, newTopCmd)
}

func newTopCmd(g *globals) *cobra.Command {
	var (
		once       bool
		iterations int
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live view of the nodes, connections, rates, busiest channels and functions (takes the admin key)",
		Long: `eddy top shows what the web console's overview shows, in the terminal,
refreshed every second from the server's stats stream (GET /api/v1/stats?follow=1).
It takes the admin key (EDDY_ADMIN_KEY or the config's admin_key). Ctrl-C quits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			if once {
				iterations = 1
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			out := cmd.OutOrStdout()
			return runTop(ctx, c, out, iterations, isTerminal(out))
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "print one frame and exit (no screen clearing)")
	cmd.Flags().IntVar(&iterations, "iterations", 0, "exit after this many frames (0: until Ctrl-C)")
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// runTop reads the stats stream and draws a frame per event, until ctx
// ends, the stream ends, or iterations frames (>0) are drawn.
func runTop(ctx context.Context, c *api.Client, out io.Writer, iterations int, tty bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/api/v1/stats?follow=1", nil)
	if err != nil {
		return fmt.Errorf("top: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	// No client timeout: the stream is meant to stay open.
	res, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("top: connect to %s: %w", c.BaseURL, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var eb api.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			return fmt.Errorf("top: %s: %s", eb.Error.Code, eb.Error.Message)
		}
		return fmt.Errorf("top: the server answered %s", res.Status)
	}
	if tty {
		fmt.Fprint(out, "\x1b[?25l")       // hide the cursor while redrawing
		defer fmt.Fprint(out, "\x1b[?25h") // and give it back
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	frames := 0
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var st api.Stats
		if err := json.Unmarshal([]byte(data), &st); err != nil {
			return fmt.Errorf("top: a stats event that is not JSON: %w", err)
		}
		var frame strings.Builder
		if tty {
			frame.WriteString("\x1b[H\x1b[2J") // home, clear: redraw in place
		} else if frames > 0 {
			frame.WriteString("\n") // piped: frames one after the other
		}
		drawTop(&frame, c.BaseURL, st, tty)
		if _, err := io.WriteString(out, frame.String()); err != nil {
			return err
		}
		frames++
		if iterations > 0 && frames >= iterations {
			return nil
		}
	}
	if ctx.Err() != nil {
		return nil // Ctrl-C
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("top: stats stream: %w", err)
	}
	return fmt.Errorf("top: the server closed the stats stream")
}

// drawTop writes one frame of st.
func drawTop(w *strings.Builder, base string, st api.Stats, tty bool) {
	bold := func(s string) string {
		if tty {
			return "\x1b[1m" + s + "\x1b[0m"
		}
		return s
	}
	broker := "ready"
	if !st.Broker.Ready {
		broker = "UNAVAILABLE"
	}
	fmt.Fprintf(w, "%s  %s  %s broker %s  %s\n\n", bold("eddy top"), base, st.Broker.Kind, broker, time.UnixMilli(st.TimeMS).Format("15:04:05"))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tID\tUPTIME\tCONNECTIONS\tSUBSCRIPTIONS\tIN/S\tOUT/S\t")
	nodes := append([]api.NodeStats(nil), st.Nodes...)
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	var conns, subs int
	var in, outRate float64
	for _, n := range nodes {
		name := n.Name
		if n.Self {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f\t%.1f\t\n", name, n.ID, uptime(n.UptimeS), n.Connections, n.Subscriptions, n.MessagesInPerS, n.MessagesOutPerS)
		conns += n.Connections
		subs += n.Subscriptions
		in += n.MessagesInPerS
		outRate += n.MessagesOutPerS
	}
	plural := "s"
	if len(nodes) == 1 {
		plural = ""
	}
	fmt.Fprintf(tw, "total (%d node%s)\t\t\t%d\t%d\t%.1f\t%.1f\t\n", len(nodes), plural, conns, subs, in, outRate)
	_ = tw.Flush()

	fmt.Fprintf(w, "\n%s\n", bold("BUSIEST CHANNELS (this node)"))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tSUBSCRIBERS\tMSG/S\t")
	shown := 0
	for _, ch := range st.Busiest {
		if ch.PerS <= 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t\n", ch.Channel, ch.Subscribers, ch.PerS)
		shown++
	}
	if shown == 0 {
		fmt.Fprintln(tw, "(no messages in the last second)\t\t\t")
	}
	_ = tw.Flush()

	if len(st.Functions) > 0 {
		fmt.Fprintf(w, "\n%s\n", bold("FUNCTIONS (this node)"))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FUNCTION\tINVOCATIONS\tERRORS\tTIMEOUTS\tAVG MS\t")
		for _, f := range st.Functions {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t\n", f.Name, f.Invocations, f.Errors, f.Timeouts, f.AvgMS)
		}
		_ = tw.Flush()
	}
}

func uptime(s int64) string {
	d := time.Duration(s) * time.Second
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return d.String()
}
