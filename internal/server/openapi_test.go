package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/servertest"
)

// The OpenAPI description served at /api/v1/openapi.json (api/openapi.json)
// matches the real handlers: every documented route answers (no 404 for a
// missing route, no 405), and every route the server has is documented.
func TestOpenAPIDescribesTheRealRoutes(t *testing.T) {
	s := servertest.StartNode(t)
	resp, err := http.Get(s.APIBase() + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var spec struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&spec); err != nil || spec.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %v, version %q", err, spec.OpenAPI)
	}
	var documented []string
	for path, ops := range spec.Paths {
		for method, raw := range ops {
			method = strings.ToUpper(method)
			documented = append(documented, method+" "+path)
			key := servertest.APIKey
			if bytes.Contains(raw, []byte(`"adminKey"`)) {
				key = s.Config.AdminKey
			}
			url := s.APIBase() + strings.ReplaceAll(path, "{name}", "nosuchfunction")
			var body io.Reader
			if method == http.MethodPost || method == http.MethodPut {
				body = strings.NewReader(`{}`)
			}
			req, _ := http.NewRequest(method, url, body)
			req.Header.Set("Authorization", "Bearer "+key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusMethodNotAllowed || res.StatusCode == http.StatusUnauthorized ||
				bytes.Contains(b, []byte("no API endpoint")) || bytes.Contains(b, []byte("404 page not found")) {
				t.Errorf("documented %s %s does not answer: %d %s", method, path, res.StatusCode, b)
			}
		}
	}
	sort.Strings(documented)
	routes := s.APIRoutes()
	if strings.Join(routes, "\n") != strings.Join(documented, "\n") {
		t.Fatalf("routes and api/openapi.json differ:\nserved:\n  %s\ndocumented:\n  %s", strings.Join(routes, "\n  "), strings.Join(documented, "\n  "))
	}
}
