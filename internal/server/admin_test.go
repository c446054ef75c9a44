package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// adminCall sends one admin API request with the given Authorization
// header (none when key is empty) and returns the status and error body.
func adminCall(t *testing.T, s *servertest.Server, method, path, auth string, body any) (int, api.ErrorDetail) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, s.APIBase()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb api.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb.Error
}

var adminEndpoints = []struct {
	method, path string
	body         any
}{
	{http.MethodGet, "/api/v1/functions", nil},
	{http.MethodPut, "/api/v1/functions/probe", map[string]any{"runtime": "js", "source": "function handle(m){ return m }"}},
	{http.MethodGet, "/api/v1/associations", nil},
	{http.MethodPut, "/api/v1/associations", map[string]any{"pattern": "probe:*", "functions": []string{"probe"}}},
}

// TestAdminAPIRefusesMissingWrongAndPublishKeys: the functions and
// associations endpoints open only to the admin key; the API key that
// publishes is refused like any wrong key, and nothing gets deployed.
func TestAdminAPIRefusesMissingWrongAndPublishKeys(t *testing.T) {
	s := servertest.StartNode(t)
	for _, ep := range adminEndpoints {
		for _, auth := range []string{"", "Bearer nope", "Bearer " + servertest.APIKey, servertest.AdminKey} {
			status, e := adminCall(t, s, ep.method, ep.path, auth, ep.body)
			if status != http.StatusUnauthorized || e.Code != "unauthorized" || !strings.Contains(e.Message, "admin key") {
				t.Errorf("%s %s with Authorization %q: %d %+v, want 401 unauthorized naming the admin key", ep.method, ep.path, auth, status, e)
			}
		}
	}
	var list struct {
		Functions []map[string]any `json:"functions"`
	}
	if err := s.Admin().Do(t.Context(), http.MethodGet, "/api/v1/functions", nil, &list); err != nil || len(list.Functions) != 0 {
		t.Fatalf("functions after refused deploys: %v %v, want none", list, err)
	}
	for _, ep := range adminEndpoints {
		if status, e := adminCall(t, s, ep.method, ep.path, "Bearer "+servertest.AdminKey, ep.body); status/100 != 2 {
			t.Fatalf("%s %s with the admin key: %d %+v", ep.method, ep.path, status, e)
		}
	}
}

// TestAdminKeyDeploysAndFunctionRuns: the admin key deploys a function
// the publish key could not, and it then runs on publishes.
func TestAdminKeyDeploysAndFunctionRuns(t *testing.T) {
	s := servertest.StartNode(t)
	fn := js(`function handle(m){ m.data = "seen:" + m.data; return m }`)
	if err := s.API().Do(t.Context(), http.MethodPut, "/api/v1/functions/tag", fn, nil); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("deploy with the API key: %v, want 401", err)
	}
	deploy(t, s, "tag", fn)
	associate(t, s, "tg:*", "", "tag")
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "tg:1"})
	if _, err := s.API().Publish(t.Context(), "tg:1", "e", "x"); err != nil {
		t.Fatal(err)
	}
	if m := ws.Expect("message"); m["data"] != "seen:x" {
		t.Fatalf("message %v, want the function's output", m)
	}
}

// TestAdminAPIOffWithoutAdminKey: with no admin_key the admin API does not
// fall back to the API key; it answers 403 admin_disabled saying how to
// turn it on, whatever key is sent.
func TestAdminAPIOffWithoutAdminKey(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) { c.AdminKey = "" })
	for _, ep := range adminEndpoints {
		for _, auth := range []string{"", "Bearer " + servertest.APIKey} {
			status, e := adminCall(t, s, ep.method, ep.path, auth, ep.body)
			if status != http.StatusForbidden || e.Code != "admin_disabled" || !strings.Contains(e.Message, "set admin_key") {
				t.Errorf("%s %s with Authorization %q: %d %+v, want 403 admin_disabled saying to set admin_key", ep.method, ep.path, auth, status, e)
			}
		}
	}
	// The rest of the API is unaffected.
	if _, err := s.API().Publish(t.Context(), "x", "e", 1); err != nil {
		t.Fatal(err)
	}
}
