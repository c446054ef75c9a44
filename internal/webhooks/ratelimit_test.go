package webhooks_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/webhooks"
)

// TestFunctionErrorsAreRateLimitedAndCounted: a burst of failures of one
// function sends one function_error at once and one more when the interval
// ends, whose count holds the rest; none is lost, none sent per failure.
func TestFunctionErrorsAreRateLimitedAndCounted(t *testing.T) {
	rcv := newReceiver(t)
	d, _ := dispatcher(t, webhooks.Options{Window: 10 * time.Millisecond, RateInterval: 300 * time.Millisecond},
		config.Webhook{URL: rcv.URL(), Secret: hookSecret, Events: []string{webhooks.FunctionError}})
	for range 5 {
		d.FunctionFailed("f", "c", errors.New("timeout"))
	}
	servertest.Eventually(t, "two events", func() bool { return len(rcv.events(t)) == 2 })
	evs := rcv.events(t)
	if evs[0].Count != 1 || evs[1].Count != 4 || evs[1].Function != "f" {
		t.Fatalf("events %+v, want counts 1 then 4", evs)
	}
}

// TestClusterSendsOneConnectionLimitPerInterval: two nodes refusing
// connections in the same interval send one connection_limit between them
// (claimed in Redis), not one each.
func TestClusterSendsOneConnectionLimitPerInterval(t *testing.T) {
	rs := redistest.Start(t)
	rc := newRedisClient(t, rs)
	rcv := newReceiver(t)
	hook := config.Webhook{URL: rcv.URL(), Secret: hookSecret, Events: []string{webhooks.ConnectionLimit, webhooks.CacheMiss}}
	claims := &countingClaims{c: webhooks.NewRedisClaims(rc)}
	opts := webhooks.Options{Window: 10 * time.Millisecond, RateInterval: time.Hour, Claims: claims}
	a, _ := dispatcher(t, opts, hook)
	b, _ := dispatcher(t, opts, hook)
	a.ConnectionRefused("max_connections")
	b.ConnectionRefused("max_connections")
	servertest.Eventually(t, "both nodes claimed", func() bool { return claims.calls.Load() == 2 })
	if w := claims.wins.Load(); w != 1 {
		t.Fatalf("%d of two nodes won the claim, want 1", w)
	}
	servertest.Eventually(t, "one connection_limit", func() bool {
		return len(named(rcv.events(t), webhooks.ConnectionLimit)) == 1
	})
	// Sentinels: each dispatcher's queue is sent in order.
	a.Emit("", webhooks.Event{Name: webhooks.CacheMiss, Channel: "a"})
	b.Emit("", webhooks.Event{Name: webhooks.CacheMiss, Channel: "b"})
	servertest.Eventually(t, "sentinels", func() bool { return len(named(rcv.events(t), webhooks.CacheMiss)) == 2 })
	if n := len(named(rcv.events(t), webhooks.ConnectionLimit)); n != 1 {
		t.Fatalf("%d connection_limit events from two nodes in one interval, want 1", n)
	}
}

// countingClaims counts the claims made and won.
type countingClaims struct {
	c           webhooks.Claimer
	calls, wins atomic.Int64
}

func (c *countingClaims) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := c.c.Claim(ctx, key, ttl)
	if ok {
		c.wins.Add(1)
	}
	c.calls.Add(1)
	return ok, err
}
