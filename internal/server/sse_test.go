package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// sseClient is a raw client of the SSE transport: the stream's events
// arrive, split into frames, on frames; comments (pings) are counted.
type sseClient struct {
	t       *testing.T
	base    string
	session string
	frames  chan servertest.Frame
	pings   chan struct{}
	ended   chan struct{}
	body    io.Closer
	http    *http.Client
}

// sseOpen opens GET /sse and reads the session event.
func sseOpen(t *testing.T, base string, header http.Header) *sseClient {
	t.Helper()
	c, status := sseTry(t, base, header)
	if status != http.StatusOK {
		t.Fatalf("GET /sse: status %d", status)
	}
	return c
}

// sseTry opens GET /sse and returns the client (nil unless 200) and status.
func sseTry(t *testing.T, base string, header http.Header) (*sseClient, int) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	req, err := http.NewRequest(http.MethodGet, base+"/sse", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET /sse: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	c := &sseClient{t: t, base: base, frames: make(chan servertest.Frame, 1024), pings: make(chan struct{}, 1024),
		ended: make(chan struct{}), body: resp.Body, http: hc}
	t.Cleanup(func() { resp.Body.Close(); hc.CloseIdleConnections() })
	go c.read(resp.Body)
	hello := c.next()
	if hello.Type() != "session" || hello.Str("session") == "" {
		t.Fatalf("first event %v, want the session", hello)
	}
	c.session = hello.Str("session")
	return c, resp.StatusCode
}

func (c *sseClient) read(body io.Reader) {
	defer close(c.ended)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			for _, d := range data {
				var f servertest.Frame
				if err := json.Unmarshal([]byte(d), &f); err != nil {
					c.t.Errorf("bad frame %q: %v", d, err)
					continue
				}
				c.frames <- f
			}
			data = data[:0]
		case strings.HasPrefix(line, ":"):
			select {
			case c.pings <- struct{}{}:
			default:
			}
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		default:
			c.t.Errorf("unexpected stream line %q", line)
		}
	}
}

func (c *sseClient) next() servertest.Frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-time.After(10 * time.Second):
		c.t.Fatal("no frame within 10s")
		return nil
	}
}

func (c *sseClient) expect(typ string) servertest.Frame {
	c.t.Helper()
	f := c.next()
	if f.Type() != typ {
		c.t.Fatalf("got %v, want a %s frame", f, typ)
	}
	return f
}

