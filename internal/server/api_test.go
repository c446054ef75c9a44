package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

func doRaw(t *testing.T, method, url, key, body string) (int, api.ErrorBody, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	_ = json.Unmarshal(b, &eb)
	return resp.StatusCode, eb, string(b)
}

func TestAPIPublishErrors(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxMessageBytes = 1024 })
	url := s.Base + "/api/v1/publish"
	cases := []struct {
		name, method, path, key, body string
		status                        int
		code                          string
	}{
		{"no key", "POST", url, "", `{"channel":"a","event":"e","data":1}`, 401, "unauthorized"},
		{"wrong key", "POST", url, "nope", `{"channel":"a","event":"e","data":1}`, 401, "unauthorized"},
		{"malformed JSON", "POST", url, servertest.APIKey, `{"channel":`, 400, "bad_request"},
		{"bad channel", "POST", url, servertest.APIKey, `{"channel":"no spaces","event":"e","data":1}`, 400, "bad_request"},
		{"one bad channel of many", "POST", url, servertest.APIKey, `{"channels":["ok","bad/one"],"event":"e","data":1}`, 400, "bad_request"},
		{"no channel", "POST", url, servertest.APIKey, `{"event":"e","data":1}`, 400, "bad_request"},
		{"no event", "POST", url, servertest.APIKey, `{"channel":"a","data":1}`, 400, "bad_request"},
		{"too large", "POST", url, servertest.APIKey, `{"channel":"a","event":"e","data":"` + strings.Repeat("x", 8000) + `"}`, 413, "too_large"},
		{"unknown endpoint", "GET", s.Base + "/api/v1/nothing", servertest.APIKey, "", 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, eb, raw := doRaw(t, c.method, c.path, c.key, c.body)
			if status != c.status || eb.Error.Code != c.code || eb.Error.Message == "" {
				t.Fatalf("got %d %s, want %d with code %s", status, raw, c.status, c.code)
			}
		})
	}
	if status, _, _ := doRaw(t, "GET", url, servertest.APIKey, ""); status != http.StatusMethodNotAllowed {
		t.Fatalf("GET publish: %d, want 405", status)
	}
	if strings.Contains(metricsBody(t, s.Base, servertest.APIKey), servertest.APIKey) {
		t.Fatal("metrics leak the API key")
	}
}

func doRawBody(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestAPIPublishToSeveralChannels(t *testing.T) {
	s := servertest.Start(t)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "a"})
	ws.Request(map[string]any{"type": "subscribe", "id": 2, "channel": "b"})
	id, err := s.API().PublishMany(context.Background(), []string{"a", "b"}, "news", map[string]string{"x": "y"})
	if err != nil || id == "" {
		t.Fatalf("publish: %q %v", id, err)
	}
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		m := ws.Expect("message")
		if m.Str("id") != id {
			t.Fatalf("message id %q, want %q", m.Str("id"), id)
		}
		got[m.Str("channel")] = true
	}
	if !got["a"] || !got["b"] {
		t.Fatalf("got channels %v", got)
	}
}

func TestSeparateAPIListener(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.APIListen = "127.0.0.1:0" })
	if s.APIBase() == s.Base {
		t.Fatal("API shares the client listener")
	}
	if status, _, _ := doRaw(t, "POST", s.Base+"/api/v1/publish", servertest.APIKey, `{"channel":"a","event":"e","data":1}`); status != 404 && status != 405 {
		t.Fatalf("publish on the client listener: %d, want it absent", status)
	}
	if _, err := s.API().Publish(context.Background(), "a", "e", 1); err != nil {
		t.Fatalf("publish on the API listener: %v", err)
	}
	if !strings.Contains(metricsBody(t, s.APIBase(), servertest.APIKey), "eddy_connections") {
		t.Fatal("no metrics on the API listener")
	}
}

// TestConcurrentPublishersLoseNothing: 100 publishers, API and clients mixed;
// every subscriber gets every message exactly once, in offset order.
func TestConcurrentPublishersLoseNothing(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.PublishRate = 10000 })
	const publishers, each, subscribers = 100, 20, 5
	subs := make([]*servertest.WS, subscribers)
	for i := range subs {
		subs[i] = servertest.Connect(t, s.WSURL, servertest.Token(t, "sub", nil, nil))
		subs[i].Request(map[string]any{"type": "subscribe", "id": 1, "channel": "load"})
	}
	var wg sync.WaitGroup
	errs := make(chan error, publishers*each)
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			if p%2 == 0 {
				for i := 0; i < each; i++ {
					if _, err := s.API().Publish(context.Background(), "load", "e", map[string]int{"p": p, "i": i}); err != nil {
						errs <- err
					}
				}
				return
			}
			ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "pub", nil, []string{"load"}))
			for i := 0; i < each; i++ {
				ws.Send(map[string]any{"type": "publish", "id": i + 1, "channel": "load", "event": "e", "data": map[string]int{"p": p, "i": i}})
			}
			for i := 0; i < each; i++ {
				if f := ws.Next(); f.Type() != "ack" {
					errs <- errors.New("publisher got " + f.Type())
				}
			}
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for si, ws := range subs {
		seen := map[[2]int]bool{}
		for n := 1; n <= publishers*each; n++ {
			m := ws.Expect("message")
			if int(m.Num("offset")) != n {
				t.Fatalf("subscriber %d: message %d has offset %v", si, n, m["offset"])
			}
			d := m["data"].(map[string]any)
			k := [2]int{int(d["p"].(float64)), int(d["i"].(float64))}
			if seen[k] {
				t.Fatalf("subscriber %d: duplicate %v", si, k)
			}
			seen[k] = true
		}
		if len(seen) != publishers*each {
			t.Fatalf("subscriber %d saw %d distinct messages", si, len(seen))
		}
	}
	if subs[0].MessagesReceived() >= publishers*each {
		t.Logf("no batching observed: %d WebSocket messages for %d frames", subs[0].MessagesReceived(), publishers*each)
	}
}

