package server_test

import (
	"net/http"
	"testing"

	"github.com/eddyrt/eddy/internal/pusher"
)

// TestPusherCluster: three nodes over a real redis-server, Pusher clients
// on each. A trigger through one node reaches all, socket_id excludes its
// sender on another node, presence members cross nodes, client events
// cross nodes, and terminate_connections closes a user on another node.
func TestPusherCluster(t *testing.T) {
	_, nodes := cluster(t, 3, withPusher)
	clients := make([]*pusherWS, len(nodes))
	for i, n := range nodes {
		clients[i] = dialPusher(t, n)
		clients[i].join("private-feed", "")
	}
	trigger(t, nodes[0], map[string]any{"name": "tick", "channel": "private-feed", "data": "1", "socket_id": clients[2].SocketID})
	clients[0].expectOn("tick", "private-feed")
	clients[1].expectOn("tick", "private-feed")

	clients[1].Send(map[string]any{"event": "client-hi", "channel": "private-feed", "data": map[string]any{"from": 1}})
	clients[0].expectOn("client-hi", "private-feed")
	clients[2].expectOn("client-hi", "private-feed")
	clients[2].Send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	clients[2].expect("pusher:pong")
	clients[2].none() // the tick excluded it on its own node

	clients[0].join("presence-team", `{"user_id":"n0"}`)
	clients[1].join("presence-team", `{"user_id":"n1"}`)
	if d := eventData(t, clients[0].expectOn("pusher_internal:member_added", "presence-team")); d["user_id"] != "n1" {
		t.Fatalf("member_added across nodes: %v", d)
	}
	status, body := pusherCall(t, nodes[2], http.MethodGet, "/apps/"+testPusherApp+"/channels/presence-team/users", nil, nil)
	if status != 200 || body != `{"users":[{"id":"n0"},{"id":"n1"}]}` && body != `{"users":[{"id":"n1"},{"id":"n0"}]}` {
		t.Fatalf("users through a third node: %d %s", status, body)
	}

	userData := `{"id":"erin"}`
	c := clients[1]
	c.Send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": pusher.UserAuth(testPusherKey, testPusherSecret, c.SocketID, userData), "user_data": userData}})
	c.expect("pusher:signin_success")
	if status, body := pusherCall(t, nodes[2], http.MethodPost, "/apps/"+testPusherApp+"/users/erin/terminate_connections", nil, map[string]any{}); status != 200 {
		t.Fatalf("terminate: %d %s", status, body)
	}
	if code := c.CloseCode(); code != pusher.CodeUnauthorized {
		t.Fatalf("terminated across nodes with %d", code)
	}
	if d := eventData(t, clients[0].expectOn("pusher_internal:member_removed", "presence-team")); d["user_id"] != "n1" {
		t.Fatalf("member_removed across nodes: %v", d)
	}
}
