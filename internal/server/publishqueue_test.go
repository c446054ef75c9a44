package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// A publish whose function runs for its whole time budget must not hold up
// the connection's other frames (issue 12.3): the ping sent after it is
// answered before the publish is, and acks still come in publish order.
func TestSlowPublishDoesNotHoldUpTheConnection(t *testing.T) {
	s := servertest.StartNode(t, func(c *config.Config) { c.PublishRate = 1000 })
	ctx := context.Background()
	if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/functions/spin", map[string]any{"runtime": "js", "source": "function handle(m){ while (true) {} }", "timeout_ms": 1000}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/associations", map[string]any{"pattern": "slow:*", "functions": []string{"spin"}, "on_error": "pass"}, nil); err != nil {
		t.Fatal(err)
	}
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "pub", nil, []string{"*"}))
	ws.Send(map[string]any{"type": "publish", "id": 1, "channel": "slow:x", "event": "e", "data": 1})
	ws.Send(map[string]any{"type": "publish", "id": 2, "channel": "fast:x", "event": "e", "data": 2})
	ws.Send(map[string]any{"type": "ping", "id": 3})
	var order []float64
	for len(order) < 3 {
		f := ws.Next()
		switch f.Type() {
		case "pong", "ack", "error":
			order = append(order, f.Num("id"))
		}
	}
	if order[0] != 3 || order[1] != 1 || order[2] != 2 {
		t.Fatalf("replies in order %v, want the pong (3) first, then the acks in publish order (1, 2)", order)
	}
}
