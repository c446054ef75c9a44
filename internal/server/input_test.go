package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/servertest"
)

// Everything a publisher sends becomes part of text frames written to
// every subscriber. These tests send what would make such a frame invalid
// (invalid UTF-8, nesting past the limit, non-finite numbers) through each
// way in, and check that the publisher is refused with the position, and
// that subscribers stay connected and get the next good message.

// watch subscribes a fresh connection to channel.
func watch(t *testing.T, s *servertest.Server, channel string) *servertest.WS {
	t.Helper()
	sub := servertest.Connect(t, s.WSURL, servertest.Token(t, "watcher", nil, nil))
	if f := sub.Request(map[string]any{"type": "subscribe", "id": 1, "channel": channel}); f.Type() != "subscribed" {
		t.Fatalf("subscribe %s: %v", channel, f)
	}
	return sub
}

// expectUnharmed publishes a good message on channel and checks that sub
// receives it as its very next frame (the bad one never arrived) and still
// answers a ping.
func expectUnharmed(t *testing.T, s *servertest.Server, sub *servertest.WS, channel string) {
	t.Helper()
	if _, err := s.API().Publish(context.Background(), channel, "good", map[string]string{"text": "still here"}); err != nil {
		t.Fatalf("good publish after the bad one: %v", err)
	}
	m := sub.Expect("message")
	if m.Str("event") != "good" {
		t.Fatalf("subscriber got %v, want the good message", m)
	}
	if f := sub.Request(map[string]any{"type": "ping", "id": 777}); f.Type() != "pong" {
		t.Fatalf("subscriber after the bad publish: %v", f)
	}
}

func expectOffset(t *testing.T, s *servertest.Server, channel string, want uint64) {
	t.Helper()
	h, err := s.API().History(context.Background(), channel, 0, 0)
	if err != nil || h.Offset != want {
		t.Fatalf("%s: history offset %v (%v), want %d: a refused publish must not be stored", channel, h, err, want)
	}
}

func TestPoisonPublishOverHTTPAPI(t *testing.T) {
	s := servertest.Start(t)
	sub := watch(t, s, "poison")
	url := s.Base + "/api/v1/publish"
	for _, c := range []struct{ name, body, msg string }{
		{"invalid UTF-8 in data", "{\"channel\":\"poison\",\"event\":\"e\",\"data\":\"\xc3\x28\"}", "data: invalid UTF-8 at byte 1"},
		{"invalid UTF-8 in the event", "{\"channel\":\"poison\",\"event\":\"e\xff\",\"data\":1}", "body: invalid UTF-8 at byte 30"},
		{"invalid UTF-8 deep in data", "{\"channel\":\"poison\",\"event\":\"e\",\"data\":{\"text\":\"ok\",\"more\":[\"\xff\xfe\"]}}", "data: invalid UTF-8 at byte 22"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, eb, raw := doRaw(t, "POST", url, servertest.APIKey, c.body)
			if status != http.StatusBadRequest || eb.Error.Code != "bad_request" || !strings.Contains(eb.Error.Message, c.msg) {
				t.Fatalf("got %d %s, want 400 bad_request saying %q", status, raw, c.msg)
			}
		})
	}
	expectUnharmed(t, s, sub, "poison")
	expectOffset(t, s, "poison", 1)
}

