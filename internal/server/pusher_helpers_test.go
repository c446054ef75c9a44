package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/pusher"
	"github.com/eddyrt/eddy/internal/servertest"
)

const (
	testPusherApp    = "app1"
	testPusherKey    = "pusherkey0123456789a"
	testPusherSecret = "pusher-secret-pusher-secret"
)

// withPusher turns the Pusher protocol on with the test credentials.
func withPusher(c *config.Config) {
	c.PusherAppID = testPusherApp
	c.PusherKey = testPusherKey
	c.PusherSecret = testPusherSecret
	c.PusherClientEvents = true
}

// pusherWS is a raw Pusher protocol 7 connection.
type pusherWS struct {
	*servertest.WS
	t        *testing.T
	SocketID string
}

func pusherURL(s *servertest.Server, key string) string {
	return "ws://" + s.Addr().String() + "/app/" + key + "?protocol=7&client=go-test&version=1.0"
}

// dialPusher connects and waits for pusher:connection_established.
func dialPusher(t *testing.T, s *servertest.Server) *pusherWS {
	t.Helper()
	p := &pusherWS{WS: servertest.Dial(t, pusherURL(s, testPusherKey)), t: t}
	f := p.expect("pusher:connection_established")
	d := eventData(t, f)
	p.SocketID, _ = d["socket_id"].(string)
	if d["activity_timeout"] != float64(120) || p.SocketID == "" {
		t.Fatalf("connection_established data %v", d)
	}
	return p
}

// expect returns the next frame, failing unless its event is event.
func (p *pusherWS) expect(event string) servertest.Frame {
	p.t.Helper()
	f := p.Next()
	if f.Str("event") != event {
		p.t.Fatalf("got %v, want event %q", f, event)
	}
	return f
}

// expectOn is expect that also checks the channel.
func (p *pusherWS) expectOn(event, channel string) servertest.Frame {
	p.t.Helper()
	f := p.expect(event)
	if f.Str("channel") != channel {
		p.t.Fatalf("got %v, want channel %q", f, channel)
	}
	return f
}

// quiet fails if a frame arrives within a moment: for "not delivered"
// assertions, made after a later frame proved delivery has happened.
func (p *pusherWS) none() {
	p.t.Helper()
	select {
	case f := <-p.Frames:
		p.t.Fatalf("unexpected frame %v", f)
	default:
	}
}

func (p *pusherWS) subscribe(channel, auth, channelData string) {
	p.t.Helper()
	d := map[string]string{"channel": channel}
	if auth != "" {
		d["auth"] = auth
	}
	if channelData != "" {
		d["channel_data"] = channelData
	}
	p.Send(map[string]any{"event": "pusher:subscribe", "data": d})
}

// join subscribes with a valid auth and waits for subscription_succeeded.
func (p *pusherWS) join(channel, channelData string) servertest.Frame {
	p.t.Helper()
	auth := ""
	if pusher.KindOf(channel).Private {
		auth = pusher.ChannelAuth(testPusherKey, testPusherSecret, p.SocketID, channel, channelData)
	}
	p.subscribe(channel, auth, channelData)
	return p.expectOn("pusher_internal:subscription_succeeded", channel)
}

// eventData parses a frame's data, a JSON string holding an object.
func eventData(t *testing.T, f servertest.Frame) map[string]any {
	t.Helper()
	s, ok := f["data"].(string)
	if !ok {
		t.Fatalf("data of %v is not a string", f)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("data of %v: %v", f, err)
	}
	return d
}

// pusherCall makes a signed Pusher HTTP API call and returns status and body.
func pusherCall(t *testing.T, s *servertest.Server, method, path string, query url.Values, body any) (int, string) {
	t.Helper()
	return pusherCallSigned(t, s, method, path, query, body, testPusherKey, testPusherSecret, time.Now())
}

func pusherCallSigned(t *testing.T, s *servertest.Server, method, path string, query url.Values, body any, key, secret string, now time.Time) (int, string) {
	t.Helper()
	if query == nil {
		query = url.Values{}
	}
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	pusher.SignRequest(key, secret, method, path, query, b, now)
	req, err := http.NewRequest(method, s.APIBase()+path+"?"+query.Encode(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out))
}

func trigger(t *testing.T, s *servertest.Server, body map[string]any) map[string]any {
	t.Helper()
	status, out := pusherCall(t, s, http.MethodPost, "/apps/"+testPusherApp+"/events", nil, body)
	if status != http.StatusOK {
		t.Fatalf("trigger %v: %d %s", body, status, out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("trigger answer %q: %v", out, err)
	}
	return m
}
