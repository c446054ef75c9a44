package bench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestPusherFanoutDeliversEverythingOnce: a short fanout to Pusher-protocol
// subscribers; every accepted publish reaches every one of them once.
func TestPusherFanoutDeliversEverythingOnce(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) {
		c.PusherKey, c.PusherSecret = "benchkey", "bench-pusher-secret"
	})
	res, err := Run(context.Background(), Options{
		Scenario: "fanout", WS: []string{srv.WSURL}, API: []string{srv.APIBase()},
		APIKey: servertest.APIKey, Secret: servertest.Secret, Protocol: "pusher", PusherKey: "benchkey",
		Subscribers: 20, Rate: 200, Duration: 500 * time.Millisecond,
		DrainWait: 5 * time.Second, Quiet: true, Progress: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Errors != 0 || res.Lost != 0 || res.Duplicated != 0 || res.Received != res.Sent*20 {
		t.Fatalf("sent %d, received %d (want %d), lost %d, duplicated %d, errors %d %v",
			res.Sent, res.Received, res.Sent*20, res.Lost, res.Duplicated, res.Errors, res.ErrorSamples)
	}
	if _, err := Run(context.Background(), Options{Scenario: "presence", Protocol: "pusher", PusherKey: "k", Secret: servertest.Secret, Quiet: true, Progress: io.Discard}); err == nil {
		t.Fatal("--protocol pusher accepted for the presence scenario")
	}
}
