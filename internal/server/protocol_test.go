package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

func TestAuthReadyAndEveryRequest(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["room"] = config.ChannelOptions{Presence: true}
	})
	ws := servertest.Dial(t, s.WSURL)
	ws.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "alice", nil, []string{"room:*"})})
	ready := ws.Expect("ready")
	if ready.Str("user") != "alice" || ready.Str("conn") == "" {
		t.Fatalf("ready = %v", ready)
	}

	sub := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:1"})
	if sub.Type() != "subscribed" || sub.Str("channel") != "room:1" || sub.Str("epoch") == "" {
		t.Fatalf("subscribe reply = %v", sub)
	}
	if members, _ := sub["members"].([]any); len(members) != 1 {
		t.Fatalf("subscribed members = %v, want alice", sub["members"])
	}

	ack := ws.Request(map[string]any{"type": "publish", "id": 2, "channel": "room:1", "event": "new-post", "data": map[string]any{"text": "hi"}})
	if ack.Type() != "ack" || ack.Str("msg") == "" {
		t.Fatalf("publish reply = %v", ack)
	}
	msg := ws.Expect("message")
	if msg.Str("channel") != "room:1" || msg.Str("event") != "new-post" || msg.Str("user") != "alice" ||
		msg.Num("offset") != 1 || msg.Str("id") != ack.Str("msg") || msg.Num("ts") == 0 {
		t.Fatalf("message = %v", msg)
	}
	if data, _ := msg["data"].(map[string]any); data["text"] != "hi" {
		t.Fatalf("message data = %v", msg["data"])
	}

	if f := ws.Request(map[string]any{"type": "ping", "id": 3}); f.Type() != "pong" {
		t.Fatalf("ping reply = %v", f)
	}
	if f := ws.Request(map[string]any{"type": "presence", "id": 4, "channel": "room:1"}); f.Type() != "members" {
		t.Fatalf("presence reply = %v", f)
	}
	ref := ws.Request(map[string]any{"type": "refresh", "id": 5, "token": servertest.Token(t, "alice", nil, nil)})
	if ref.Type() != "refreshed" || ref.Num("exp") < float64(time.Now().Unix()) {
		t.Fatalf("refresh reply = %v", ref)
	}
	if f := ws.Request(map[string]any{"type": "unsubscribe", "id": 6, "channel": "room:1"}); f.Type() != "unsubscribed" {
		t.Fatalf("unsubscribe reply = %v", f)
	}
	// After unsubscribe nothing more arrives from the channel.
	if _, err := s.API().Publish(t.Context(), "room:1", "late", 1); err != nil {
		t.Fatal(err)
	}
	if f := ws.Request(map[string]any{"type": "ping", "id": 7}); f.Type() != "pong" {
		t.Fatalf("got %v after unsubscribe, want only the pong", f)
	}
}

func TestBadFramesGetErrorsAndConnectionStays(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxMessageBytes = 1024 })
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "bob", []string{"ok:*"}, []string{"ok:*"}))
	cases := []struct {
		name, frame, code string
	}{
		{"malformed JSON", `{"type":`, "bad_request"},
		{"unknown type", `{"type":"dance","id":1}`, "bad_request"},
		{"no type", `{"id":1}`, "bad_request"},
		{"missing id", `{"type":"ping"}`, "bad_request"},
		{"bad channel name", `{"type":"subscribe","id":1,"channel":"bad channel!"}`, "bad_request"},
		{"empty channel", `{"type":"subscribe","id":1,"channel":""}`, "bad_request"},
		{"too long channel", `{"type":"subscribe","id":1,"channel":"` + strings.Repeat("a", 256) + `"}`, "bad_request"},
		{"forbidden subscribe", `{"type":"subscribe","id":1,"channel":"secret:x"}`, "forbidden"},
		{"forbidden publish", `{"type":"publish","id":1,"channel":"secret:x","event":"e","data":1}`, "forbidden"},
		{"unsubscribe unknown", `{"type":"unsubscribe","id":1,"channel":"ok:never"}`, "not_found"},
		{"oversize frame", `{"type":"publish","id":1,"channel":"ok:1","event":"e","data":"` + strings.Repeat("x", 2000) + `"}`, "too_large"},
		{"publish without event", `{"type":"publish","id":1,"channel":"ok:1","data":1}`, "bad_request"},
		{"second auth", `{"type":"auth","id":1,"token":"x"}`, "bad_request"},
		{"since without epoch", `{"type":"subscribe","id":1,"channel":"ok:1","since":{"offset":3}}`, "bad_request"},
		{"presence off", `{"type":"presence","id":1,"channel":"ok:1"}`, "bad_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws.Send(c.frame)
			ws.ExpectError(c.code)
		})
	}
	if f := ws.Request(map[string]any{"type": "ping", "id": 99}); f.Type() != "pong" {
		t.Fatalf("connection unusable after bad frames: %v", f)
	}
	ws.Request(map[string]any{"type": "subscribe", "id": 100, "channel": "ok:1"})
	if f := ws.Request(map[string]any{"type": "subscribe", "id": 101, "channel": "ok:1"}); f.Str("code") != "bad_request" {
		t.Fatalf("double subscribe = %v, want bad_request", f)
	}
}

func TestRepeatedAbuseCloses4002(t *testing.T) {
	s := servertest.Start(t)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "mallory", nil, nil))
	for i := 0; i < 20; i++ {
		ws.Send(`nonsense`)
	}
	if code := ws.CloseCode(); code != 4002 {
		t.Fatalf("close code %d, want 4002", code)
	}
}

