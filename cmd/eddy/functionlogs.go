package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/api"
)

// logLine is one line of GET /api/v1/functions/{name}/logs.
type logLine struct {
	Time    string `json:"time"`
	Level   string `json:"level"`
	Message string `json:"message"`
	Node    string `json:"node"`
}

func (l logLine) String() string {
	return fmt.Sprintf("%s %s %-5s %s", l.Time, l.Node, l.Level, l.Message)
}

func newFunctionsLogsCmd(g *globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a function's recent ctx.log lines and failures, from every node (-f: then follow new ones)",
		Example: `  eddy functions logs profanity
  eddy functions logs profanity -f`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			path := "/api/v1/functions/" + url.PathEscape(args[0]) + "/logs"
			out := cmd.OutOrStdout()
			if !follow {
				var resp struct {
					Lines []logLine `json:"lines"`
				}
				if err := c.Do(cmd.Context(), http.MethodGet, path, nil, &resp); err != nil {
					return err
				}
				for _, l := range resp.Lines {
					fmt.Fprintln(out, l)
				}
				return nil
			}
			return followLogs(cmd.Context(), c, path+"?follow=1", out)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines as they are written (Ctrl-C stops)")
	return cmd
}

// followLogs prints the lines of a follow stream until ctx ends (nil) or
// the server ends the stream (an error, so scripts notice).
func followLogs(ctx context.Context, c *api.Client, path string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	req.Header.Set("Accept", "text/event-stream")
	// No client timeout: the stream lasts as long as the operator wants.
	hc := &http.Client{}
	if c.HTTP != nil {
		hc.Transport = c.HTTP.Transport
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("follow logs: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var eb api.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			return &api.Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &api.Error{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue // comments and blank lines between events
		}
		var l logLine
		if err := json.Unmarshal(data, &l); err != nil {
			return fmt.Errorf("follow logs: bad event %q: %w", data, err)
		}
		fmt.Fprintln(out, l)
	}
	if ctx.Err() != nil {
		return nil // the operator stopped it
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("follow logs: %w", err)
	}
	return errors.New("follow logs: the server ended the stream (shutting down?)")
}
