package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/memory"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// offsetLog records what a Go client handed to the application, per channel.
type offsetLog struct {
	mu    sync.Mutex
	byCh  map[string][]uint64
	total atomic.Int64
}

func (l *offsetLog) add(m *client.Message) {
	l.mu.Lock()
	if l.byCh == nil {
		l.byCh = map[string][]uint64{}
	}
	l.byCh[m.Channel] = append(l.byCh[m.Channel], m.Offset)
	l.mu.Unlock()
	l.total.Add(1)
}

// checkExactlyOnceInOrder fails unless channel's messages were 1..n, each once, in order.
func (l *offsetLog) checkExactlyOnceInOrder(t *testing.T, channel string, n int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.byCh[channel]
	if len(got) != n {
		t.Errorf("%s: received %d messages, want %d", channel, len(got), n)
	}
	for i, off := range got {
		if off != uint64(i+1) {
			t.Fatalf("%s: message %d has offset %d (previous %v): not exactly once in offset order", channel, i, off, got[max(0, i-3):i])
		}
	}
}

// TestRecoveryExactlyOnceUnderConnectionCuts is the property: a publisher
// sends 10,000 messages at full speed while the subscriber's connection is
// cut again and again, and the subscriber ends with every message once,
// in offset order.
func TestRecoveryExactlyOnceUnderConnectionCuts(t *testing.T) {
	runCutsProperty(t, []string{"feed:one"}, 10000)
}

// TestRecoveryExactlyOnceOnSeveralChannels is the same with one client on
// four channels published to at once.
func TestRecoveryExactlyOnceOnSeveralChannels(t *testing.T) {
	runCutsProperty(t, []string{"feed:a", "feed:b", "feed:c", "feed:d"}, 2500)
}

