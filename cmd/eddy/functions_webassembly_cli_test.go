package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/functions/wasmrt/wasmtest"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestFunctionsCLIWasm: `eddy functions deploy NAME file.wasm` uploads a
// module, `list` shows it as runtime wasm, `invoke` runs it, and `apply`
// deploys a directory whose associations.json names a .wasm file. The
// module is a tiny hand-assembled one (the Go example's compilation is
// tested with the server, in internal/server and internal/functions/wasmrt).
func TestFunctionsCLIWasm(t *testing.T) {
	s := servertest.StartNode(t)
	run := cliEnv(t, s)
	dir := t.TempDir()
	mod := filepath.Join(dir, "shout.wasm")
	if err := os.WriteFile(mod, wasmtest.ConstModule(`{"action":"reject","reason":"said no"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	manifest := `{"functions": {"loud": {"file": "shout.wasm", "timeout_ms": 5000, "max_memory_mb": 48}},
		"associations": [{"pattern": "loud:*", "functions": ["loud"]}]}`
	if err := os.WriteFile(filepath.Join(dir, "associations.json"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, st := range []struct {
		args []string
		want string
	}{
		{[]string{"functions", "deploy", "shout", mod, "--timeout", "5s"}, "deployed shout (wasm)"},
		{[]string{"functions", "list"}, "bytes of WebAssembly"},
		{[]string{"functions", "invoke", "shout", "--channel", "c:1", "--event", "e", "--data", `{"text":"hey"}`}, `said no`},
		{[]string{"functions", "apply", dir}, "function loud deployed"},
		{[]string{"functions", "invoke", "loud", "--channel", "loud:1", "--event", "e", "--data", `{"text":"a"}`}, `said no`},
	} {
		out, err := run(st.args...)
		if err != nil || !strings.Contains(out, st.want) {
			t.Fatalf("eddy %s: %v\n%s\nwant %q", strings.Join(st.args, " "), err, out, st.want)
		}
	}
	out, _ := run("functions", "list")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "shout ") && !strings.Contains(line, " wasm ") {
			t.Fatalf("list shows shout without runtime wasm:\n%s", out)
		}
	}
	bad := filepath.Join(dir, "bad.wasm")
	_ = os.WriteFile(bad, []byte("not a module"), 0o600)
	if out, err := run("functions", "deploy", "bad", bad); err == nil || !strings.Contains(err.Error(), "not a WebAssembly binary") {
		t.Fatalf("deploying a bad module: %v %s", err, out)
	}
}
