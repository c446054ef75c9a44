package functions_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/httprt"
)

// fnServer is a real HTTP function endpoint that checks the signature and
// answers with reply(request).
func fnServer(t *testing.T, secret string, reply func(w http.ResponseWriter, req map[string]any)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !httprt.Verify([]byte(secret), body, r.Header.Get(httprt.SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(httprt.SignatureHeader))
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req map[string]any
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("bad request body %s", body)
		}
		reply(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func deployHTTP(t *testing.T, e *functions.Engine, name, url, secret string, timeoutMS int) {
	t.Helper()
	if err := e.PutFunction(context.Background(), functions.Function{Name: name, Runtime: "http", URL: url, Secret: secret, TimeoutMS: timeoutMS}); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPFunction(t *testing.T) {
	srv := fnServer(t, "s3cret", func(w http.ResponseWriter, req map[string]any) {
		if req["user"] != "u1" || req["info"].(map[string]any)["name"] != "Ada" {
			t.Errorf("request %v", req)
		}
		switch req["data"] {
		case "bad":
			io.WriteString(w, `{"action":"reject","reason":"not allowed"}`)
		case "drop":
			io.WriteString(w, `{"action":"drop"}`)
		default:
			io.WriteString(w, `{"action":"pass","message":{"data":"HELLO"},"publish":[{"channel":"audit","event":"seen","data":{"ok":true}}]}`)
		}
	})
	e := newEngine(t, functions.Options{AllowPrivateURLs: true}) // the function server is on loopback
	deployHTTP(t, e, "up", srv.URL, "s3cret", 0)
	associate(t, e, "chat:*", "", "up")
	m := msg("chat:a", `"hello"`)
	m.Info = json.RawMessage(`{"name":"Ada"}`)
	if got := summary(apply(t, e, m)); got != "chat:a message \"HELLO\"\naudit seen {\"ok\":true}\n" {
		t.Fatalf("got %q", got)
	}
	m.Data = json.RawMessage(`"drop"`)
	if got := summary(apply(t, e, m)); got != "" {
		t.Fatalf("drop got %q", got)
	}
	m.Data = json.RawMessage(`"bad"`)
	_, err := e.Apply(context.Background(), m)
	var rej *functions.RejectedError
	if !errors.As(err, &rej) || rej.Reason != "not allowed" {
		t.Fatalf("reject: %v", err)
	}
}

func TestHTTPFailures(t *testing.T) {
	badJSON := fnServer(t, "k", func(w http.ResponseWriter, _ map[string]any) { io.WriteString(w, `{"action":`) })
	status500 := fnServer(t, "k", func(w http.ResponseWriter, _ map[string]any) {
		w.WriteHeader(500)
		io.WriteString(w, `{"action":"drop"}`)
	})
	release := make(chan struct{})
	slow := fnServer(t, "k", func(w http.ResponseWriter, r map[string]any) { <-release })
	defer close(release) // before slow.Close, which waits for handlers

	// down accepts connections and closes them at once: every attempt is a
	// connection error, so the runtime retries.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepts atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })

	for _, c := range []struct{ name, url string }{
		{"bad json", badJSON.URL},
		{"status 500", status500.URL},
		{"slow", slow.URL},
		{"down", "http://" + ln.Addr().String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			e := newEngine(t, functions.Options{Registerer: reg, AllowPrivateURLs: true})
			// 50 ms makes the slow endpoint time out; the others get room
			// for every retry, whose count the down endpoint checks.
			timeout := 2000
			if c.name == "slow" {
				timeout = 50
			}
			deployHTTP(t, e, "f", c.url, "k", timeout)
			associate(t, e, "pass:*", "pass", "f")
			associate(t, e, "drop:*", "drop", "f")
			if got := summary(apply(t, e, msg("pass:a", `1`))); got != "pass:a message 1\n" {
				t.Fatalf("on_error pass got %q", got)
			}
			if got := summary(apply(t, e, msg("drop:a", `1`))); got != "" {
				t.Fatalf("on_error drop got %q", got)
			}
			if n := counterValue(t, reg, "eddy_functions_errors_total", "f"); n != 2 {
				t.Fatalf("errors = %v", n)
			}
			if c.name == "slow" {
				if n := counterValue(t, reg, "eddy_functions_timeouts_total", "f"); n != 2 {
					t.Fatalf("timeouts = %v", n)
				}
			}
		})
	}
	if n := accepts.Load(); n != 2*(1+httprt.Retries) {
		t.Fatalf("down endpoint saw %d connections, want %d", n, 2*(1+httprt.Retries))
	}
}
