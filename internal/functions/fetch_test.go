package functions_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/functions"
)

func deployFetch(t *testing.T, e *functions.Engine, name, src string, hosts ...string) {
	t.Helper()
	if err := e.PutFunction(context.Background(), functions.Function{Name: name, Runtime: "js", Source: src,
		TimeoutMS: 2000, AllowHosts: hosts}); err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
}

// fetchServer is a real local HTTP server: /echo answers the request as
// JSON, /big a body of ?n bytes, /redirect?to=URL redirects, /block never
// answers until the client gives up.
func fetchServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Seen", r.Header.Get("X-Key"))
			_, _ = io.WriteString(w, `{"method":"`+r.Method+`","body":`+quote(string(b))+`}`)
		case "/big":
			_, _ = io.WriteString(w, strings.Repeat("x", 2<<20))
		case "/redirect":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/block":
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// TestFetch: an async handler awaits ctx.fetch to a host on its allow
// list: method, headers and body go out, status, headers and body come
// back; a call's own timeout rejects its promise, which the function can
// catch.
func TestFetch(t *testing.T) {
	srv := fetchServer(t)
	e := newEngine(t, functions.Options{AllowPrivateURLs: true})
	deployFetch(t, e, "f", `async function handle(m, ctx) {
  var r = await ctx.fetch(m.data.url + "/echo", {method: "POST", headers: {"X-Key": "k1"}, body: {a: 1}});
  var j = await r.json();
  var timedOut = false;
  try { await ctx.fetch(m.data.url + "/block", {timeout: 50}) } catch (e) { timedOut = String(e.message).indexOf("timed out") >= 0 }
  m.data = {status: r.status, ok: r.ok, seen: r.headers["x-seen"], echo: j, timedOut: timedOut};
  return m
}`, "127.0.0.1")
	r := invoke(t, e, "f", `{"url":"`+srv.URL+`"}`)
	if r.Action != "pass" || string(r.Message.Data) != `{"status":200,"ok":true,"seen":"k1","echo":{"method":"POST","body":"{\"a\":1}"},"timedOut":true}` {
		t.Fatalf("got %s %s %q", r.Action, r.Message.Data, r.Reason)
	}
	// An async handler that throws rejects the message like a plain one.
	deployFetch(t, e, "thrower", `async function handle(m, ctx) { await ctx.fetch(m.data.url + "/echo"); throw new Error("no thanks") }`, "127.0.0.1")
	if r := invoke(t, e, "thrower", `{"url":"`+srv.URL+`"}`); r.Action != "reject" || r.Reason != "no thanks" {
		t.Fatalf("thrower: %s %q", r.Action, r.Reason)
	}
}

// TestFetchAbuseIsStopped: each way past ctx.fetch's bounds stops the
// invocation with a named error (a try/catch cannot hide it), counted in
// resource_limits_total: a host off the allow list (also as a redirect
// target), a name that resolves to a loopback address while private
// addresses are not allowed, too large a response, too many redirects or
// calls, and waiting past the invocation's time.
func TestFetchAbuseIsStopped(t *testing.T) {
	srv := fetchServer(t)
	u, _ := url.Parse(srv.URL)
	local := "http://localhost:" + u.Port()
	cases := []struct {
		name, body, want string
		private          bool
	}{
		{"host", `await ctx.fetch("http://example.com/")`, `fetch_refused: outbound HTTP target not allowed: host "example.com" is not in the function's allow_hosts`, true},
		{"scheme", `await ctx.fetch("file:///etc/passwd")`, "fetch_refused", true},
		{"redirect_host", `await ctx.fetch(U + "/redirect?to=" + encodeURIComponent("http://example.com/"))`, `host "example.com" is not in the function's allow_hosts`, true},
		{"loopback_name", `await ctx.fetch("` + local + `/echo")`, "fetch_refused: outbound HTTP target not allowed: address is not public", false},
		{"loopback_caught", `try { await ctx.fetch("` + local + `/echo") } catch (e) {} for (;;) {}`, "address is not public", false},
		{"big", `await ctx.fetch(U + "/big")`, "fetch_limit: function exceeded its outbound HTTP limits: response body over", true},
		{"redirects", `await ctx.fetch(U + "/loop")`, "fetch_limit: function exceeded its outbound HTTP limits: more than 3 redirects", true},
		{"calls", `for (;;) { try { await ctx.fetch(U + "/echo") } catch (e) {} }`, "fetch_limit: function exceeded its outbound HTTP limits: more than 8 calls", true},
		{"budget", `await ctx.fetch(U + "/block")`, "timeout: function timed out: no answer within the invocation's time", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			e := newEngine(t, functions.Options{Registerer: reg, AllowPrivateURLs: c.private})
			deployFetch(t, e, "f", `async function handle(m, ctx) { var U = m.data.url; `+c.body+`; return m }`, "127.0.0.1", "localhost")
			r := invoke(t, e, "f", `{"url":"`+srv.URL+`"}`)
			if r.Action != "error" || !strings.Contains(r.Reason, c.want) {
				t.Fatalf("got %s %q, want error %q", r.Action, r.Reason, c.want)
			}
			metric := "eddy_functions_resource_limits_total"
			if c.name == "budget" {
				metric = "eddy_functions_timeouts_total"
			}
			if n := counterValue(t, reg, metric, "f"); n != 1 {
				t.Fatalf("%s = %v, want 1", metric, n)
			}
		})
	}
}

// TestFetchAllowHostsValidated: allow_hosts entries must be host names or
// addresses, and only JS functions have them.
func TestFetchAllowHostsValidated(t *testing.T) {
	e := newEngine(t, functions.Options{})
	for _, h := range []string{"http://x.com", "x.com/path", "", "a b"} {
		err := e.PutFunction(context.Background(), functions.Function{Name: "f", Runtime: "js", Source: `function handle(m){return m}`, AllowHosts: []string{h}})
		if err == nil || !strings.Contains(err.Error(), "allow_hosts") {
			t.Errorf("%q: %v", h, err)
		}
	}
	err := e.PutFunction(context.Background(), functions.Function{Name: "h", Runtime: "http", URL: "https://x.com/", AllowHosts: []string{"x.com"}})
	if err == nil || !strings.Contains(err.Error(), "allow_hosts is for runtime js") {
		t.Errorf("http function with allow_hosts: %v", err)
	}
}