func TestSlowConsumerIsDisconnected4009(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.MaxQueueBytes = 64 << 10
		c.MaxMessageBytes = 32 << 10
	})
	slow, resume := servertest.DialPaused(t, s.WSURL)
	fast := servertest.Connect(t, s.WSURL, servertest.Token(t, "fast", nil, nil))
	fast.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "flood"})
	// Authenticate the slow one by hand: it reads nothing until resumed, so
	// send auth+subscribe and let the server believe it.
	slow.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "slow", nil, nil)})
	slow.Send(map[string]any{"type": "subscribe", "id": 1, "channel": "flood"})
	servertest.Eventually(t, "both subscribed", func() bool { return s.Hub().Subscribers("flood") == 2 })
	// Lock-step with the fast subscriber: its queue never holds more than
	// one message, so only the slow one can overflow, however loaded the
	// machine is.
	payload := strings.Repeat("x", 16<<10)
	for sent := 0; s.Hub().Subscribers("flood") == 2; sent++ {
		if sent > 20000 {
			t.Fatal("slow consumer never disconnected")
		}
		if _, err := s.API().Publish(context.Background(), "flood", "e", payload); err != nil {
			t.Fatal(err)
		}
		fast.Expect("message")
	}
	resume()
	if code := slow.CloseCode(); code != 4009 {
		t.Fatalf("slow consumer close code %d, want 4009", code)
	}
}

func TestGracefulShutdown(t *testing.T) {
	s := servertest.Start(t)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "news"})
	if _, err := s.API().Publish(context.Background(), "news", "before", 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	// Queued messages are flushed before the 1012 close.
	if m := ws.Expect("message"); m.Str("event") != "before" {
		t.Fatalf("got %v", m)
	}
	if code := ws.CloseCode(); code != 1012 {
		t.Fatalf("close code %d, want 1012", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(s.Base + "/readyz"); err == nil {
		t.Fatal("server still accepting connections after shutdown")
	}
}

// TestHealthAndReadinessOnBothListeners: load balancers probe either
// listener. (Readiness turning false is covered where it is observable:
// TestClusterRedisRestart; during a drain the listeners close at once.)
func TestHealthAndReadinessOnBothListeners(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.APIListen = "127.0.0.1:0" })
	for _, base := range []string{s.Base, s.APIBase()} {
		for _, path := range []string{"/readyz", "/healthz"} {
			if status, _, _ := doRaw(t, "GET", base+path, "", ""); status != 200 {
				t.Fatalf("%s%s: %d", base, path, status)
			}
		}
	}
}

func TestDeadPeerDroppedByPingTimeout(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.PingInterval = 100 * time.Millisecond })
	ws, _ := servertest.DialPaused(t, s.WSURL)
	ws.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "ghost", nil, nil)})
	ws.Send(map[string]any{"type": "subscribe", "id": 1, "channel": "x"})
	servertest.Eventually(t, "subscribed", func() bool { return s.Hub().Subscribers("x") == 1 })
	// The paused client never answers pings: the server must give up on it.
	servertest.Eventually(t, "dead peer dropped", func() bool { return s.Hub().Subscribers("x") == 0 })
	// A live client that answers the server's pings, and sends nothing of
	// its own (no protocol ping, which would count as activity too), stays
	// through several ping intervals: three times what dropped the dead one.
	live := servertest.Connect(t, s.WSURL, servertest.Token(t, "live", nil, nil))
	live.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "y"})
	since := live.Pings()
	servertest.Eventually(t, "six server pings answered", func() bool {
		return live.Pings() >= since+6 || s.Hub().Subscribers("y") == 0
	})
	if s.Hub().Subscribers("y") != 1 {
		t.Fatalf("live client that answered %d pings was dropped", live.Pings()-since)
	}
	if f := live.Request(map[string]any{"type": "ping", "id": 2}); f.Type() != "pong" {
		t.Fatalf("live client: %v", f)
	}
}
