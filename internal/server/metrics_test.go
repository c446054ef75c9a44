package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// metricsBody GETs base/metrics with key (none when empty) and returns the
// body, failing unless the status is 200.
func metricsBody(t *testing.T, base, key string) string {
	t.Helper()
	status, body := metricsGet(t, base, key)
	if status != http.StatusOK {
		t.Fatalf("GET %s/metrics: %d %s", base, status, body)
	}
	return body
}

func metricsGet(t *testing.T, base, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsNeedTheAPIKey: /metrics names functions and describes the
// process, so it answers only the API key: without it, or with another
// key, it is a 401 that reveals nothing.
func TestMetricsNeedTheAPIKey(t *testing.T) {
	s := servertest.StartNode(t)
	deploy(t, s, "secret-sauce", js(`function handle(m){ return m }`))
	associate(t, s, "ss:*", "", "secret-sauce")
	if _, err := s.API().Publish(t.Context(), "ss:1", "e", 1); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "wrong", servertest.AdminKey} {
		status, body := metricsGet(t, s.Base, key)
		if status != http.StatusUnauthorized || !strings.Contains(body, `"unauthorized"`) || strings.Contains(body, "secret-sauce") || strings.Contains(body, "eddy_") {
			t.Fatalf("/metrics with key %q: %d %s, want 401 and nothing revealed", key, status, body)
		}
	}
	if body := doRawBody(t, s.Base+"/metrics"); strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics without a key served metrics: %s", body)
	}
	body := metricsBody(t, s.Base, servertest.APIKey)
	if !strings.Contains(body, "eddy_connections") || !strings.Contains(body, "secret-sauce") {
		t.Fatalf("/metrics with the API key lacks the server's and the function's metrics:\n%s", body)
	}
}

// TestMetricsOnSeparateAPIListenerOnly: with api_listen, /metrics is not on
// the client listener at all, and on the API listener it takes the key.
func TestMetricsOnSeparateAPIListenerOnly(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.APIListen = "127.0.0.1:0" })
	if status, body := metricsGet(t, s.Base, servertest.APIKey); status == http.StatusOK || strings.Contains(body, "eddy_") {
		t.Fatalf("/metrics on the client listener: %d, want it absent", status)
	}
	if status, _ := metricsGet(t, s.APIBase(), ""); status != http.StatusUnauthorized {
		t.Fatalf("/metrics on the API listener without a key: %d, want 401", status)
	}
	if !strings.Contains(metricsBody(t, s.APIBase(), servertest.APIKey), "eddy_connections") {
		t.Fatal("no metrics on the API listener with the key")
	}
}
