package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// Each app has its own functions and associations: app A's function runs
// on A's messages only, and each admin key sees its own app's functions.
func TestAppFunctionsAreSeparate(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) {
		c.OperatorKey = testOperatorKey
		c.Namespaces["chat"] = config.ChannelOptions{HistorySize: 10}
	})
	a := createApp(t, s.APIBase(), "app-a", chatNamespace)
	b := createApp(t, s.APIBase(), "app-b", chatNamespace)
	fn := map[string]any{"runtime": "js", "source": `function handle(m){ m.data.text = "A's function ran"; return m }`}
	if st, body := call(t, http.MethodPut, s.APIBase()+"/api/v1/functions/mark", a.AdminKey, fn); st/100 != 2 {
		t.Fatalf("deploy with A's admin key: %d %s", st, body)
	}
	if st, body := call(t, http.MethodPut, s.APIBase()+"/api/v1/associations", a.AdminKey, map[string]any{"pattern": "chat:*", "functions": []string{"mark"}}); st/100 != 2 {
		t.Fatalf("associate: %d %s", st, body)
	}
	for _, c := range []struct {
		key, text string
	}{{a.APIKeys[0].Key, "A's function ran"}, {b.APIKeys[0].Key, "untouched"}, {servertest.APIKey, "untouched"}} {
		if st, body := publishAs(t, s.APIBase(), c.key, "chat:lobby", "untouched"); st != http.StatusOK {
			t.Fatalf("publish: %d %s", st, body)
		}
		_, body := call(t, http.MethodGet, s.APIBase()+"/api/v1/history?channel=chat:lobby", c.key, nil)
		var h struct {
			Messages []struct{ Data struct{ Text string } }
		}
		if err := json.Unmarshal(body, &h); err != nil || len(h.Messages) != 1 || h.Messages[0].Data.Text != c.text {
			t.Fatalf("history: %s, want %q", body, c.text)
		}
	}
	for key, want := range map[string]bool{a.AdminKey: true, b.AdminKey: false, servertest.AdminKey: false} {
		st, body := call(t, http.MethodGet, s.APIBase()+"/api/v1/functions", key, nil)
		if st != http.StatusOK || bytes.Contains(body, []byte(`"mark"`)) != want {
			t.Fatalf("functions seen with an admin key: %d %s (want mark listed: %v)", st, body, want)
		}
	}
	// Deleting A removes its functions: a new A starts without them.
	call(t, http.MethodDelete, s.APIBase()+"/api/v1/apps/app-a", testOperatorKey, nil)
	a2 := createApp(t, s.APIBase(), "app-a", nil)
	if st, body := call(t, http.MethodGet, s.APIBase()+"/api/v1/functions", a2.AdminKey, nil); st != http.StatusOK || bytes.Contains(body, []byte(`"mark"`)) {
		t.Fatalf("functions of a re-created app: %d %s", st, body)
	}
}
