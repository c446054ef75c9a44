package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

func deploy(t *testing.T, s *servertest.Server, name string, fn map[string]any) {
	t.Helper()
	if err := s.Admin().Do(context.Background(), http.MethodPut, "/api/v1/functions/"+name, fn, nil); err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
}

func associate(t *testing.T, s *servertest.Server, pattern string, onError string, fns ...string) {
	t.Helper()
	a := map[string]any{"pattern": pattern, "functions": fns}
	if onError != "" {
		a["on_error"] = onError
	}
	if err := s.Admin().Do(context.Background(), http.MethodPut, "/api/v1/associations", a, nil); err != nil {
		t.Fatalf("associate %s: %v", pattern, err)
	}
}

func js(src string) map[string]any { return map[string]any{"runtime": "js", "source": src} }

// TestFunctionsOverRealSockets: every function behaviour as a publisher and
// a subscriber see it, through client publishes and the HTTP API.
func TestFunctionsOverRealSockets(t *testing.T) {
	s := servertest.StartNode(t)
	deploy(t, s, "upper", js(`function handle(m){ m.data.text = m.data.text.toUpperCase(); return m }`))
	deploy(t, s, "mark", js(`function handle(m){ m.data.text = m.data.text + "!"; return m }`))
	deploy(t, s, "filter", js(`function handle(m){ return m.data.text === "spam" ? null : m }`))
	deploy(t, s, "guard", js(`function handle(m, ctx){ if (m.data.text === "bad") ctx.reject("no bad words"); return m }`))
	deploy(t, s, "thrower", js(`function handle(m){ if (m.data.text === "boom") throw new Error("kaboom"); return m }`))
	deploy(t, s, "echo", js(`function handle(m, ctx){ ctx.publish("log:" + m.channel, "seen", {text: m.data.text}); return m }`))
	deploy(t, s, "loop", js(`function handle(m, ctx){ ctx.publish(m.channel, "again", m.data); return m }`))
	deploy(t, s, "spin", map[string]any{"runtime": "js", "source": `function handle(m){ while(true){} }`, "timeout_ms": 50})
	deploy(t, s, "hop", js(`function handle(m){ m.channel = "elsewhere"; return m }`))
	associate(t, s, "room:*", "", "filter", "guard", "thrower", "upper", "mark", "echo")
	associate(t, s, "loop:*", "", "loop")
	associate(t, s, "slow:pass", "pass", "spin")
	associate(t, s, "slow:drop", "drop", "spin")
	associate(t, s, "hop:*", "", "hop")

	sub := servertest.Connect(t, s.WSURL, servertest.Token(t, "reader", nil, nil))
	for i, ch := range []string{"room:1", "log:room:1", "loop:1", "slow:pass", "slow:drop"} {
		sub.Request(map[string]any{"type": "subscribe", "id": i + 1, "channel": ch})
	}
	pub := servertest.Connect(t, s.WSURL, servertest.Token(t, "writer", nil, []string{"*"}))
	publish := func(id int, ch, text string) servertest.Frame {
		return pub.Request(map[string]any{"type": "publish", "id": id, "channel": ch, "event": "say", "data": map[string]string{"text": text}})
	}

	t.Run("modify in chain order, and emit", func(t *testing.T) {
		if f := publish(1, "room:1", "hi"); f.Type() != "ack" {
			t.Fatalf("publish: %v", f)
		}
		got := map[string]servertest.Frame{}
		for len(got) < 2 {
			m := sub.Expect("message")
			got[m.Str("channel")] = m
		}
		if text := got["room:1"]["data"].(map[string]any)["text"]; text != "HI!" {
			t.Fatalf("modified text %v, want HI! (upper then mark)", text)
		}
		if got["log:room:1"].Str("event") != "seen" {
			t.Fatalf("emitted message %v", got["log:room:1"])
		}
	})
	t.Run("drop is silent to the publisher and invisible to subscribers", func(t *testing.T) {
		if f := publish(2, "room:1", "spam"); f.Type() != "ack" {
			t.Fatalf("publish of a dropped message: %v", f)
		}
		// A sentinel after it: the subscriber's next messages are the
		// sentinel's (on room:1 and its echo on log:room:1), never the spam.
		if f := publish(20, "room:1", "sentinel"); f.Type() != "ack" {
			t.Fatalf("publish of the sentinel: %v", f)
		}
		got := map[string]string{}
		for len(got) < 2 {
			m := sub.Expect("message")
			got[m.Str("channel")] = fmt.Sprint(m["data"].(map[string]any)["text"])
		}
		if got["room:1"] != "SENTINEL!" || got["log:room:1"] != "SENTINEL!" {
			t.Fatalf("after a dropped message the subscriber got %v, want only the sentinel", got)
		}
	})
	t.Run("reject reaches a client publisher", func(t *testing.T) {
		f := publish(3, "room:1", "bad")
		if f.Str("code") != "rejected" || f.Str("message") != "no bad words" {
			t.Fatalf("rejected publish: %v", f)
		}
		if f := publish(4, "room:1", "boom"); f.Str("code") != "rejected" {
			t.Fatalf("thrown error: %v, want rejected", f)
		}
	})
	t.Run("reject reaches an HTTP publisher with 422", func(t *testing.T) {
		_, err := s.API().Publish(context.Background(), "room:1", "say", map[string]string{"text": "bad"})
		if !isStatus(err, 422) || err.(*api.Error).Code != "rejected" || err.(*api.Error).Message != "no bad words" {
			t.Fatalf("HTTP publish of a rejected message: %v", err)
		}
	})
	t.Run("changing the channel is refused", func(t *testing.T) {
		if f := publish(5, "hop:1", "x"); f.Str("code") != "bad_request" {
			t.Fatalf("channel change: %v", f)
		}
	})
	t.Run("timeout: on_error pass keeps the message, drop drops it", func(t *testing.T) {
		if f := publish(6, "slow:drop", "x"); f.Type() != "ack" {
			t.Fatalf("publish: %v", f)
		}
		if f := publish(7, "slow:pass", "y"); f.Type() != "ack" {
			t.Fatalf("publish: %v", f)
		}
		m := sub.Expect("message")
		if m.Str("channel") != "slow:pass" {
			t.Fatalf("got %v; the dropped, spam and rejected messages must not arrive", m)
		}
	})
	t.Run("emitted messages loop only to the depth limit", func(t *testing.T) {
		if f := publish(8, "loop:1", "x"); f.Type() != "ack" {
			t.Fatalf("publish: %v", f)
		}
		// Original plus emits at depths 1..3.
		for i := 0; i < 4; i++ {
			if m := sub.Expect("message"); m.Str("channel") != "loop:1" {
				t.Fatalf("got %v", m)
			}
		}
		if f := sub.Request(map[string]any{"type": "ping", "id": 99}); f.Type() != "pong" {
			t.Fatalf("more messages than the depth limit allows: %v", f)
		}
	})
}

