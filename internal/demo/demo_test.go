package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/demo"
	"github.com/eddyrt/eddy/internal/functions"
)

const secret = "demo-test-secret-0123456789abcdef0123"

func newEngine(t *testing.T) *functions.Engine {
	t.Helper()
	e, err := functions.New(functions.NewMemoryStore(), functions.Options{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// serve mounts the demo handlers on a test server, as the eddy server would.
func serve(t *testing.T, cfg config.Config, engine *functions.Engine, logs *bytes.Buffer) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	log := slog.New(slog.NewTextHandler(logs, nil))
	for pattern, h := range demo.Handlers(cfg, log, engine) {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestHandlersWarnAndDeployProfanity(t *testing.T) {
	engine := newEngine(t)
	var logs bytes.Buffer
	serve(t, config.Config{Secret: secret}, engine, &logs)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "never enable --demo in production") {
		t.Fatalf("no loud warning in the log:\n%s", logs.String())
	}
	ctx := context.Background()
	fn, err := engine.GetFunction(ctx, "profanity")
	if err != nil || fn.Runtime != functions.RuntimeJS {
		t.Fatalf("profanity not deployed: %+v %v", fn, err)
	}
	assocs, _ := engine.ListAssociations(ctx)
	if len(assocs) != 1 || assocs[0].Pattern != "chat:*" || assocs[0].Functions[0] != "profanity" {
		t.Fatalf("associations = %+v", assocs)
	}
	out, err := engine.Apply(ctx, functions.Message{Channel: "chat:lobby", Event: "msg", Data: json.RawMessage(`{"text":"oh heck"}`)})
	if err != nil || len(out) != 1 || string(out[0].Data) != `{"text":"oh ***"}` {
		t.Fatalf("apply = %+v %v", out, err)
	}
}

func TestDeployProfanityKeepsExisting(t *testing.T) {
	engine := newEngine(t)
	ctx := context.Background()
	mine := functions.Function{Name: "profanity", Runtime: functions.RuntimeJS, Source: "function handle(m) { return m; }"}
	if err := engine.PutFunction(ctx, mine); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := demo.DeployProfanity(ctx, engine, log); err != nil {
		t.Fatal(err)
	}
	fn, _ := engine.GetFunction(ctx, "profanity")
	if fn.Source != mine.Source {
		t.Fatal("an existing profanity function was replaced")
	}
	if assocs, _ := engine.ListAssociations(ctx); len(assocs) != 0 {
		t.Fatalf("associations were added: %+v", assocs)
	}
}

func TestDeployProfanityLeavesChatAssociation(t *testing.T) {
	engine := newEngine(t)
	ctx := context.Background()
	other := functions.Function{Name: "other", Runtime: functions.RuntimeJS, Source: "function handle(m) { return m; }"}
	if err := engine.PutFunction(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := engine.PutAssociation(ctx, functions.Association{Pattern: "chat:*", Functions: []string{"other"}}); err != nil {
		t.Fatal(err)
	}
	if err := demo.DeployProfanity(ctx, engine, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	assocs, _ := engine.ListAssociations(ctx)
	if len(assocs) != 1 || strings.Join(assocs[0].Functions, ",") != "other" {
		t.Fatalf("the chat:* association was changed: %+v", assocs)
	}
}

func TestToken(t *testing.T) {
	srv := serve(t, config.Config{Secret: secret}, nil, &bytes.Buffer{})
	res, err := http.Post(srv.URL+"/demo/token", "application/json", strings.NewReader(`{"name":"  alice  "}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body demo.TokenResponse
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 200 {
		t.Fatalf("status %d, %v", res.StatusCode, err)
	}
	if body.ExpiresIn != 3600 {
		t.Errorf("expires_in = %d", body.ExpiresIn)
	}
	id, err := auth.NewVerifier([]byte(secret), []string{"*"}).Verify(body.Token)
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "alice" || !id.CanSubscribe("chat:lobby") || id.CanSubscribe("forum:x") || !id.CanPublish("chat:x") || id.CanPublish("news:x") {
		t.Fatalf("identity = %+v", id)
	}
	if string(id.Info) != `{"name":"alice"}` {
		t.Errorf("info = %s", id.Info)
	}
}

func TestTokenRefusesBadNames(t *testing.T) {
	srv := serve(t, config.Config{Secret: secret}, nil, &bytes.Buffer{})
	for _, body := range []string{`{"name":""}`, `{"name":"   "}`, `{"name":"` + strings.Repeat("x", 33) + `"}`, `{"name":"a\u0007b"}`, `not json`} {
		res, err := http.Post(srv.URL+"/demo/token", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", body, res.StatusCode)
		}
	}
}

func TestStaticPage(t *testing.T) {
	srv := serve(t, config.Config{Secret: secret}, nil, &bytes.Buffer{})
	for path, want := range map[string]string{"/demo/": `<script src="/eddy.js">`, "/demo/app.js": "/demo/token", "/demo/style.css": ".status"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: status %d, no %q", path, res.StatusCode, want)
		}
	}
}

// The history endpoint asks the server's own HTTP API, on the listener the
// request came in on, with the API key.
func TestHistoryUsesOwnAPI(t *testing.T) {
	var gotAuth, gotQuery string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/history", func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotQuery = r.Header.Get("Authorization"), r.URL.RawQuery
		_, _ = io.WriteString(w, `{"channel":"chat:lobby","epoch":"E","offset":1,"messages":[{"channel":"chat:lobby","event":"msg","data":{"text":"hi"},"id":"m1","ts":1,"offset":1,"epoch":"E","user":"bob"}]}`)
	})
	for pattern, h := range demo.Handlers(config.Config{Secret: secret, APIKey: "k1"}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil) {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/demo/history?room=lobby")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `"text":"hi"`) {
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	if gotAuth != "Bearer k1" || !strings.Contains(gotQuery, "channel=chat%3Alobby") || !strings.Contains(gotQuery, "limit=100") {
		t.Fatalf("API called with auth %q query %q", gotAuth, gotQuery)
	}

	res, err = http.Get(srv.URL + "/demo/history?room=a:b")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad room: status %d", res.StatusCode)
	}
}