func TestPoisonPublishOverWebSocket(t *testing.T) {
	s := servertest.Start(t)
	sub := watch(t, s, "poison")
	pub := servertest.Connect(t, s.WSURL, servertest.Token(t, "writer", nil, []string{"*"}))
	frame := []byte("{\"type\":\"publish\",\"id\":5,\"channel\":\"poison\",\"event\":\"e\",\"data\":\"\xff\xfe\"}")
	// A binary frame is not checked as text by the WebSocket layer: only
	// Eddy's own check stands between it and every subscriber.
	if err := pub.Conn.WriteMessage(gws.OpcodeBinary, frame); err != nil {
		t.Fatal(err)
	}
	f := pub.ExpectError("bad_request")
	if f.Num("id") != 5 || !strings.Contains(f.Str("message"), "data: invalid UTF-8 at byte 1") {
		t.Fatalf("binary publish of invalid UTF-8: %v", f)
	}
	if err := pub.Conn.WriteMessage(gws.OpcodeBinary, []byte("{\"type\":\"publish\",\"id\":7,\"channel\":\"poison\",\"event\":\"\xc3\x28\",\"data\":1}")); err != nil {
		t.Fatal(err)
	}
	if f := pub.ExpectError("bad_request"); f.Num("id") != 7 || !strings.Contains(f.Str("message"), "frame: invalid UTF-8 at byte 53") {
		t.Fatalf("binary publish with an invalid event: %v", f)
	}
	expectUnharmed(t, s, sub, "poison")
	expectOffset(t, s, "poison", 1)
	// The publisher stays usable too.
	if f := pub.Request(map[string]any{"type": "publish", "id": 6, "channel": "poison", "event": "e", "data": "fine"}); f.Type() != "ack" {
		t.Fatalf("publisher after its refused publish: %v", f)
	}

	// A text frame with invalid UTF-8 breaks the WebSocket protocol itself
	// (RFC 6455 8.1): the publisher alone is closed, with 1007.
	bad := servertest.Connect(t, s.WSURL, servertest.Token(t, "writer", nil, []string{"*"}))
	bad.Send(frame)
	if code := bad.CloseCode(); code != 1007 {
		t.Fatalf("invalid text frame: close code %d, want 1007", code)
	}
	if m := sub.Expect("message"); m["data"] != "fine" {
		t.Fatalf("subscriber got %v", m)
	}
	expectUnharmed(t, s, sub, "poison")
	expectOffset(t, s, "poison", 3)
}

func TestDataNestedTooDeepIsRefusedNamingTheLimit(t *testing.T) {
	s := servertest.Start(t)
	sub := watch(t, s, "deep")
	pub := servertest.Connect(t, s.WSURL, servertest.Token(t, "writer", nil, []string{"*"}))
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, n := range []int{65, 9000, 20000} {
		t.Run(fmt.Sprintf("%d deep over the API", n), func(t *testing.T) {
			status, eb, raw := doRaw(t, "POST", s.Base+"/api/v1/publish", servertest.APIKey, `{"channel":"deep","event":"e","data":`+nested(n)+`}`)
			if status != http.StatusBadRequest || !strings.Contains(eb.Error.Message, "data: nested deeper than 64 levels (the limit) at byte 64") {
				t.Fatalf("got %d %.300s", status, raw)
			}
		})
		t.Run(fmt.Sprintf("%d deep over WebSocket", n), func(t *testing.T) {
			pub.Send(`{"type":"publish","id":9,"channel":"deep","event":"e","data":` + nested(n) + `}`)
			f := pub.ExpectError("bad_request")
			if !strings.Contains(f.Str("message"), "data: nested deeper than 64 levels (the limit) at byte 64") {
				t.Fatalf("got %v", f)
			}
			if n < 10000 && f.Num("id") != 9 {
				// Deeper frames are refused before their id is read.
				t.Fatalf("the error does not answer the publish: %v", f)
			}
		})
	}
	if f := pub.Request(map[string]any{"type": "publish", "id": 10, "channel": "deep", "event": "e", "data": json.RawMessage(nested(64))}); f.Type() != "ack" {
		t.Fatalf("64 levels, the limit, refused: %v", f)
	}
	if m := sub.Expect("message"); len(fmt.Sprint(m["data"])) != 128 {
		t.Fatalf("64-deep message arrived as %v", m)
	}
	expectUnharmed(t, s, sub, "deep")
}