func runCutsProperty(t *testing.T, channels []string, perChannel int) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 10000}
	})
	ctx := context.Background()
	var connects, unrecovered atomic.Int64
	c, err := client.Dial(ctx, client.Config{
		URL: s.WSURL, Token: servertest.Token(t, "reader", nil, nil),
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		OnState: func(st client.State, _ error) {
			if st == client.StateConnected {
				connects.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got offsetLog
	for _, ch := range channels {
		_, err := c.Subscribe(ctx, ch, client.WithHandler(got.add), client.WithRecoverHandler(func(ok bool) {
			if !ok {
				unrecovered.Add(1)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
	}

	total := perChannel * len(channels)
	const publishers = 4
	var published atomic.Int64
	var pubWG sync.WaitGroup
	api := s.API()
	for p := 0; p < publishers; p++ {
		pubWG.Add(1)
		go func(p int) {
			defer pubWG.Done()
			// Publisher p takes every publishers-th message; offsets, not
			// this numbering, define the order subscribers see.
			for i := p; i < total; i += publishers {
				ch := channels[i%len(channels)]
				if _, err := api.Publish(ctx, ch, "e", i); err != nil {
					t.Errorf("publish %d: %v", i, err)
					return
				}
				published.Add(1)
			}
		}(p)
	}
	pubDone := make(chan struct{})
	go func() { pubWG.Wait(); close(pubDone) }()

	// Cut the subscriber's connection each time it made some progress,
	// while the publishers run.
	cuts := 0
	for done := false; !done; {
		seen := got.total.Load()
		for !done && got.total.Load() < seen+int64(total/40) {
			select {
			case <-pubDone:
				done = true
			case <-time.After(time.Millisecond):
			}
		}
		if !done {
			s.DropConnections()
			cuts++
		}
	}
	if t.Failed() {
		return
	}
	servertest.EventuallyWithin(t, 60*time.Second, fmt.Sprintf("all %d messages (got %d)", total, got.total.Load()), func() bool {
		return got.total.Load() >= int64(total)
	})
	for _, ch := range channels {
		got.checkExactlyOnceInOrder(t, ch, perChannel)
	}
	if cuts < 3 || connects.Load() < 2 {
		t.Fatalf("only %d cuts and %d connections: the test did not exercise recovery", cuts, connects.Load())
	}
	if n := unrecovered.Load(); n != 0 {
		t.Fatalf("%d resubscribes were not recovered although the history covered every gap", n)
	}
	t.Logf("%d messages on %d channels, %d cuts, %d connections", total, len(channels), cuts, connects.Load())
}

// TestCatchUpMergeWhilePublishing checks the raw frames: a subscriber that
// comes back with since while publishes go on gets the missed messages and
// then the live ones, consecutive offsets with no gap and no duplicate.
func TestCatchUpMergeWhilePublishing(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 10000}
	})
	const total, publishers = 3000, 4
	stop := make(chan struct{})
	var pubWG sync.WaitGroup
	var next atomic.Int64
	for p := 0; p < publishers; p++ {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			for next.Add(1) <= total {
				if _, err := s.API().Publish(context.Background(), "feed:x", "e", 1); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	defer func() { close(stop); pubWG.Wait() }()

	token := servertest.Token(t, "u", nil, nil)
	var epoch string
	var last uint64
	rounds := 0
	for last < total {
		ws := servertest.Connect(t, s.WSURL, token)
		req := map[string]any{"type": "subscribe", "id": 1, "channel": "feed:x"}
		if epoch != "" {
			req["since"] = map[string]any{"epoch": epoch, "offset": last}
		}
		sub := ws.Request(req)
		if sub.Type() != "subscribed" || sub.Str("epoch") == "" {
			t.Fatalf("subscribe: %v", sub)
		}
		if epoch == "" {
			epoch, last = sub.Str("epoch"), uint64(sub.Num("offset"))
		} else if sub["recovered"] != true {
			t.Fatalf("round %d: not recovered from offset %d: %v", rounds, last, sub)
		}
		// Read a few dozen messages (or to the end), then go away: many
		// short rounds, so many catch-ups overlap with publishes.
		for n := 0; n < 40 && last < total; n++ {
			m := ws.Expect("message")
			off := uint64(m.Num("offset"))
			if off != last+1 || m.Str("epoch") != epoch {
				t.Fatalf("round %d: got offset %d epoch %s after %d: gap or duplicate", rounds, off, m.Str("epoch"), last)
			}
			last = off
		}
		_ = ws.Conn.NetConn().Close()
		rounds++
	}
	if rounds < 10 {
		t.Fatalf("only %d rounds", rounds)
	}
}

// windowBroker publishes inside a subscribe's catch-up: before the
// history read (so those messages are both replayed and delivered live)
// and after it (so they are only live), deterministically.
type windowBroker struct {
	*memory.Broker
	armed atomic.Bool
}

func (b *windowBroker) History(ctx context.Context, channel string, q broker.HistoryQuery) ([]*protocol.Message, protocol.Position, error) {
	if !b.armed.CompareAndSwap(true, false) {
		return b.Broker.History(ctx, channel, q)
	}
	pub := func() {
		if _, err := b.Publish(ctx, &protocol.Message{Channel: channel, Event: "e", Data: []byte("1")}, q.Options); err != nil {
			panic(err)
		}
	}
	pub()
	pub()
	msgs, pos, err := b.Broker.History(ctx, channel, q)
	pub()
	pub()
	return msgs, pos, err
}

func TestCatchUpMergesMessagesPublishedDuringIt(t *testing.T) {
	cfg := servertest.Config()
	cfg.Namespaces["feed"] = config.ChannelOptions{HistorySize: 100}
	b := &windowBroker{Broker: memory.New()}
	s := servertest.StartWith(t, server.Options{Config: cfg, Broker: b})
	publishN(t, s, "feed:1", 3)
	for _, since := range []any{nil, map[string]any{"epoch": b.Epoch(), "offset": 1}} {
		ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
		req := map[string]any{"type": "subscribe", "id": 1, "channel": "feed:1"}
		if since != nil {
			req["since"] = since
		}
		b.armed.Store(true)
		f := ws.Request(req)
		top := uint64(f.Num("offset"))
		from := top + 1 // without since: only what comes after the position
		if since != nil {
			if f["recovered"] != true {
				t.Fatalf("not recovered: %v", f)
			}
			from = 2
		}
		for want := from; want <= top+2; want++ {
			if m := ws.Expect("message"); uint64(m.Num("offset")) != want {
				t.Fatalf("since %v (position %d): got offset %v, want %d", since, top, m["offset"], want)
			}
		}
		expectNoMessages(t, ws)
	}
}

// subscribeSince connects and subscribes with since, returning the reply.
func subscribeSince(t *testing.T, s *servertest.Server, channel, epoch string, offset uint64) (*servertest.WS, servertest.Frame) {
	t.Helper()
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": channel,
		"since": map[string]any{"epoch": epoch, "offset": offset}})
	return ws, f
}

// expectNoMessages fails if a message arrives before a ping's pong.
func expectNoMessages(t *testing.T, ws *servertest.WS) {
	t.Helper()
	ws.Send(map[string]any{"type": "ping", "id": 99})
	if f := ws.Next(); f.Type() != "pong" {
		t.Fatalf("got %v, want nothing before the pong", f)
	}
}

func publishN(t *testing.T, s *servertest.Server, channel string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := s.API().Publish(context.Background(), channel, "e", i); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRecoveryBeyondHistorySizeIsNotRecovered(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 5}
	})
	first := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	sub := first.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:1"})
	epoch := sub.Str("epoch")
	if epoch == "" || sub.Num("offset") != 0 || sub["recovered"] != nil {
		t.Fatalf("first subscribe: %v", sub)
	}
	publishN(t, s, "feed:1", 4)

	// Within the history: recovered, with exactly the missed messages.
	ws, f := subscribeSince(t, s, "feed:1", epoch, 1)
	if f["recovered"] != true || f.Num("offset") != 4 || f.Str("epoch") != epoch {
		t.Fatalf("within history: %v", f)
	}
	for want := 2.0; want <= 4; want++ {
		if m := ws.Expect("message"); m.Num("offset") != want {
			t.Fatalf("replayed %v, want offset %v", m, want)
		}
	}
	expectNoMessages(t, ws)

	// Up to date: recovered, nothing replayed.
	ws, f = subscribeSince(t, s, "feed:1", epoch, 4)
	if f["recovered"] != true || f.Num("offset") != 4 {
		t.Fatalf("up to date: %v", f)
	}
	expectNoMessages(t, ws)

	// Ten more push offset 1-9 out of a history of five.
	publishN(t, s, "feed:1", 10)
	ws, f = subscribeSince(t, s, "feed:1", epoch, 4)
	if f["recovered"] != false || f.Num("offset") != 14 || f.Str("epoch") != epoch {
		t.Fatalf("beyond history: %v", f)
	}
	expectNoMessages(t, ws)
	// Live messages still flow after an unrecovered subscribe.
	publishN(t, s, "feed:1", 1)
	if m := ws.Expect("message"); m.Num("offset") != 15 {
		t.Fatalf("live after gap: %v", m)
	}

	// A channel without history never recovers a gap.
	ws, f = subscribeSince(t, s, "nohistory", epoch, 0)
	if f["recovered"] != true {
		t.Fatalf("nothing missed on an empty channel: %v", f)
	}
	publishN(t, s, "nohistory", 2)
	ws.Expect("message")
	ws.Expect("message")
	_, f = subscribeSince(t, s, "nohistory", epoch, 1)
	if f["recovered"] != false || f.Num("offset") != 2 {
		t.Fatalf("channel without history: %v", f)
	}
}

func TestRecoveryAfterHistoryTTLIsNotRecovered(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 100, HistoryTTL: 50 * time.Millisecond}
	})
	publishN(t, s, "feed:1", 3)
	h, err := s.API().History(context.Background(), "feed:1", 0, 0)
	if err != nil || h.Offset != 3 {
		t.Fatalf("history: %v %v", h, err)
	}
	epoch := h.Epoch
	servertest.Eventually(t, "messages to expire", func() bool {
		h, err := s.API().History(context.Background(), "feed:1", 0, 0)
		return err == nil && len(h.Messages) == 0
	})
	_, f := subscribeSince(t, s, "feed:1", epoch, 1)
	if f["recovered"] != false || f.Num("offset") != 3 || f.Str("epoch") != epoch {
		t.Fatalf("after expiry: %v", f)
	}
	// Nothing was missed from the top, expired or not.
	ws, f := subscribeSince(t, s, "feed:1", epoch, 3)
	if f["recovered"] != true {
		t.Fatalf("at the top after expiry: %v", f)
	}
	expectNoMessages(t, ws)
}

