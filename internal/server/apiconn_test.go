package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// publishRequest is a raw keep-alive POST /api/v1/publish.
func publishRequest(channel, event, data string, extra ...string) string {
	body := fmt.Sprintf(`{"channel":%q,"event":%q,"data":%s}`, channel, event, data)
	return "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + servertest.APIKey +
		"\r\nContent-Type: application/json\r\n" + strings.Join(extra, "") +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// readAnswer reads one response and its body.
func readAnswer(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func subscribed(t *testing.T, s *servertest.Server, channel string) *servertest.WS {
	t.Helper()
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "reader", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": channel})
	return ws
}

// TestAPIFastPath: keep-alive publishes skip net/http and behave as
// before: answers, errors, delivery and order, and a connection handed to
// net/http for any other request.
func TestAPIFastPath(t *testing.T) {
	s := servertest.Start(t)

	t.Run("one publish after another on one connection", func(t *testing.T) {
		ws := subscribed(t, s, "fast:seq")
		before := server.FastRequests(s.Server)
		c := dialTCP(t, s)
		br := bufio.NewReader(c)
		for i := range 5 {
			if _, err := io.WriteString(c, publishRequest("fast:seq", "e", fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			resp, body := readAnswer(t, br)
			var out struct {
				ID      string            `json:"id"`
				Offsets map[string]uint64 `json:"offsets"`
			}
			if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || out.ID == "" || out.Offsets["fast:seq"] != uint64(i+1) {
				t.Fatalf("publish %d: %d %q", i, resp.StatusCode, body)
			}
			if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Date") == "" || resp.Close {
				t.Fatalf("publish %d: header %v, close %v", i, resp.Header, resp.Close)
			}
		}
		for i := range 5 {
			if f := ws.Expect("message"); f.Num("data") != float64(i) {
				t.Fatalf("message %d: %v", i, f)
			}
		}
		if got := server.FastRequests(s.Server) - before; got != 5 {
			t.Fatalf("fast path served %d of 5 publishes", got)
		}
	})

	t.Run("pipelined requests are answered in order", func(t *testing.T) {
		c := dialTCP(t, s)
		var all strings.Builder
		for i := range 3 {
			all.WriteString(publishRequest("fast:pipe", "e", fmt.Sprint(i)))
		}
		// A batch in the same write.
		batch := `{"messages":[{"channel":"fast:pipe","event":"b","data":1},{"channel":"bad channel!","event":"b","data":2}]}`
		fmt.Fprintf(&all, "POST /api/v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", servertest.APIKey, len(batch), batch)
		if _, err := io.WriteString(c, all.String()); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for i := range 3 {
			resp, body := readAnswer(t, br)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"fast:pipe":%d`, i+1)) {
				t.Fatalf("answer %d: %d %q", i, resp.StatusCode, body)
			}
		}
		resp, body := readAnswer(t, br)
		var out struct {
			Results []struct {
				ID    string `json:"id"`
				Error *struct {
					Code string `json:"code"`
				} `json:"error"`
			} `json:"results"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || len(out.Results) != 2 ||
			out.Results[0].ID == "" || out.Results[1].Error == nil || out.Results[1].Error.Code != "bad_request" {
			t.Fatalf("batch: %d %q", resp.StatusCode, body)
		}
	})

	t.Run("errors keep the connection", func(t *testing.T) {
		c := dialTCP(t, s)
		br := bufio.NewReader(c)
		for _, tc := range []struct {
			req    string
			status int
			code   string
		}{
			{publishRequest("fast:err", "e", "{"), http.StatusBadRequest, "bad_request"},
			{strings.Replace(publishRequest("fast:err", "e", "1"), servertest.APIKey, "wrong-key", 1), http.StatusUnauthorized, "unauthorized"},
			{"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + servertest.APIKey + "\r\n\r\n", http.StatusBadRequest, "bad_request"},
			{publishRequest("fast:err", "e", "2"), http.StatusOK, ""},
		} {
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			resp, body := readAnswer(t, br)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.code) || resp.Close {
				t.Fatalf("%q: %d %q (close %v), want %d %s", tc.req, resp.StatusCode, body, resp.Close, tc.status, tc.code)
			}
		}
	})

	t.Run("other requests go to net/http with the connection", func(t *testing.T) {
		before := server.FastRequests(s.Server)
		c := dialTCP(t, s)
		br := bufio.NewReader(c)
		reqs := []string{
			publishRequest("fast:mix", "e", "1"),
			"GET /api/v1/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + servertest.APIKey + "\r\n\r\n",
			publishRequest("fast:mix", "e", "2"), // served by net/http from now on
			"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + servertest.APIKey +
				"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(`{"channel":"fast:mix","event":"e","data":3}`),
		}
		for i, req := range reqs {
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			if resp, body := readAnswer(t, br); resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
		}
		if got := server.FastRequests(s.Server) - before; got != 1 {
			t.Fatalf("fast path served %d requests, want only the first", got)
		}
	})

	t.Run("requests it does not take are served by net/http", func(t *testing.T) {
		before := server.FastRequests(s.Server)
		body := `{"channel":"fast:odd","event":"e","data":1}`
		for _, req := range []string{
			// HTTP/1.0, Expect, chunked, a folded header, a doubled length.
			fmt.Sprintf("POST /api/v1/publish HTTP/1.0\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", servertest.APIKey, len(body), body),
			fmt.Sprintf("POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n%s", servertest.APIKey, len(body), body),
			fmt.Sprintf("POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n%s", servertest.APIKey, chunked(body)),
			fmt.Sprintf("POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", servertest.APIKey, len(body), body),
			fmt.Sprintf("POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n%s", servertest.APIKey, len(body), len(body), body),
		} {
			c := dialTCP(t, s)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, out := readAnswer(t, br)
			if resp.StatusCode == http.StatusContinue {
				resp, out = readAnswer(t, br)
			}
			// net/http's own verdicts: a publish, or a 400 for what it refuses.
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%q: %d %q", req, resp.StatusCode, out)
			}
		}
		if got := server.FastRequests(s.Server) - before; got != 0 {
			t.Fatalf("fast path served %d of them, want none", got)
		}
	})

	t.Run("Connection: close is honoured", func(t *testing.T) {
		c := dialTCP(t, s)
		if _, err := io.WriteString(c, publishRequest("fast:close", "e", "1", "Connection: close\r\n")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, body := readAnswer(t, br)
		if resp.StatusCode != http.StatusOK || !resp.Close {
			t.Fatalf("%d %q close=%v, want 200 and Connection: close", resp.StatusCode, body, resp.Close)
		}
		if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("read %d, %v after close: want EOF", n, err)
		}
	})

	t.Run("a body in pieces, and one cut short", func(t *testing.T) {
		req := publishRequest("fast:slow", "e", `"abcdef"`)
		c := dialTCP(t, s)
		cut := strings.Index(req, "\r\n\r\n") + 10
		if _, err := io.WriteString(c, req[:cut]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, req[cut:]); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		if resp, body := readAnswer(t, br); resp.StatusCode != http.StatusOK {
			t.Fatalf("body in two writes: %d %q", resp.StatusCode, body)
		}
		// The client promises more than it sends, then closes its side:
		// the server answers or closes, and goes on serving others.
		c2 := dialTCP(t, s)
		if _, err := io.WriteString(c2, req[:cut]); err != nil {
			t.Fatal(err)
		}
		_ = c2.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
		if err == nil && resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("cut body: %d, want 400 or a closed connection", resp.StatusCode)
		}
		if _, err := s.API().Publish(context.Background(), "fast:slow", "e", 1); err != nil {
			t.Fatalf("server still publishing: %v", err)
		}
	})

	t.Run("a body over max_message_bytes", func(t *testing.T) {
		c := dialTCP(t, s)
		big := `"` + strings.Repeat("x", s.Config.MaxMessageBytes+8192) + `"`
		if _, err := io.WriteString(c, publishRequest("fast:big", "e", big)); err != nil {
			t.Fatal(err)
		}
		resp, body := readAnswer(t, bufio.NewReader(c))
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too_large") {
			t.Fatalf("%d %q, want 413 too_large", resp.StatusCode, body)
		}
	})

	t.Run("the Go API client goes through it", func(t *testing.T) {
		before := server.FastRequests(s.Server)
		if _, err := s.API().Publish(context.Background(), "fast:client", "e", 1); err != nil {
			t.Fatal(err)
		}
		if got := server.FastRequests(s.Server) - before; got != 1 {
			t.Fatalf("fast path served %d of the client's publish", got)
		}
	})
}

func chunked(s string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(s), s) }

