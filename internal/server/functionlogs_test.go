package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

type logLine struct {
	Time    string `json:"time"`
	Level   string `json:"level"`
	Message string `json:"message"`
	Node    string `json:"node"`
}

// functionLogs reads GET /api/v1/functions/{name}/logs with key.
func functionLogs(t testing.TB, s *servertest.Server, name, key string) (int, []logLine) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.APIBase()+"/api/v1/functions/"+name+"/logs", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Function string    `json:"function"`
		Lines    []logLine `json:"lines"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Function != name || body.Lines == nil {
			t.Fatalf("logs of %s: %v %+v", name, err, body)
		}
	}
	return resp.StatusCode, body.Lines
}

// deployLogger deploys a function that logs each message's data, and
// fails (returns no message) when the data is "fail".
func deployLogger(t testing.TB, s *servertest.Server, name, pattern string) {
	t.Helper()
	ctx := context.Background()
	src := `function handle(m, ctx){ ctx.log("got", m.data); if (m.data === "fail") return 42; return m }`
	if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/functions/"+name, map[string]any{"runtime": "js", "source": src}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/associations", map[string]any{"pattern": pattern, "functions": []string{name}}, nil); err != nil {
		t.Fatal(err)
	}
}

// ctx.log lines and failures land in the function's ring, which keeps the
// last function_log_lines; the endpoint takes the admin key only.
func TestFunctionLogsKeepTheLastLines(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) { c.FunctionLogLines = 5 })
	deployLogger(t, s, "logger", "log:*")
	ctx := context.Background()
	for i := 1; i <= 8; i++ {
		if _, err := s.API().Publish(ctx, "log:x", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.API().Publish(ctx, "log:x", "e", "fail"); err != nil {
		t.Fatal(err)
	}
	status, lines := functionLogs(t, s, "logger", servertest.AdminKey)
	if status != http.StatusOK || len(lines) != 5 {
		t.Fatalf("logs: %d, %d lines %+v; want the last 5", status, len(lines), lines)
	}
	// 9 messages made 9 info lines and one error: the ring keeps the last 5.
	want := []string{"got 6", "got 7", "got 8", "got fail"}
	for i, w := range want {
		if lines[i].Message != w || lines[i].Level != "info" || lines[i].Node != s.NodeID() {
			t.Fatalf("line %d: %+v, want info %q from %s", i, lines[i], w, s.NodeID())
		}
		if _, err := time.Parse(time.RFC3339Nano, lines[i].Time); err != nil {
			t.Fatalf("line %d time %q: %v", i, lines[i].Time, err)
		}
	}
	if last := lines[4]; last.Level != "error" || !strings.Contains(last.Message, "log:x") {
		t.Fatalf("last line %+v: want the failure, at level error, naming the channel", last)
	}
	if status, _ := functionLogs(t, s, "logger", servertest.APIKey); status != http.StatusUnauthorized {
		t.Fatalf("logs with the API key: %d, want 401", status)
	}
	if status, _ := functionLogs(t, s, "-bad", servertest.AdminKey); status != http.StatusBadRequest {
		t.Fatalf("logs of a bad name: %d, want 400", status)
	}
	// A long line is cut, not kept whole.
	if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/functions/long", map[string]any{"runtime": "js", "source": `function handle(m, ctx){ ctx.log("x".repeat(100000)); return m }`}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Admin().Do(ctx, http.MethodPost, "/api/v1/functions/long/invoke", map[string]any{"channel": "c", "data": 1}, nil); err != nil {
		t.Fatal(err)
	}
	_, lines = functionLogs(t, s, "long", servertest.AdminKey)
	if len(lines) != 1 || len(lines[0].Message) > 4096 {
		t.Fatalf("a 100,000-byte ctx.log line: %d lines, %d bytes kept", len(lines), len(lines[0].Message))
	}
}

// followLogs opens the follow stream and returns its lines as they come.
func followLogs(t testing.TB, s *servertest.Server, name string) <-chan logLine {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.APIBase()+"/api/v1/functions/"+name+"/logs?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+servertest.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("follow: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan logLine, 1000)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var l logLine
			// The console reads exactly these four fields.
			if err := json.Unmarshal([]byte(data), &l); err != nil || l.Time == "" || l.Node == "" || (l.Level != "info" && l.Level != "error") {
				l = logLine{Level: "bad", Message: data}
			}
			out <- l
		}
	}()
	return out
}

func nextLine(t testing.TB, lines <-chan logLine) logLine {
	t.Helper()
	select {
	case l := <-lines:
		if l.Level == "bad" {
			t.Fatalf("malformed follow event %q", l.Message)
		}
		return l
	case <-time.After(servertest.Timeout):
		t.Fatalf("no log line within %s", servertest.Timeout)
		return logLine{}
	}
}

// follow=1 sends the kept lines, then each new line as it is written.
func TestFunctionLogsFollowStreamsNewLines(t *testing.T) {
	s := servertest.StartNode(t)
	deployLogger(t, s, "logger", "log:*")
	ctx := context.Background()
	if _, err := s.API().Publish(ctx, "log:x", "e", "before"); err != nil {
		t.Fatal(err)
	}
	lines := followLogs(t, s, "logger")
	if l := nextLine(t, lines); l.Message != "got before" {
		t.Fatalf("first streamed line %+v: want the kept one", l)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.API().Publish(ctx, "log:x", "e", i); err != nil {
			t.Fatal(err)
		}
		if l := nextLine(t, lines); l.Message != fmt.Sprintf("got %d", i) || l.Level != "info" {
			t.Fatalf("live line %d: %+v", i, l)
		}
	}
	if _, err := s.API().Publish(ctx, "log:x", "e", "fail"); err != nil {
		t.Fatal(err)
	}
	nextLine(t, lines) // its ctx.log line
	if l := nextLine(t, lines); l.Level != "error" {
		t.Fatalf("after a failure: %+v, want an error line", l)
	}
}

// In a cluster over Redis every node's lines reach every node: the logs
// read through one node hold the lines of functions run on the other, and
// a follower on one node sees lines written on the other live.
func TestFunctionLogsMergeAcrossNodes(t *testing.T) {
	rs := redistest.Start(t)
	nodes := clusterOn(t, rs, 2)
	a, b := nodes[0], nodes[1]
	deployLogger(t, a, "logger", "log:*")
	ctx := context.Background()
	// B applies the deployment once the change notice reached it.
	servertest.Eventually(t, "node B runs the function deployed through A", func() bool {
		if _, err := b.API().Publish(ctx, "log:x", "e", "probe"); err != nil {
			t.Fatal(err)
		}
		_, lines := functionLogs(t, b, "logger", servertest.AdminKey)
		return len(lines) > 0
	})
	follow := followLogs(t, a, "logger")
	if _, err := a.API().Publish(ctx, "log:x", "e", "on-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.API().Publish(ctx, "log:x", "e", "on-b"); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "node A's follower gets B's line", func() bool {
		select {
		case l := <-follow:
			return l.Message == "got on-b" && l.Node == b.NodeID()
		default:
			return false
		}
	})
	servertest.Eventually(t, "each node's logs hold both nodes' lines", func() bool {
		for _, s := range nodes {
			_, lines := functionLogs(t, s, "logger", servertest.AdminKey)
			var fromA, fromB bool
			for _, l := range lines {
				fromA = fromA || (l.Message == "got on-a" && l.Node == a.NodeID())
				fromB = fromB || (l.Message == "got on-b" && l.Node == b.NodeID())
			}
			if !fromA || !fromB {
				return false
			}
		}
		return true
	})
}