func TestNonFiniteNumbersAreRefused(t *testing.T) {
	s := servertest.Start(t)
	sub := watch(t, s, "nums")
	status, eb, raw := doRaw(t, "POST", s.Base+"/api/v1/publish", servertest.APIKey, `{"channel":"nums","event":"e","data":{"x":[1,1e999]}}`)
	if status != http.StatusBadRequest || !strings.Contains(eb.Error.Message, "data: number 1e999 is out of range (not finite) at byte 8") {
		t.Fatalf("got %d %s", status, raw)
	}
	pub := servertest.Connect(t, s.WSURL, servertest.Token(t, "writer", nil, []string{"*"}))
	pub.Send(`{"type":"publish","id":3,"channel":"nums","event":"e","data":-2E+400}`)
	if f := pub.ExpectError("bad_request"); f.Num("id") != 3 || !strings.Contains(f.Str("message"), "data: number -2E+400 is out of range (not finite) at byte 0") {
		t.Fatalf("got %v", f)
	}
	if f := pub.Request(map[string]any{"type": "publish", "id": 4, "channel": "nums", "event": "e", "data": json.RawMessage(`[1e308,-1e-999]`)}); f.Type() != "ack" {
		t.Fatalf("finite numbers refused: %v", f)
	}
	if m := sub.Expect("message"); fmt.Sprint(m["data"]) != "[1e+308 -0]" {
		t.Fatalf("got %v", m)
	}
	expectUnharmed(t, s, sub, "nums")
}

func TestPublishToTheSameChannelTwiceDeliversOnce(t *testing.T) {
	s := servertest.Start(t)
	sub := watch(t, s, "dup")
	id, err := s.API().PublishMany(context.Background(), []string{"dup", "dup", "other", "dup"}, "e", 1)
	if err != nil {
		t.Fatal(err)
	}
	if m := sub.Expect("message"); m.Str("id") != id {
		t.Fatalf("got %v", m)
	}
	expectOffset(t, s, "dup", 1)
	expectOffset(t, s, "other", 1)
	expectUnharmed(t, s, sub, "dup")
}