func TestUnauthorized(t *testing.T) {
	s := servertest.Start(t)
	expired, err := auth.Mint([]byte(servertest.Secret), auth.TokenSpec{Subject: "old", TTL: -time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	otherSecret, _ := auth.Mint([]byte("another-secret-another-secret-0123456"), auth.TokenSpec{Subject: "eve"})
	// Signed with the server's own secret and otherwise valid: only the
	// missing sub is wrong (auth.Mint refuses to make such a token).
	noSub, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp": time.Now().Add(time.Hour).Unix(), "channels": []string{"*"},
	}).SignedString([]byte(servertest.Secret))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"token without sub":  `{"type":"auth","token":"` + noSub + `"}`,
		"garbage token":      `{"type":"auth","token":"not-a-jwt"}`,
		"expired token":      `{"type":"auth","token":"` + expired + `"}`,
		"wrong secret":       `{"type":"auth","token":"` + otherSecret + `"}`,
		"subscribe first":    `{"type":"subscribe","id":1,"channel":"a"}`,
		"malformed first":    `{"type":`,
		"auth without token": `{"type":"auth"}`,
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			ws := servertest.Dial(t, s.WSURL)
			ws.Send(frame)
			f := ws.ExpectError("unauthorized")
			if name == "token without sub" && !strings.Contains(f.Str("message"), "sub") {
				t.Fatalf("error %v does not say the sub claim is missing", f)
			}
			if code := ws.CloseCode(); code != 4001 {
				t.Fatalf("close code %d, want 4001", code)
			}
		})
	}
}

func TestAuthTimeoutCloses4008(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.AuthTimeout = 200 * time.Millisecond })
	ws := servertest.Dial(t, s.WSURL)
	if code := ws.CloseCode(); code != 4008 {
		t.Fatalf("close code %d, want 4008", code)
	}
}

func TestTokenExpiryCloses4003UnlessRefreshed(t *testing.T) {
	s := servertest.Start(t)
	short, err := auth.Mint([]byte(servertest.Secret), auth.TokenSpec{Subject: "sam", TTL: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lapsing := servertest.Connect(t, s.WSURL, short)
	refreshed := servertest.Connect(t, s.WSURL, short)
	if f := refreshed.Request(map[string]any{"type": "refresh", "id": 1, "token": servertest.Token(t, "sam", nil, nil)}); f.Type() != "refreshed" {
		t.Fatalf("refresh = %v", f)
	}
	if f := refreshed.Request(map[string]any{"type": "refresh", "id": 2, "token": servertest.Token(t, "someone-else", nil, nil)}); f.Str("code") != "unauthorized" {
		t.Fatalf("refresh as another user = %v, want unauthorized", f)
	}
	if code := lapsing.CloseCode(); code != 4003 {
		t.Fatalf("close code %d, want 4003", code)
	}
	// The refreshed connection outlived the first token.
	if f := refreshed.Request(map[string]any{"type": "ping", "id": 3}); f.Type() != "pong" {
		t.Fatalf("refreshed connection: %v", f)
	}
}

func TestRateLimits(t *testing.T) {
	const rate = 2 // publishes per second, and the burst: int(rate)
	s := servertest.Start(t, func(c *config.Config) {
		c.PublishRate = rate
		c.MaxSubscriptions = 2
	})
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "fast", nil, []string{"*"}))
	// Twenty publishes at once: the burst's worth are accepted, in order,
	// and the rest refused, plus one more for each 1/rate the whole exchange
	// took (none when it took less, which is the usual case).
	start := time.Now()
	for i := 1; i <= 20; i++ {
		ws.Send(map[string]any{"type": "publish", "id": i, "channel": "c", "event": "e", "data": i})
	}
	var accepted []int
	for range 20 {
		f := ws.Next()
		switch {
		case f.Type() == "ack":
			accepted = append(accepted, int(f.Num("id")))
		case f.Str("code") != "rate_limited":
			t.Fatalf("publish reply %v, want ack or rate_limited", f)
		}
	}
	refills := int(time.Since(start).Seconds() * rate)
	if len(accepted) < rate || len(accepted) > rate+refills {
		t.Fatalf("%d of 20 immediate publishes accepted (%v) at publish_rate %d, want %d (+%d refilled while they ran)", len(accepted), accepted, rate, rate, refills)
	}
	for i := 0; i < rate; i++ {
		if accepted[i] != i+1 {
			t.Fatalf("accepted publishes %v: the burst is the first %d", accepted, rate)
		}
	}
	ws.Request(map[string]any{"type": "subscribe", "id": 100, "channel": "a"})
	ws.Request(map[string]any{"type": "subscribe", "id": 101, "channel": "b"})
	if f := ws.Request(map[string]any{"type": "subscribe", "id": 102, "channel": "c"}); f.Str("code") != "rate_limited" {
		t.Fatalf("third subscription with max_subscriptions 2 = %v", f)
	}
}

func TestAllowedOrigins(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	req, _ := newUpgradeRequest(s.WSURL, "https://evil.example.com")
	resp, err := req()
	if err != nil {
		t.Fatal(err)
	}
	if resp != 403 {
		t.Fatalf("upgrade from a foreign origin: status %d, want 403", resp)
	}
	req, _ = newUpgradeRequest(s.WSURL, "https://app.example.com")
	if resp, _ := req(); resp != 101 {
		t.Fatalf("upgrade from the allowed origin: status %d, want 101", resp)
	}
}

func TestHugeFrameCloses1009(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxMessageBytes = 1024 })
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "big", nil, nil))
	ws.Send(`{"type":"ping","id":1,"pad":"` + strings.Repeat("x", 3*1024+4096) + `"}`)
	if code := ws.CloseCode(); code != 1009 {
		t.Fatalf("close code %d, want 1009", code)
	}
}