func TestRestartChangesEpochAndRecoveryFails(t *testing.T) {
	cfg := servertest.Config()
	cfg.Listen = servertest.FreeAddr(t)
	cfg.Namespaces["feed"] = config.ChannelOptions{HistorySize: 100}
	s1 := servertest.StartWith(t, server.Options{Config: cfg})
	publishN(t, s1, "feed:1", 3)
	_, f := subscribeSince(t, s1, "feed:1", "", 0)
	if f.Type() != "error" || f.Str("code") != "bad_request" {
		t.Fatalf("since without epoch: %v", f)
	}
	ws := servertest.Connect(t, s1.WSURL, servertest.Token(t, "u", nil, nil))
	old := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:1"})
	if err := s1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := servertest.StartWith(t, server.Options{Config: cfg})
	publishN(t, s2, "feed:1", 1)
	_, f = subscribeSince(t, s2, "feed:1", old.Str("epoch"), 3)
	if f["recovered"] != false || f.Str("epoch") == old.Str("epoch") || f.Str("epoch") == "" || f.Num("offset") != 1 {
		t.Fatalf("after restart: %v (old epoch %s)", f, old.Str("epoch"))
	}
}

func TestInvalidSince(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 10}
	})
	publishN(t, s, "feed:1", 2)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	bad := []string{
		`{"type":"subscribe","id":1,"channel":"feed:1","since":{"offset":1}}`,
		`{"type":"subscribe","id":2,"channel":"feed:1","since":{"epoch":"","offset":1}}`,
		`{"type":"subscribe","id":3,"channel":"feed:1","since":{"epoch":"E","offset":-1}}`,
		`{"type":"subscribe","id":4,"channel":"feed:1","since":{"epoch":"E","offset":"1"}}`,
		`{"type":"subscribe","id":5,"channel":"feed:1","since":"E:1"}`,
		`{"type":"subscribe","id":6,"channel":"feed:1","since":{"epoch":"` + strings.Repeat("E", 65) + `","offset":1}}`,
	}
	for _, frame := range bad {
		ws.Send(frame)
		if f := ws.ExpectError("bad_request"); !strings.Contains(f.Str("message"), "since") && !strings.Contains(f.Str("message"), "JSON") {
			t.Errorf("%s: error %v does not say what is wrong", frame, f)
		}
	}
	// None of them subscribed: a valid subscribe still works.
	f := ws.Request(map[string]any{"type": "subscribe", "id": 7, "channel": "feed:1"})
	if f.Type() != "subscribed" || f.Num("offset") != 2 {
		t.Fatalf("subscribe after bad ones: %v", f)
	}
	epoch := f.Str("epoch")
	// Well-formed positions this stream never had are not errors: the
	// client is told to start over, as after an epoch change.
	for _, since := range []map[string]any{{"epoch": epoch, "offset": 3}, {"epoch": "OTHER", "offset": 1}} {
		_, f := subscribeSince(t, s, "feed:1", since["epoch"].(string), uint64(since["offset"].(int)))
		if f["recovered"] != false || f.Str("epoch") != epoch || f.Num("offset") != 2 {
			t.Fatalf("since %v: %v", since, f)
		}
	}
}

