package server_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/memory"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// bigGap is the case of issue 12.5: a history of 100 messages of 60 KB,
// all missed, is 6 MB of replay against a 4 MiB max_queue_bytes.
const (
	bigGapMessages = 100
	bigGapBytes    = 60 << 10
)

func startBigGapServer(t *testing.T) *servertest.Server {
	t.Helper()
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: bigGapMessages}
	})
	if total := bigGapMessages * bigGapBytes; total <= s.Config.MaxQueueBytes {
		t.Fatalf("the gap (%d bytes) must exceed max_queue_bytes (%d) for this test to mean anything", total, s.Config.MaxQueueBytes)
	}
	return s
}

func publishBig(t *testing.T, s *servertest.Server, channel string, n int) {
	t.Helper()
	payload := strings.Repeat("x", bigGapBytes)
	for i := 0; i < n; i++ {
		if _, err := s.API().Publish(context.Background(), channel, "big", payload); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// TestRecoveryOfGapLargerThanQueue: a gap that history covers is always
// recoverable, even when it is larger than the connection's queue may
// hold: the replay is paged as the queue drains, and the client gets every
// message in order with recovered:true, not a 4009.
func TestRecoveryOfGapLargerThanQueue(t *testing.T) {
	s := startBigGapServer(t)
	first := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	sub := first.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:big"})
	epoch := sub.Str("epoch")
	_ = first.Conn.NetConn().Close()

	publishBig(t, s, "feed:big", bigGapMessages)

	ws, f := subscribeSince(t, s, "feed:big", epoch, 0)
	if f["recovered"] != true || f.Num("offset") != bigGapMessages {
		t.Fatalf("resubscribe: %v", f)
	}
	for want := 1; want <= bigGapMessages; want++ {
		select {
		case <-ws.Closed():
			t.Fatalf("closed with %d after %d of %d replayed messages", ws.CloseCode(), want-1, bigGapMessages)
		default:
		}
		m := ws.Expect("message")
		if int(m.Num("offset")) != want || len(m.Str("data")) != bigGapBytes {
			t.Fatalf("replayed offset %v (%d bytes), want %d", m["offset"], len(m.Str("data")), want)
		}
	}
	// Live delivery follows the replay, and the connection is still usable.
	publishBig(t, s, "feed:big", 1)
	if m := ws.Expect("message"); int(m.Num("offset")) != bigGapMessages+1 {
		t.Fatalf("live after the replay: %v", m["offset"])
	}
	expectNoMessages(t, ws)
}

// TestRecoveryOfLargeGapMergesLiveMessages: messages published while a
// paged replay is under way come after it, none lost or twice.
func TestRecoveryOfLargeGapMergesLiveMessages(t *testing.T) {
	s := startBigGapServer(t)
	first := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	epoch := first.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:big"}).Str("epoch")
	_ = first.Conn.NetConn().Close()
	// Fewer than history_size, so the live ones published during the
	// replay do not push unreplayed ones out of the history.
	const missed, live = 80, 20
	publishBig(t, s, "feed:big", missed)

	// A paused reader: the replay cannot finish until it reads, so the
	// live publishes below surely land during it.
	ws, resume := servertest.DialPaused(t, s.WSURL)
	ws.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "u", nil, nil)})
	ws.Send(map[string]any{"type": "subscribe", "id": 1, "channel": "feed:big", "since": map[string]any{"epoch": epoch, "offset": 0}})
	publishBig(t, s, "feed:big", live)
	resume()
	ws.Expect("ready")
	if f := ws.Expect("subscribed"); f["recovered"] != true {
		t.Fatalf("resubscribe: %v", f)
	}
	for want := 1; want <= missed+live; want++ {
		if m := ws.Expect("message"); int(m.Num("offset")) != want {
			t.Fatalf("got offset %v, want %d: gap or duplicate", m["offset"], want)
		}
	}
	expectNoMessages(t, ws)
}