// TestTokenClaimsThatWouldBreakFrames: sub and info reach other clients'
// frames (messages' user, presence members), so a token carrying what no
// frame may is refused at auth and at refresh, naming the claim.
func TestTokenClaimsThatWouldBreakFrames(t *testing.T) {
	s := servertest.Start(t)
	mint := func(sub string, info string) string {
		tok, err := auth.Mint([]byte(servertest.Secret), auth.TokenSpec{Subject: sub, TTL: time.Hour, Channels: []string{"*"}, Info: json.RawMessage(info)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []struct{ name, sub, info, msg string }{
		{"invalid UTF-8 in info", "u", "{\"name\":\"\xff\"}", "info: invalid UTF-8 at byte 9"},
		{"info nested too deep", "u", strings.Repeat("[", 100) + strings.Repeat("]", 100), "info: nested deeper than 64 levels"},
		{"control character in sub", "a\x01b", "", "sub: non-printable character U+0001 at byte 1"},
		{"newline in sub", "a\nb", "", "sub: non-printable character U+000A at byte 1"},
		{"sub of 10 KB", strings.Repeat("x", 10000), "", "sub is 10000 characters long; the limit is 255"},
		{"sub of 256 characters", strings.Repeat("é", 256), "", "sub is 256 characters long; the limit is 255"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws := servertest.Dial(t, s.WSURL)
			ws.Send(map[string]any{"type": "auth", "token": mint(c.sub, c.info)})
			if f := ws.ExpectError("unauthorized"); !strings.Contains(f.Str("message"), c.msg) {
				t.Fatalf("got %v, want a message containing %q", f, c.msg)
			}
			if code := ws.CloseCode(); code != 4001 {
				t.Fatalf("close code %d, want 4001", code)
			}

			ok := servertest.Connect(t, s.WSURL, mint("u", `{"name":"Zoë"}`))
			f := ok.Request(map[string]any{"type": "refresh", "id": 2, "token": mint(c.sub, c.info)})
			if f.Str("code") != "unauthorized" || !strings.Contains(f.Str("message"), c.msg) {
				t.Fatalf("refresh: %v", f)
			}
		})
	}
	// 255 characters (510 bytes) is the limit, not 255 bytes.
	ok := servertest.Connect(t, s.WSURL, mint(strings.Repeat("é", 248)+" user ☃", `{"name":"Zoë","tags":[1,2]}`))
	if f := ok.Request(map[string]any{"type": "ping", "id": 1}); f.Type() != "pong" {
		t.Fatal(f)
	}
}

// TestFunctionOutputIsCheckedAndBlamedOnTheFunction: what a function hands
// back is checked like a publisher's data; a function producing what may
// not be published has failed (counted, handled by its association's
// on_error), and its publisher is not told it sent something bad.
func TestFunctionOutputIsCheckedAndBlamedOnTheFunction(t *testing.T) {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Channel string `json:"channel"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		switch in.Channel {
		case "fn:modify":
			_, _ = w.Write([]byte("{\"action\":\"pass\",\"message\":{\"data\":{\"text\":\"\xc3\x28\"}}}"))
		case "fn:emit":
			_, _ = w.Write([]byte("{\"action\":\"pass\",\"publish\":[{\"channel\":\"fn:side\",\"event\":\"e\",\"data\":\"\xff\"}]}"))
		case "fn:huge":
			_, _ = w.Write([]byte(`{"action":"pass","message":{"data":{"n":1e999}}}`))
		default:
			_, _ = w.Write([]byte(`{"action":"pass"}`))
		}
	}))
	defer fn.Close()
	s := servertest.StartNode(t)
	deploy(t, s, "garbler", map[string]any{"runtime": "http", "url": fn.URL})
	deploy(t, s, "nester", js(`function handle(m){ var d = 0; for (var i = 0; i < 100; i++) d = [d]; m.data = d; return m }`))
	deploy(t, s, "deepemit", js(`function handle(m, ctx){ var d = 0; for (var i = 0; i < 100; i++) d = {d: d}; ctx.publish("fn:side", "e", d); return m }`))
	associate(t, s, "fn:*", "pass", "garbler")
	associate(t, s, "js:pass", "pass", "nester")
	associate(t, s, "js:drop", "drop", "nester")
	associate(t, s, "js:emit", "pass", "deepemit")

	sub := servertest.Connect(t, s.WSURL, servertest.Token(t, "watcher", nil, nil))
	for i, ch := range []string{"fn:modify", "fn:emit", "fn:huge", "fn:side", "js:pass", "js:drop", "js:emit"} {
		if f := sub.Request(map[string]any{"type": "subscribe", "id": i + 1, "channel": ch}); f.Type() != "subscribed" {
			t.Fatal(f)
		}
	}
	pub := servertest.Connect(t, s.WSURL, servertest.Token(t, "writer", nil, []string{"*"}))
	for i, ch := range []string{"fn:modify", "fn:emit", "fn:huge", "js:pass", "js:drop", "js:emit"} {
		f := pub.Request(map[string]any{"type": "publish", "id": 100 + i, "channel": ch, "event": "say", "data": map[string]string{"text": "orig"}})
		if f.Type() != "ack" {
			t.Fatalf("%s: the publisher is refused for the function's output: %v", ch, f)
		}
		if ch == "js:drop" {
			continue // on_error drop: the failed function's message is dropped
		}
		// on_error pass: the original goes out, the bad output does not.
		m := sub.Expect("message")
		if m.Str("channel") != ch || m["data"].(map[string]any)["text"] != "orig" {
			t.Fatalf("after a function's bad output on %s: got %v", ch, m)
		}
	}
	expectUnharmed(t, s, sub, "js:pass")
	metrics := metricsText(t, s)
	for _, fn := range []string{"garbler", "nester", "deepemit"} {
		// nester failed on js:pass, js:drop and expectUnharmed's publish.
		want := map[string]int{"garbler": 3, "nester": 3, "deepemit": 1}[fn]
		line := fmt.Sprintf(`eddy_functions_errors_total{function=%q} %d`, fn, want)
		if !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %s:\n%s", line, grepLines(metrics, "eddy_functions_errors_total"))
		}
	}
}

func metricsText(t *testing.T, s *servertest.Server) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.Base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+servertest.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
