package webhooks_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/webhooks"
)

// pusherCheck is e2e/webhooks: the official pusher npm SDK and a script
// that runs its webhook validation; ./scripts/test installs it.
const pusherCheck = "../../e2e/webhooks"

type sdkVerdict struct {
	Valid  bool `json:"valid"`
	Events []struct {
		Name     string `json:"name"`
		Channel  string `json:"channel"`
		UserID   string `json:"user_id"`
		Event    string `json:"event"`
		Data     string `json:"data"`
		SocketID string `json:"socket_id"`
	} `json:"events"`
	TimeMS int64 `json:"time_ms"`
}

// pusherSDKVerify runs the SDK's pusher.webhook({headers, rawBody}).isValid()
// over posts with key and secret.
func pusherSDKVerify(t *testing.T, key, secret string, posts []post) []sdkVerdict {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pusherCheck, "node_modules", "pusher")); err != nil {
		t.Fatalf("the pusher SDK is not installed in e2e/webhooks (%v): run ./scripts/test go, or npm ci there", err)
	}
	type in struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	var input []in
	for _, p := range posts {
		h := map[string]string{}
		for k := range p.header {
			h[strings.ToLower(k)] = p.header.Get(k) // as Node's http module gives them
		}
		input = append(input, in{Headers: h, Body: string(p.body)})
	}
	b, _ := json.Marshal(input)
	cmd := exec.Command("node", "verify.mjs", key, secret)
	cmd.Dir = pusherCheck
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node verify.mjs: %v\n%s", err, stderr.String())
	}
	var verdicts []sdkVerdict
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var v sdkVerdict
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("verify.mjs printed %q: %v", line, err)
		}
		verdicts = append(verdicts, v)
	}
	if len(verdicts) != len(posts) {
		t.Fatalf("%d verdicts for %d posts", len(verdicts), len(posts))
	}
	return verdicts
}

// TestPusherFormatPassesThePusherSDKValidation: a receiver in Pusher's
// format gets Pusher's body and X-Pusher-Key / X-Pusher-Signature, which
// the official pusher SDK's webhook validation accepts with the app's key
// and secret (and refuses with another secret); the events read back are
// the ones that happened, in Pusher's fields.
func TestPusherFormatPassesThePusherSDKValidation(t *testing.T) {
	const key, secret = "app-key-1", "app-secret-1"
	rcv := newReceiver(t)
	s, wh := startNode(t, func(c *config.Config) {
		c.Webhooks = []config.Webhook{{URL: rcv.URL(), Secret: secret, Key: key, Format: config.WebhookFormatPusher, Events: config.PusherWebhookEvents}}
	})
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "erin", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:lobby"})
	wh.Emit("", webhooks.Event{Name: webhooks.ClientEvent, Channel: "chat:lobby", Event: "client-typing", Data: `{"on":true}`, SocketID: "12.34", UserID: "erin"})
	wh.Emit("", webhooks.Event{Name: webhooks.CacheMiss, Channel: "cache-news"})
	// Function errors are not Pusher events: a Pusher receiver never gets one.
	wh.FunctionFailed("f", "chat:lobby", os.ErrDeadlineExceeded)
	got := map[string]int{}
	servertest.Eventually(t, "four events", func() bool {
		n := 0
		for _, p := range rcv.posts() {
			var b struct{ Events []json.RawMessage }
			_ = json.Unmarshal(p.body, &b)
			n += len(b.Events)
		}
		return n == 4
	})
	posts := rcv.posts()
	for _, v := range pusherSDKVerify(t, key, secret, posts) {
		if !v.Valid || v.TimeMS == 0 {
			t.Fatalf("the pusher SDK refused a webhook: %+v", v)
		}
		for _, e := range v.Events {
			got[e.Name]++
			switch e.Name {
			case webhooks.MemberAdded:
				if e.UserID != "erin" || e.Channel != "chat:lobby" {
					t.Fatalf("member_added %+v", e)
				}
			case webhooks.ClientEvent:
				if e.Event != "client-typing" || e.Data != `{"on":true}` || e.SocketID != "12.34" || e.UserID != "erin" {
					t.Fatalf("client_event %+v", e)
				}
			}
		}
	}
	want := map[string]int{webhooks.ChannelOccupied: 1, webhooks.MemberAdded: 1, webhooks.ClientEvent: 1, webhooks.CacheMiss: 1}
	for name, n := range want {
		if got[name] != n {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	for _, p := range posts {
		if bytes.Contains(p.body, []byte(`"id"`)) || p.header.Get("X-Eddy-Signature") != "" {
			t.Fatalf("a Pusher-format POST carries Eddy's fields: %s %v", p.body, p.header)
		}
	}
	for _, v := range pusherSDKVerify(t, key, "another-secret", posts) {
		if v.Valid {
			t.Fatal("the pusher SDK accepted the webhook with another secret")
		}
	}
}
