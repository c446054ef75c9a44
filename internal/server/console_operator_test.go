package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/servertest"
)

// The console signs in with the operator key as well as the admin key:
// it opens the console's routes and the default app's admin API, with or
// without an admin_key, while the API key and an app's keys still do not.
func TestConsoleOperatorKey(t *testing.T) {
	for _, c := range []struct {
		name  string
		admin string
	}{{"with an admin_key", servertest.AdminKey}, {"without an admin_key", ""}} {
		t.Run(c.name, func(t *testing.T) {
			// A whole node, so the admin API has its functions.
			s := servertest.StartNode(t, func(cfg *config.Config) { cfg.OperatorKey = testOperatorKey; cfg.AdminKey = c.admin })
			app := createApp(t, s.APIBase(), "app-a", nil)
			for _, path := range []string{"/api/v1/stats", "/api/v1/channels", "/api/v1/connections", "/api/v1/functions"} {
				if status, _, raw := doRaw(t, "GET", s.Base+path, testOperatorKey, ""); status != http.StatusOK {
					t.Errorf("GET %s with the operator key: %d %s, want 200", path, status, raw)
				}
				for _, key := range []string{"", servertest.APIKey, app.APIKeys[0].Key, "eop_wrong"} {
					status, eb, raw := doRaw(t, "GET", s.Base+path, key, "")
					if status != http.StatusUnauthorized || eb.Error.Code != protocol.CodeUnauthorized || !strings.Contains(eb.Error.Message, "admin key") {
						t.Errorf("GET %s with key %q: %d %s, want 401 naming the admin key", path, key, status, raw)
					}
				}
			}
			if c.admin != "" {
				if status, _, raw := doRaw(t, "GET", s.Base+"/api/v1/stats", c.admin, ""); status != http.StatusOK {
					t.Errorf("stats with the admin key: %d %s", status, raw)
				}
				// The admin key still does not open the apps API.
				if st, b := call(t, http.MethodGet, s.APIBase()+"/api/v1/apps", c.admin, nil); st != http.StatusUnauthorized {
					t.Errorf("apps API with the admin key: %d %s, want 401", st, b)
				}
			}
		})
	}
}