// TestAPIFastPathSeparateListener: the API listener has the fast path too,
// and the client listener does not serve the API when it is separate.
func TestAPIFastPathSeparateListener(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.APIListen = "127.0.0.1:0" })
	before := server.FastRequests(s.Server)
	if _, err := s.API().Publish(context.Background(), "fast:sep", "e", 1); err != nil {
		t.Fatal(err)
	}
	if got := server.FastRequests(s.Server) - before; got != 1 {
		t.Fatalf("fast path served %d publishes on the API listener, want 1", got)
	}
	c := dialTCP(t, s)
	if _, err := io.WriteString(c, publishRequest("fast:sep", "e", "1")); err != nil {
		t.Fatal(err)
	}
	if resp, body := readAnswer(t, bufio.NewReader(c)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("publish on the client listener: %d %q, want 404", resp.StatusCode, body)
	}
}

// TestAPIFastPathShutdown: an idle keep-alive API connection is closed at
// shutdown, which does not wait for it.
func TestAPIFastPathShutdown(t *testing.T) {
	s := servertest.Start(t)
	c := dialTCP(t, s)
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, publishRequest("fast:down", "e", "1")); err != nil {
		t.Fatal(err)
	}
	if resp, body := readAnswer(t, br); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v: want the connection closed", n, err)
	}
}

// TestAPIFastPathPusher: Pusher's signed trigger, its query string
// included, is served by the fast path.
func TestAPIFastPathPusher(t *testing.T) {
	s := servertest.Start(t, withPusher)
	before := server.FastRequests(s.Server)
	trigger(t, s, map[string]any{"name": "e", "channel": "fast-pusher", "data": "x"})
	if got := server.FastRequests(s.Server) - before; got != 1 {
		t.Fatalf("fast path served %d Pusher triggers, want 1", got)
	}
	// A bad signature is refused there as it was by net/http.
	if status, out := pusherCallSigned(t, s, http.MethodPost, "/apps/"+testPusherApp+"/events", nil,
		map[string]any{"name": "e", "channel": "c", "data": "x"}, testPusherKey, "not-the-secret", time.Now()); status != http.StatusUnauthorized || !strings.Contains(out, "auth_signature") {
		t.Fatalf("bad signature: %d %q", status, out)
	}
}
