package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/servertest"
)

// A broker failure reaches clients as the fixed unavailable error: the
// cause (here Redis's address, in a dial error) goes to the log only, in
// WebSocket error frames and HTTP bodies alike.
func TestBrokerErrorTextNeverReachesClients(t *testing.T) {
	rs, nodes := cluster(t, 1)
	n := nodes[0]
	ws := servertest.Connect(t, n.WSURL, servertest.Token(t, "ann", []string{"*"}, []string{"*"}))
	port := rs.Addr()[strings.LastIndexByte(rs.Addr(), ':')+1:]
	leaks := func(text string) bool {
		return strings.Contains(text, port) || strings.Contains(text, "dial") || strings.Contains(text, "redis")
	}
	// A publish whose connection broke under it may have run: it gets the
	// outcome-unknown message instead, fixed all the same.
	fixed := func(msg string) bool {
		return msg == protocol.ErrUnavailable.Message || msg == protocol.ErrOutcomeUnknown.Message
	}
	rs.Stop()
	servertest.Eventually(t, "node not ready", func() bool { return status(n.Base+"/readyz") == 503 })

	id := 0
	for _, req := range []map[string]any{
		{"type": "subscribe", "channel": "chat:a"},
		{"type": "publish", "channel": "chat:a", "event": "e", "data": 1},
		{"type": "presence", "channel": "chat:a"},
	} {
		id++
		req["id"] = id
		f := ws.Request(req)
		if f.Type() != "error" || f.Str("code") != protocol.CodeUnavailable || !fixed(f.Str("message")) || leaks(f.Str("message")) {
			t.Errorf("%s while Redis is down: got %v, want the fixed unavailable error", req["type"], f)
		}
	}

	for _, call := range []struct{ method, path, body string }{
		{"POST", "/api/v1/publish", `{"channel":"chat:a","event":"e","data":1}`},
		{"GET", "/api/v1/history?channel=chat:a", ""},
		{"GET", "/api/v1/history?channel=chat:a&since=1", ""},
		{"GET", "/api/v1/presence?channel=chat:a", ""},
		{"GET", "/api/v1/info", ""},
	} {
		req, err := http.NewRequest(call.method, n.APIBase()+call.path, strings.NewReader(call.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+servertest.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got api.ErrorBody
		_ = json.Unmarshal(body, &got)
		if resp.StatusCode != http.StatusServiceUnavailable || got.Error.Code != protocol.CodeUnavailable || !fixed(got.Error.Message) || leaks(string(body)) {
			t.Errorf("%s %s while Redis is down: %d %s, want 503 with the fixed unavailable error", call.method, call.path, resp.StatusCode, body)
		}
	}
}