// TestGoClientRecoversLargeGap is the reported case end to end: the Go
// client, whose connection was cut while 100 messages of 60 KB went by,
// recovers them all with recovered:true and is never closed with 4009.
func TestGoClientRecoversLargeGap(t *testing.T) {
	s := startBigGapServer(t)
	ctx := context.Background()
	var mu sync.Mutex
	var closes []uint16
	// The reconnect waits for its token until the gap is published, so the
	// whole gap is recovered at once.
	gapPublished := make(chan struct{})
	var tokens atomic.Int64
	c, err := client.Dial(ctx, client.Config{
		URL: s.WSURL,
		TokenFunc: func(ctx context.Context) (string, error) {
			if tokens.Add(1) > 1 {
				select {
				case <-gapPublished:
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}
			return servertest.Token(t, "u", nil, nil), nil
		},
		OnState: func(st client.State, err error) {
			var ce *client.CloseError
			if errors.As(err, &ce) {
				mu.Lock()
				closes = append(closes, ce.Code)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got offsetLog
	recovered := make(chan bool, 10)
	if _, err := c.Subscribe(ctx, "feed:big", client.WithHandler(got.add), client.WithRecoverHandler(func(ok bool) { recovered <- ok })); err != nil {
		t.Fatal(err)
	}
	publishBig(t, s, "feed:big", 1)
	servertest.Eventually(t, "the first message", func() bool { return got.total.Load() == 1 })

	s.DropConnections()
	publishBig(t, s, "feed:big", bigGapMessages-1)
	close(gapPublished)
	servertest.Eventually(t, "every message", func() bool { return got.total.Load() >= bigGapMessages })
	got.checkExactlyOnceInOrder(t, "feed:big", bigGapMessages)
	if ok := <-recovered; !ok {
		t.Fatal("resubscribe answered recovered:false although the history covers the gap")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, code := range closes {
		if code == protocol.CloseSlowConsumer {
			t.Fatalf("closed as a slow consumer (closes: %v)", closes)
		}
	}
}

// startPausedRecovery subscribes with since 0 on a connection that reads
// nothing until the returned resume is called, and waits until the server
// has answered the subscribe (its presence member is listed), so what the
// test does next happens during the replay.
func startPausedRecovery(t *testing.T, s *servertest.Server, channel, epoch string) (*servertest.WS, func()) {
	t.Helper()
	ws, resume := servertest.DialPaused(t, s.WSURL)
	ws.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "u", nil, nil)})
	ws.Send(map[string]any{"type": "subscribe", "id": 1, "channel": channel, "since": map[string]any{"epoch": epoch, "offset": 0}})
	servertest.Eventually(t, "the subscribe to be answered", func() bool {
		p, err := s.API().Presence(context.Background(), channel)
		return err == nil && len(p.Members) == 1
	})
	return ws, resume
}

func startBigGapPresenceServer(t *testing.T) (*servertest.Server, string) {
	t.Helper()
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: bigGapMessages, Presence: true}
	})
	h, err := s.API().History(context.Background(), "feed:big", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	publishBig(t, s, "feed:big", bigGapMessages)
	return s, h.Epoch
}

// TestUnsubscribeStopsPagedReplay: after unsubscribed, no message of the
// channel follows, though most of the replay was still to come.
func TestUnsubscribeStopsPagedReplay(t *testing.T) {
	s, epoch := startBigGapPresenceServer(t)
	ws, resume := startPausedRecovery(t, s, "feed:big", epoch)
	ws.Send(map[string]any{"type": "unsubscribe", "id": 2, "channel": "feed:big"})
	resume()
	ws.Expect("ready")
	if f := ws.Expect("subscribed"); f["recovered"] != true {
		t.Fatalf("resubscribe: %v", f)
	}
	replayed := 0
	for {
		f := ws.Next()
		if f.Type() == "unsubscribed" {
			break
		}
		if f.Type() != "message" || int(f.Num("offset")) != replayed+1 {
			t.Fatalf("got %v after %d replayed", f, replayed)
		}
		replayed++
	}
	t.Logf("%d of %d messages replayed before the unsubscribe", replayed, bigGapMessages)
	if replayed == bigGapMessages {
		t.Fatal("the whole replay came before the unsubscribe: the test did not stop a replay under way")
	}
	expectNoMessages(t, ws)
}

// overtakingBroker publishes n small messages on the channel just before
// a replay reads its second page, pushing the rest of the replay out of a
// history of n messages.
type overtakingBroker struct {
	*memory.Broker
	n     int
	armed atomic.Bool
}

func (b *overtakingBroker) History(ctx context.Context, channel string, q broker.HistoryQuery) ([]*protocol.Message, protocol.Position, error) {
	if q.Since != nil && q.Since.Offset > 0 && b.armed.CompareAndSwap(true, false) {
		for i := 0; i < b.n; i++ {
			if _, err := b.Publish(ctx, &protocol.Message{Channel: channel, Event: "e", Data: []byte("1")}, q.Options); err != nil {
				panic(err)
			}
		}
	}
	return b.Broker.History(ctx, channel, q)
}

// TestReplayOvertakenByHistoryNotRecovered: when publishes push the rest
// of a replay out of the history while it runs, the client gets what was
// replayed, then an unsolicited subscribed with recovered:false and the
// channel's position, then live messages, over its open connection.
func TestReplayOvertakenByHistoryNotRecovered(t *testing.T) {
	cfg := servertest.Config()
	cfg.Namespaces["feed"] = config.ChannelOptions{HistorySize: bigGapMessages}
	b := &overtakingBroker{Broker: memory.New(), n: bigGapMessages}
	s := servertest.StartWith(t, server.Options{Config: cfg, Broker: b})
	publishBig(t, s, "feed:big", bigGapMessages)
	b.armed.Store(true)
	ws, f := subscribeSince(t, s, "feed:big", b.Epoch(), 0)
	if f["recovered"] != true || f.Num("offset") != bigGapMessages {
		t.Fatalf("resubscribe: %v", f)
	}
	last := 0
	for {
		f := ws.Next()
		if f.Type() == "subscribed" {
			if _, hasID := f["id"]; hasID || f["recovered"] != false || f.Num("offset") != 2*bigGapMessages {
				t.Fatalf("after offset %d: %v, want an unsolicited subscribed with recovered:false at %d", last, f, 2*bigGapMessages)
			}
			break
		}
		if f.Type() != "message" || int(f.Num("offset")) != last+1 {
			t.Fatalf("got %v after offset %d", f, last)
		}
		last++
	}
	if last == 0 || last >= bigGapMessages {
		t.Fatalf("replayed up to %d: the test did not overtake a replay under way", last)
	}
	if _, err := s.API().Publish(context.Background(), "feed:big", "e", "after"); err != nil {
		t.Fatal(err)
	}
	if f := ws.Expect("message"); f.Num("offset") != 2*bigGapMessages+1 {
		t.Fatalf("live after the resync: %v", f)
	}
	select {
	case <-ws.Closed():
		t.Fatal("connection closed")
	default:
	}
}
