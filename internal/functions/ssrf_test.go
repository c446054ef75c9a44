package functions_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eddyrt/eddy/internal/functions"
)

// TestHTTPFunctionsCannotReachPrivateAddresses: without allow_private_urls
// an HTTP function (or invoke) cannot reach loopback, private or link-local
// targets, whether named by address or by a name that resolves to one; the
// check runs on the address dialed, after DNS. With it, they can.
func TestHTTPFunctionsCannotReachPrivateAddresses(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"action":"pass"}`))
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]

	e := newEngine(t, functions.Options{})
	targets := map[string]string{
		"literal":    srv.URL,
		"name":       "http://localhost" + port,
		"link_local": "http://169.254.169.254/latest/meta-data/",
		"private":    "http://10.0.0.1" + port,
		"v6":         "http://[::1]" + port,
		"mapped":     "http://[::ffff:127.0.0.1]" + port,
	}
	for name, url := range targets {
		if err := e.PutFunction(context.Background(), functions.Function{Name: name, Runtime: "http", URL: url, TimeoutMS: 2000}); err != nil {
			t.Fatalf("deploy %s: %v", name, err)
		}
		r := invoke(t, e, name, `{}`)
		if r.Action != "error" || !strings.Contains(r.Reason, "not public") {
			t.Errorf("%s (%s): got %s %q, want refused as not public", name, url, r.Action, r.Reason)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server was reached %d times", n)
	}

	open := newEngine(t, functions.Options{AllowPrivateURLs: true})
	if err := open.PutFunction(context.Background(), functions.Function{Name: "name", Runtime: "http", URL: "http://localhost" + port}); err != nil {
		t.Fatal(err)
	}
	if r := invoke(t, open, "name", `{}`); r.Action != "pass" || hits.Load() != 1 {
		t.Fatalf("with allow_private_urls: %s %q, %d hits", r.Action, r.Reason, hits.Load())
	}
}