func TestHTTPFunctionWithSignature(t *testing.T) {
	const secret = "fn-secret"
	var calls int
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if r.Header.Get("X-Eddy-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		calls++
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		m["data"] = map[string]any{"translated": m["data"]}
		_ = json.NewEncoder(w).Encode(map[string]any{"action": "pass", "message": m})
	}))
	defer fn.Close()
	// The function server is on loopback, which functions may only reach with allow_private_urls.
	s := servertest.StartNode(t, func(c *config.Config) { c.AllowPrivateURLs = true })
	deploy(t, s, "translate", map[string]any{"runtime": "http", "url": fn.URL, "secret": secret})
	deploy(t, s, "forged", map[string]any{"runtime": "http", "url": fn.URL, "secret": "wrong"})
	associate(t, s, "intl:*", "", "translate")
	associate(t, s, "forged:*", "drop", "forged")
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "intl:fr"})
	ws.Request(map[string]any{"type": "subscribe", "id": 2, "channel": "forged:x"})
	if _, err := s.API().Publish(context.Background(), "forged:x", "e", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.API().Publish(context.Background(), "intl:fr", "e", "bonjour"); err != nil {
		t.Fatal(err)
	}
	m := ws.Expect("message")
	if m.Str("channel") != "intl:fr" || m["data"].(map[string]any)["translated"] != "bonjour" {
		t.Fatalf("got %v (a failing function with on_error drop must drop its message)", m)
	}
}

func TestFunctionsSurviveRestartAndInvokeDryRun(t *testing.T) {
	dir := t.TempDir()
	s1 := servertest.StartNode(t, func(c *config.Config) { c.DataDir = dir })
	deploy(t, s1, "tag", js(`function handle(m){ m.data = {tagged: m.data}; return m }`))
	associate(t, s1, "t:*", "", "tag")
	var bad api.ErrorBody
	err := s1.Admin().Do(context.Background(), http.MethodPut, "/api/v1/functions/tag", js("function handle(m) {\n  return m +\n}"), &bad)
	if !isStatus(err, 400) {
		t.Fatalf("deploying a syntax error: %v", err)
	}
	if err := s1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := servertest.StartNode(t, func(c *config.Config) { c.DataDir = dir })
	var res struct {
		Action  string         `json:"action"`
		Message map[string]any `json:"message"`
	}
	if err := s2.Admin().Do(context.Background(), http.MethodPost, "/api/v1/functions/tag/invoke", map[string]any{"channel": "t:1", "event": "e", "data": 5}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Action != "pass" || res.Message["data"].(map[string]any)["tagged"] != float64(5) {
		t.Fatalf("invoke after restart: %+v", res)
	}
	ws := servertest.Connect(t, s2.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "t:1"})
	if _, err := s2.API().Publish(context.Background(), "t:1", "e", 7); err != nil {
		t.Fatal(err)
	}
	if m := ws.Expect("message"); m["data"].(map[string]any)["tagged"] != float64(7) {
		t.Fatalf("association lost across restart: %v", m)
	}
	// The dry run published nothing.
	if h, err := s2.API().History(context.Background(), "t:1", 0, 0); err != nil || h.Offset != 1 {
		t.Fatalf("channel offset %v after one publish and one dry run (%v)", h, err)
	}
}