func TestHistoryAPI(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 5}
	})
	publishN(t, s, "feed:1", 8) // keeps 4-8
	ctx := context.Background()
	offsetsOf := func(since uint64, limit int) string {
		t.Helper()
		h, err := s.API().History(ctx, "feed:1", since, limit)
		if err != nil {
			t.Fatal(err)
		}
		if h.Offset != 8 || h.Epoch == "" || h.Channel != "feed:1" {
			t.Fatalf("history position: %+v", h)
		}
		var out []string
		for _, m := range h.Messages {
			out = append(out, fmt.Sprint(m.Offset))
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		since uint64
		limit int
		want  string
	}{
		{0, 0, "4,5,6,7,8"},
		{0, 2, "7,8"},
		{5, 0, "6,7,8"},
		{4, 2, "5,6"},
		{8, 0, ""},
		{1, 2, "4,5"}, // since older than the history: from the oldest kept
	}
	for _, c := range cases {
		if got := offsetsOf(c.since, c.limit); got != c.want {
			t.Errorf("since %d limit %d: got %q, want %q", c.since, c.limit, got, c.want)
		}
	}
	base := s.APIBase() + "/api/v1/history"
	for _, c := range []struct {
		query, key string
		status     int
		code       string
	}{
		{"?channel=feed:1&since=abc", servertest.APIKey, 400, "bad_request"},
		{"?channel=feed:1&since=-1", servertest.APIKey, 400, "bad_request"},
		{"?channel=feed:1&since=1.5", servertest.APIKey, 400, "bad_request"},
		{"?channel=feed:1&limit=-1", servertest.APIKey, 400, "bad_request"},
		{"?channel=feed:1&limit=x", servertest.APIKey, 400, "bad_request"},
		{"", servertest.APIKey, 400, "bad_request"},
		{"?channel=bad%20name", servertest.APIKey, 400, "bad_request"},
		{"?channel=feed:1", "", 401, "unauthorized"},
	} {
		status, body, raw := doRaw(t, http.MethodGet, base+c.query, c.key, "")
		if status != c.status || body.Error.Code != c.code || body.Error.Message == "" {
			t.Errorf("GET history%s: %d %s", c.query, status, raw)
		}
	}
}