// post sends frames in one POST to session and returns the status.
func (c *sseClient) postTo(session string, frames ...any) int {
	c.t.Helper()
	var b strings.Builder
	for _, f := range frames {
		j, err := json.Marshal(f)
		if err != nil {
			c.t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	resp, err := c.http.Post(c.base+"/sse/"+session, "text/plain", strings.NewReader(b.String()))
	if err != nil {
		c.t.Fatalf("POST: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (c *sseClient) post(frames ...any) {
	c.t.Helper()
	if st := c.postTo(c.session, frames...); st != http.StatusNoContent {
		c.t.Fatalf("POST: status %d", st)
	}
}

// expectClose waits for the close event and the end of the stream.
func (c *sseClient) expectClose(code float64) servertest.Frame {
	c.t.Helper()
	for {
		f := c.next()
		if f.Type() != "close" {
			continue
		}
		if f.Num("code") != code {
			c.t.Fatalf("close %v, want code %v", f, code)
		}
		select {
		case <-c.ended:
		case <-time.After(10 * time.Second):
			c.t.Fatal("stream did not end after its close event")
		}
		return f
	}
}

func sseAuth(t *testing.T, s *servertest.Server, user string) *sseClient {
	t.Helper()
	c := sseOpen(t, s.Base, nil)
	c.post(map[string]any{"type": "auth", "token": servertest.Token(t, user, nil, []string{"*"})})
	if r := c.expect("ready"); r.Str("user") != user {
		t.Fatalf("ready %v", r)
	}
	return c
}

func TestSSEAuthSubscribePublish(t *testing.T) {
	s := servertest.Start(t)
	sub := sseAuth(t, s, "alice")
	sub.post(map[string]any{"type": "subscribe", "id": 1, "channel": "room:1"})
	if f := sub.expect("subscribed"); f.Num("id") != 1 {
		t.Fatalf("subscribed %v", f)
	}
	pub := sseAuth(t, s, "bob")
	// Several frames in one POST are handled in order, as a WebSocket
	// message's batch is.
	pub.post(map[string]any{"type": "publish", "id": 7, "channel": "room:1", "event": "e", "data": 1},
		map[string]any{"type": "publish", "id": 8, "channel": "room:1", "event": "e", "data": 2},
		map[string]any{"type": "ping", "id": 9})
	// Publishes run on the connection's publish worker, so the pong may
	// come first; the acks come in order.
	var acks []float64
	pongs := 0
	for range 3 {
		switch f := pub.next(); f.Type() {
		case "ack":
			acks = append(acks, f.Num("id"))
		case "pong":
			pongs++
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	if pongs != 1 || len(acks) != 2 || acks[0] != 7 || acks[1] != 8 {
		t.Fatalf("acks %v and %d pongs, want acks 7, 8 and one pong", acks, pongs)
	}
	for want := 1.0; want <= 2; want++ {
		m := sub.expect("message")
		if m.Num("data") != want || m.Str("user") != "bob" {
			t.Fatalf("message %v, want data %v from bob", m, want)
		}
	}
	// An API publish reaches the SSE subscriber too.
	if _, err := s.API().Publish(context.Background(), "room:1", "e", 3); err != nil {
		t.Fatal(err)
	}
	if m := sub.expect("message"); m.Num("data") != 3 {
		t.Fatalf("message %v", m)
	}
}

func TestSSERecoveryWithSince(t *testing.T) {
	cfg := servertest.Config()
	cfg.Namespaces["feed"] = config.ChannelOptions{HistorySize: 100}
	s := servertest.StartWith(t, server.Options{Config: cfg})
	c := sseAuth(t, s, "u")
	c.post(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:1"})
	first := c.expect("subscribed")
	epoch := first.Str("epoch")
	for i := 1; i <= 3; i++ {
		if _, err := s.API().Publish(context.Background(), "feed:1", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		c.expect("message")
	}
	// A new session resumes after offset 1 and gets 2 and 3 back.
	again := sseAuth(t, s, "u")
	again.post(map[string]any{"type": "subscribe", "id": 2, "channel": "feed:1",
		"since": map[string]any{"epoch": epoch, "offset": 1}})
	f := again.expect("subscribed")
	if f["recovered"] != true {
		t.Fatalf("not recovered: %v", f)
	}
	for want := 2.0; want <= 3; want++ {
		if m := again.expect("message"); m.Num("offset") != want {
			t.Fatalf("recovered %v, want offset %v", m, want)
		}
	}
}

func TestSSECloseCodes(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.AuthTimeout = 300 * time.Millisecond })
	t.Run("bad token: unauthorized then 4001", func(t *testing.T) {
		c := sseOpen(t, s.Base, nil)
		c.post(map[string]any{"type": "auth", "token": "not-a-jwt"})
		if f := c.expect("error"); f.Str("code") != "unauthorized" {
			t.Fatalf("error %v", f)
		}
		c.expectClose(4001)
	})
	t.Run("no auth: 4008", func(t *testing.T) {
		c := sseOpen(t, s.Base, nil)
		c.expectClose(4008)
	})
	t.Run("posting to a closed session: 404", func(t *testing.T) {
		c := sseOpen(t, s.Base, nil)
		c.expectClose(4008)
		servertest.Eventually(t, "session forgotten", func() bool {
			return c.postTo(c.session, map[string]any{"type": "ping"}) == http.StatusNotFound
		})
	})
}

func TestSSESessionIDsNotGuessable(t *testing.T) {
	s := servertest.Start(t)
	a := sseAuth(t, s, "a")
	b := sseOpen(t, s.Base, nil)
	if a.session == b.session {
		t.Fatal("two sessions share an id")
	}
	// 128 random bits, base64url: 22 characters.
	if len(a.session) != 22 || len(b.session) != 22 {
		t.Fatalf("session ids %q %q: want 22 characters (128 bits)", a.session, b.session)
	}
	// A made-up id, or one differing from a's in its last character, is
	// nobody's session; nothing reaches a's connection.
	last := "A"
	if a.session[21] == 'A' {
		last = "B"
	}
	forged := a.session[:21] + last
	for _, id := range []string{"1", "c-1", forged} {
		if st := b.postTo(id, map[string]any{"type": "publish", "id": 1, "channel": "x:1", "event": "e", "data": 1}); st != http.StatusNotFound {
			t.Fatalf("POST to %q: status %d, want 404", id, st)
		}
	}
	a.post(map[string]any{"type": "ping", "id": 5})
	if f := a.next(); f.Type() != "pong" || f.Num("id") != 5 {
		t.Fatalf("a got %v before its pong", f)
	}
}

func TestSSELimits(t *testing.T) {
	t.Run("max_connections_per_ip counts SSE streams", func(t *testing.T) {
		s := servertest.Start(t, func(c *config.Config) { c.MaxConnectionsPerIP = 1 })
		sseOpen(t, s.Base, nil)
		if _, st := sseTry(t, s.Base, nil); st != http.StatusTooManyRequests {
			t.Fatalf("second stream: status %d, want 429", st)
		}
	})
	t.Run("max_connections_per_user", func(t *testing.T) {
		s := servertest.Start(t, func(c *config.Config) { c.MaxConnectionsPerUser = 1 })
		sseAuth(t, s, "u")
		c := sseOpen(t, s.Base, nil)
		c.post(map[string]any{"type": "auth", "token": servertest.Token(t, "u", nil, nil)})
		if f := c.expect("error"); f.Str("code") != "limit_exceeded" {
			t.Fatalf("error %v", f)
		}
		c.expectClose(4010)
	})
	t.Run("allowed_origins", func(t *testing.T) {
		s := servertest.Start(t, func(c *config.Config) { c.AllowedOrigins = []string{"https://good.example"} })
		if _, st := sseTry(t, s.Base, http.Header{"Origin": {"https://evil.example"}}); st != http.StatusForbidden {
			t.Fatalf("evil origin: status %d, want 403", st)
		}
		c := sseOpen(t, s.Base, http.Header{"Origin": {"https://good.example"}})
		req, _ := http.NewRequest(http.MethodPost, s.Base+"/sse/"+c.session, strings.NewReader(`{"type":"ping"}`))
		req.Header.Set("Origin", "https://evil.example")
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("POST from evil origin: status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("frame size: too_large with the request id", func(t *testing.T) {
		s := servertest.Start(t, func(c *config.Config) { c.MaxMessageBytes = 1024 })
		c := sseAuth(t, s, "u")
		c.post(map[string]any{"type": "publish", "id": 3, "channel": "x:1", "event": "e", "data": strings.Repeat("a", 5000)})
		f := c.expect("error")
		if f.Str("code") != "too_large" || f.Num("id") != 3 {
			t.Fatalf("error %v, want too_large for id 3", f)
		}
	})
	t.Run("publish rate", func(t *testing.T) {
		s := servertest.Start(t, func(c *config.Config) { c.PublishRate = 1 })
		c := sseAuth(t, s, "u")
		var frames []any
		for i := 1; i <= 5; i++ {
			frames = append(frames, map[string]any{"type": "publish", "id": i, "channel": "x:1", "event": "e", "data": i})
		}
		c.post(frames...)
		limited := 0
		for range 5 {
			if f := c.next(); f.Type() == "error" && f.Str("code") == "rate_limited" {
				limited++
			}
		}
		if limited == 0 {
			t.Fatal("5 publishes at once with publish_rate 1: none rate_limited")
		}
	})
}

// A client that stops posting is closed after two ping intervals; one that
// answers the stream's pings stays.
func TestSSEPingsAndLiveness(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.PingInterval = 200 * time.Millisecond })
	silent := sseAuth(t, s, "silent")
	alive := sseAuth(t, s, "alive")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-alive.pings:
				alive.postTo(alive.session, map[string]any{"type": "ping"})
			case <-stop:
				return
			}
		}
	}()
	silent.expectClose(1001)
	alive.post(map[string]any{"type": "ping", "id": 2})
	for {
		f := alive.next()
		if f.Type() == "pong" && f.Num("id") == 2 {
			break
		}
		if f.Type() == "close" {
			t.Fatalf("a client answering pings was closed: %v", f)
		}
	}
	close(stop)
	<-done
}

func TestSSEShutdownCloses1012(t *testing.T) {
	s := servertest.Start(t)
	c := sseAuth(t, s, "u")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	c.expectClose(1012)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// DropConnections cuts SSE streams too, without a close event.
func TestSSEDropConnections(t *testing.T) {
	s := servertest.Start(t)
	c := sseAuth(t, s, "u")
	s.DropConnections()
	select {
	case <-c.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("stream not cut")
	}
	for {
		select {
		case f := <-c.frames:
			if f.Type() == "close" {
				t.Fatalf("a cut stream sent %v", f)
			}
			continue
		default:
		}
		break
	}
}

// Presence events of one window reach a connection as one shared frame of
// several newline-joined objects; each must stay a frame of its own on the
// stream (it once broke the stream's framing).
func TestSSEPresenceEvents(t *testing.T) {
	cfg := servertest.Config()
	cfg.Namespaces["chat"] = config.ChannelOptions{Presence: true, JoinLeave: true}
	s := servertest.StartWith(t, server.Options{Config: cfg})
	a := sseAuth(t, s, "pa")
	a.post(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:1"})
	a.expect("subscribed")
	joined := map[string]bool{}
	var others []*sseClient
	for _, u := range []string{"pb", "pc", "pd"} {
		c := sseAuth(t, s, u)
		c.post(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:1"})
		others = append(others, c)
	}
	for _, c := range others {
		c.expect("subscribed")
	}
	for len(joined) < 3 {
		f := a.next()
		if f.Type() == "presence" && f.Str("action") == "join" {
			m, _ := f["member"].(map[string]any)
			if u, _ := m["user"].(string); u != "pa" {
				joined[u] = true
			}
		}
	}
}
