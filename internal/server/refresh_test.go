package server_test

import (
	"testing"

	"github.com/eddyrt/eddy/internal/servertest"
)

// TestRefreshWithFewerChannelsDropsTheirSubscriptions: a refreshed token
// that no longer allows a subscribed channel ends that subscription, told
// with an unsubscribed frame carrying reason not_allowed; its messages stop
// while those of still-allowed channels go on.
func TestRefreshWithFewerChannelsDropsTheirSubscriptions(t *testing.T) {
	s := servertest.Start(t)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "alice", []string{"a:*", "b:*"}, nil))
	for i, ch := range []string{"a:1", "b:1", "b:2"} {
		if r := ws.Request(map[string]any{"type": "subscribe", "id": i + 1, "channel": ch}); r.Type() != "subscribed" {
			t.Fatalf("subscribe %s: %v", ch, r)
		}
	}
	ws.Send(map[string]any{"type": "refresh", "id": 9, "token": servertest.Token(t, "alice", []string{"a:*"}, nil)})
	for _, ch := range []string{"b:1", "b:2"} {
		f := ws.Next()
		if f.Type() != "unsubscribed" || f.Str("channel") != ch || f.Str("reason") != "not_allowed" {
			t.Fatalf("after refresh: %v, want unsubscribed %s with reason not_allowed", f, ch)
		}
		if _, hasID := f["id"]; hasID {
			t.Fatalf("unasked unsubscribed %v carries an id", f)
		}
	}
	if f := ws.Next(); f.Type() != "refreshed" || f.Num("id") != 9 {
		t.Fatalf("got %v, want refreshed", f)
	}
	// b:1 is published first: were it still subscribed, its message would
	// come before a:1's.
	for _, ch := range []string{"b:1", "a:1"} {
		if _, err := s.API().Publish(t.Context(), ch, "e", ch); err != nil {
			t.Fatal(err)
		}
	}
	if f := ws.Expect("message"); f.Str("channel") != "a:1" {
		t.Fatalf("first message after the refresh is from %s, want a:1", f.Str("channel"))
	}
	// Unsubscribing a dropped channel is a not_found: it is really gone.
	ws.Send(map[string]any{"type": "unsubscribe", "id": 10, "channel": "b:1"})
	ws.ExpectError("not_found")
	// A refresh that allows everything it reads drops nothing.
	ws.Send(map[string]any{"type": "refresh", "id": 11, "token": servertest.Token(t, "alice", []string{"a:*"}, nil)})
	if f := ws.Next(); f.Type() != "refreshed" {
		t.Fatalf("second refresh: %v, want refreshed and nothing dropped", f)
	}
}
