package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// runEddy returns a runner of the CLI, in process, against s with an
// eddy.yaml holding the test server's secret and API key.
func runEddy(t *testing.T, s *servertest.Server) func(args ...string) (stdout, stderr string, err error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "eddy.yaml")
	yaml := fmt.Sprintf("secret: %q\napi_key: %q\n", servertest.Secret, servertest.APIKey)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, string, error) {
		root := newRootCmd()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append([]string{"--config", path, "--server", s.Base}, args...))
		err := root.ExecuteContext(context.Background())
		return out.String(), errOut.String(), err
	}
}

func TestHistoryCommand(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 5}
	})
	for i := 1; i <= 7; i++ {
		if _, err := s.API().Publish(context.Background(), "feed:1", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	run := runEddy(t, s)
	cases := []struct {
		args []string
		want string // the data of the printed messages
	}{
		{[]string{"history", "feed:1"}, "3 4 5 6 7"},
		{[]string{"history", "feed:1", "--limit", "2"}, "6 7"},
		{[]string{"history", "feed:1", "--since", "4"}, "5 6 7"},
		{[]string{"history", "feed:1", "--since", "3", "--limit", "2"}, "4 5"},
		{[]string{"history", "empty:1"}, ""},
	}
	for _, c := range cases {
		out, errOut, err := run(c.args...)
		if err != nil {
			t.Fatalf("eddy %s: %v\n%s", strings.Join(c.args, " "), err, errOut)
		}
		var data []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var m struct {
				Data   json.RawMessage `json:"data"`
				Offset uint64          `json:"offset"`
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("eddy %s printed %q: %v", strings.Join(c.args, " "), line, err)
			}
			data = append(data, string(m.Data))
		}
		if got := strings.Join(data, " "); got != c.want {
			t.Errorf("eddy %s: got %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
		if !strings.Contains(errOut, "offset") {
			t.Errorf("eddy %s: stderr %q does not give the channel's position", strings.Join(c.args, " "), errOut)
		}
	}
	if _, _, err := run("history", "bad channel"); err == nil || !strings.Contains(err.Error(), "bad_request") {
		t.Fatalf("bad channel name: %v", err)
	}
	for _, bad := range [][]string{{"--limit", "-1"}, {"--limit", "x"}, {"--since", "-1"}, {"--since", "abc"}} {
		if _, _, err := run(append([]string{"history", "feed:1"}, bad...)...); err == nil {
			t.Errorf("eddy history %s was accepted", strings.Join(bad, " "))
		}
	}
	if _, _, err := run("history"); err == nil {
		t.Fatal("history without a channel was accepted")
	}
}

func TestPresenceCommand(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["room"] = config.ChannelOptions{Presence: true}
	})
	run := runEddy(t, s)
	tok := servertest.Token(t, "dora", nil, nil)
	var conns []string
	for i := 0; i < 2; i++ {
		ws := servertest.Connect(t, s.WSURL, tok)
		ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:1"})
	}
	p, err := s.API().Presence(context.Background(), "room:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Members {
		conns = append(conns, m.Conn)
	}
	out, errOut, err := run("presence", "room:1")
	if err != nil {
		t.Fatalf("eddy presence: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "USER") {
		t.Fatalf("eddy presence printed:\n%s", out)
	}
	for _, c := range conns {
		if !strings.Contains(out, "dora") || !strings.Contains(out, c) {
			t.Fatalf("eddy presence misses connection %s:\n%s", c, out)
		}
	}
	if _, _, err := run("presence", "nopresence"); err == nil || !strings.Contains(err.Error(), "presence") {
		t.Fatalf("presence of a channel without it: %v", err)
	}
}
