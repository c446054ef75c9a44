package adminapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/adminapi"
)

type client struct {
	t   *testing.T
	url string
}

// do sends a request and decodes the JSON answer into a generic value.
func (c client) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			c.t.Fatalf("%s %s: non-JSON answer %q", method, path, raw)
		}
	}
	return resp.StatusCode, v
}

func TestAdminAPIRoundTrip(t *testing.T) {
	e, err := functions.New(functions.NewMemoryStore(), functions.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	srv := httptest.NewServer(adminapi.NewHandler(e, nil))
	defer srv.Close()
	c := client{t, srv.URL}

	code, v := c.do("PUT", "/api/v1/functions/up", `{"runtime":"js","source":"function handle(m, ctx){ m.data = m.data.toUpperCase() + ctx.env.SUFFIX; return m }","timeout_ms":50,"env":{"SUFFIX":"!"}}`)
	if code != 200 || v["name"] != "up" {
		t.Fatalf("deploy: %d %v", code, v)
	}
	code, v = c.do("PUT", "/api/v1/functions/up", `{"runtime":"js","source":"function handle(m) {\n  return m +\n}"}`)
	errObj, _ := v["error"].(map[string]any)
	if code != 400 || errObj["code"] != "bad_request" || !strings.Contains(errObj["message"].(string), "line 3") {
		t.Fatalf("syntax error deploy: %d %v", code, v)
	}
	code, v = c.do("PUT", "/api/v1/functions/hook", `{"runtime":"http","url":"http://127.0.0.1:1/","secret":"topsecret"}`)
	if code != 200 || v["secret"] != adminapi.SecretMask {
		t.Fatalf("deploy http: %d %v", code, v)
	}
	// Sending the mask back keeps the stored secret.
	c.do("PUT", "/api/v1/functions/hook", `{"runtime":"http","url":"http://127.0.0.1:2/","secret":"********"}`)
	if fn, _ := e.GetFunction(t.Context(), "hook"); fn.Secret != "topsecret" || fn.URL != "http://127.0.0.1:2/" {
		t.Fatalf("secret not kept: %+v", fn)
	}

	code, v = c.do("GET", "/api/v1/functions", "")
	list, _ := v["functions"].([]any)
	if code != 200 || len(list) != 2 || strings.Contains(mustJSON(v), "topsecret") {
		t.Fatalf("list: %d %v", code, v)
	}
	code, v = c.do("GET", "/api/v1/functions/up", "")
	if code != 200 || v["timeout_ms"] != 50.0 {
		t.Fatalf("get: %d %v", code, v)
	}
	if code, v = c.do("GET", "/api/v1/functions/nope", ""); code != 404 || v["error"].(map[string]any)["code"] != "not_found" {
		t.Fatalf("get missing: %d %v", code, v)
	}

	code, v = c.do("POST", "/api/v1/functions/up/invoke", `{"channel":"chat:a","event":"msg","data":"hi","user":"u1"}`)
	if code != 200 || v["action"] != "pass" || v["message"].(map[string]any)["data"] != "HI!" {
		t.Fatalf("invoke: %d %v", code, v)
	}

	if code, v = c.do("PUT", "/api/v1/associations", `{"pattern":"chat:*","functions":["nope"]}`); code != 400 {
		t.Fatalf("association with unknown function: %d %v", code, v)
	}
	if code, v = c.do("PUT", "/api/v1/associations", `{"pattern":"chat:*","functions":["up"],"on_error":"drop"}`); code != 200 {
		t.Fatalf("associate: %d %v", code, v)
	}
	code, v = c.do("GET", "/api/v1/associations", "")
	if as := v["associations"].([]any); code != 200 || len(as) != 1 || as[0].(map[string]any)["on_error"] != "drop" {
		t.Fatalf("list associations: %d %v", code, v)
	}
	out, err := e.Apply(t.Context(), functions.Message{Channel: "chat:x", Event: "m", Data: json.RawMessage(`"yo"`)})
	if err != nil || string(out[0].Data) != `"YO!"` {
		t.Fatalf("Apply after API setup: %v %v", out, err)
	}
	if code, v = c.do("DELETE", "/api/v1/functions/up", ""); code != 400 {
		t.Fatalf("delete function in use: %d %v", code, v)
	}
	if code, _ = c.do("DELETE", "/api/v1/associations?pattern=chat:*", ""); code != 204 {
		t.Fatalf("delete association: %d", code)
	}
	if code, _ = c.do("DELETE", "/api/v1/associations?pattern=chat:*", ""); code != 404 {
		t.Fatalf("delete association twice: %d", code)
	}
	if code, _ = c.do("DELETE", "/api/v1/functions/up", ""); code != 204 {
		t.Fatalf("delete function: %d", code)
	}
	if code, v = c.do("PUT", "/api/v1/functions/x", `{"runtime":"js","bogus":1}`); code != 400 {
		t.Fatalf("unknown field: %d %v", code, v)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
