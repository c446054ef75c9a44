package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/client"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

type collector struct {
	mu   sync.Mutex
	msgs []*client.Message
}

func (c *collector) add(m *client.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func TestSubscribePublishAndHandlers(t *testing.T) {
	s := servertest.Start(t)
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Config{URL: s.WSURL, Token: servertest.Token(t, "ann", nil, []string{"room"})})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var all, posts collector
	sub, err := c.Subscribe(ctx, "room", client.WithHandler(all.add))
	if err != nil {
		t.Fatal(err)
	}
	sub.On("post", posts.add)
	if _, err := c.Publish(ctx, "room", "post", map[string]string{"t": "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "room", "other", 2); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "both messages", func() bool { return all.len() == 2 && posts.len() == 1 })
	var ce *client.Error
	if _, err := c.Publish(ctx, "elsewhere", "x", 1); !errors.As(err, &ce) || ce.Code != "forbidden" {
		t.Fatalf("publish to a forbidden channel: %v", err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBadTokenFailsDial(t *testing.T) {
	s := servertest.Start(t)
	_, err := client.Dial(context.Background(), client.Config{URL: s.WSURL, Token: "bad"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "unauthorized" {
		t.Fatalf("dial with a bad token: %v", err)
	}
}

// TestReconnectResubscribesAndRecovers restarts the server on the same
// address: the client reconnects by itself and resubscribes. The memory
// broker's epoch changes with the restart, so recovery reports false.
func TestReconnectResubscribesAfterRestart(t *testing.T) {
	addr := servertest.FreeAddr(t)
	cfg := servertest.Config()
	cfg.Listen = addr
	s1 := servertest.StartWith(t, server.Options{Config: cfg})
	ctx := context.Background()
	states := make(chan client.State, 100)
	recovered := make(chan bool, 10)
	c, err := client.Dial(ctx, client.Config{
		URL: s1.WSURL, Token: servertest.Token(t, "rick", nil, nil),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		OnState: func(st client.State, _ error) { states <- st },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got collector
	if _, err := c.Subscribe(ctx, "news", client.WithHandler(got.add), client.WithRecoverHandler(func(ok bool) { recovered <- ok })); err != nil {
		t.Fatal(err)
	}
	if err := s1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := servertest.StartWith(t, server.Options{Config: cfg})
	select {
	case ok := <-recovered:
		if ok {
			t.Fatal("recovered across a memory broker restart (the epoch changed)")
		}
	case <-time.After(servertest.Timeout):
		t.Fatal("client did not resubscribe after the restart")
	}
	servertest.Eventually(t, "subscriber on the new server", func() bool { return s2.Hub().Subscribers("news") == 1 })
	if _, err := s2.API().Publish(ctx, "news", "after", 1); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "message after reconnect", func() bool { return got.len() == 1 })
}

func TestRecoveryAfterConnectionCut(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["feed"] = config.ChannelOptions{HistorySize: 100}
	})
	ctx := context.Background()
	recovered := make(chan bool, 10)
	c, err := client.Dial(ctx, client.Config{
		URL: s.WSURL, Token: servertest.Token(t, "tom", nil, nil),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got collector
	if _, err := c.Subscribe(ctx, "feed:1", client.WithHandler(got.add), client.WithRecoverHandler(func(ok bool) { recovered <- ok })); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.API().Publish(ctx, "feed:1", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	servertest.Eventually(t, "first messages", func() bool { return got.len() == 3 })
	// Cut every connection abruptly, then publish while the client is away.
	s.DropConnections()
	for i := 3; i < 10; i++ {
		if _, err := s.API().Publish(ctx, "feed:1", "e", i); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case ok := <-recovered:
		if !ok {
			t.Fatal("recovery failed with the history holding every missed message")
		}
	case <-time.After(servertest.Timeout):
		t.Fatal("no resubscribe")
	}
	servertest.Eventually(t, "all ten messages", func() bool { return got.len() >= 10 })
	got.mu.Lock()
	defer got.mu.Unlock()
	for i, m := range got.msgs {
		if m.Offset != uint64(i+1) {
			t.Fatalf("message %d has offset %d: %v", i, m.Offset, got.msgs)
		}
	}
	if len(got.msgs) != 10 {
		t.Fatalf("got %d messages, want 10", len(got.msgs))
	}
}

func TestPresenceSetFollowsJoinsAndLeaves(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["room"] = config.ChannelOptions{Presence: true, JoinLeave: true}
	})
	ctx := context.Background()
	dial := func(user string) *client.Client {
		c, err := client.Dial(ctx, client.Config{URL: s.WSURL, Token: servertest.Token(t, user, nil, nil), NoReconnect: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ann := dial("ann")
	defer ann.Close()
	sub, err := ann.Subscribe(ctx, "room:1")
	if err != nil {
		t.Fatal(err)
	}
	users := func() string {
		var out []string
		for _, m := range sub.Members() {
			out = append(out, m.User)
		}
		return fmt.Sprint(out, sub.MembersTotal())
	}
	servertest.Eventually(t, "ann alone", func() bool { return users() == "[ann] 1" })
	bob := dial("bob")
	if _, err := bob.Subscribe(ctx, "room:1"); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "bob joined", func() bool { return users() == "[ann bob] 2" || users() == "[bob ann] 2" })
	bob.Close()
	servertest.Eventually(t, "bob left", func() bool { return users() == "[ann] 1" })
}
