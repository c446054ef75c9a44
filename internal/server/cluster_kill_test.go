package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/eddyrt/eddy/internal/servertest"
)

var (
	buildOnce sync.Once
	eddyBin   string
	buildErr  error
)

// eddyBinary builds cmd/eddy once per test run, for tests that need a real
// process to kill.
func eddyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "eddy-bin-")
		if err != nil {
			buildErr = err
			return
		}
		eddyBin = filepath.Join(dir, "eddy")
		out, err := exec.Command("go", "build", "-o", eddyBin, "github.com/eddyrt/eddy/cmd/eddy").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return eddyBin
}

// TestClusterNodeKilled: a node dies with SIGKILL. Its clients reconnect to
// another node and recover what they missed; its presence members expire;
// it leaves the node list.
func TestClusterNodeKilled(t *testing.T) {
	rs, nodes := cluster(t, 1)
	a := nodes[0]
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "eddy.yaml")
	addr := servertest.FreeAddr(t)
	yaml := fmt.Sprintf("secret: %q\napi_key: %q\ndata_dir: %q\nnamespaces:\n  chat: { history_size: 1000, presence: true, join_leave: true }\n",
		servertest.Secret, servertest.APIKey, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(eddyBinary(t), "serve", "--config", cfgPath, "--listen", addr, "--redis", rs.URL(),
		"--presence-ttl", "1s", "--node-ttl", "2s", "--node-name", "doomed")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	servertest.Eventually(t, "node C serving", func() bool { return status("http://"+addr+"/readyz") == 200 })
	ctx := context.Background()
	servertest.Eventually(t, "two nodes in info", func() bool {
		info, err := a.API().Info(ctx)
		return err == nil && len(info.Nodes) == 2
	})

	x := servertest.Connect(t, "ws://"+addr+"/ws", servertest.Token(t, "xavier", nil, nil))
	x.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room"})
	for i := 1; i <= 3; i++ {
		if _, err := a.API().Publish(ctx, "chat:room", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	var last servertest.Frame
	for n := 0; n < 3; {
		if f := x.Next(); f.Type() == "message" {
			last, n = f, n+1
		}
	}
	members := func() map[string]bool {
		p, err := a.API().Presence(ctx, "chat:room")
		if err != nil {
			t.Fatal(err)
		}
		users := map[string]bool{}
		for _, m := range p.Members {
			users[m.User] = true
		}
		return users
	}
	if !members()["xavier"] {
		t.Fatal("member on node C not visible from node A")
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for i := 4; i <= 6; i++ {
		if _, err := a.API().Publish(ctx, "chat:room", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	servertest.Eventually(t, "killed node's member expired", func() bool { return !members()["xavier"] })
	servertest.Eventually(t, "killed node left the node list", func() bool {
		info, err := a.API().Info(ctx)
		return err == nil && len(info.Nodes) == 1
	})

	// The client reconnects to the surviving node and recovers.
	y := servertest.Connect(t, a.WSURL, servertest.Token(t, "xavier", nil, nil))
	sub := y.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:room",
		"since": map[string]any{"epoch": last.Str("epoch"), "offset": last.Num("offset")}})
	if sub["recovered"] != true {
		t.Fatalf("recovery on the surviving node: %v\nnode C log:\n%s", sub, logs.String())
	}
	for off := 4; off <= 6; {
		f := y.Next()
		if f.Type() != "message" {
			continue
		}
		if int(f.Num("offset")) != off {
			t.Fatalf("recovered offset %v, want %d", f["offset"], off)
		}
		off++
	}
}
