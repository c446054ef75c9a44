package webhooks_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/webhooks"
)

func dispatcher(t *testing.T, opts webhooks.Options, hooks ...config.Webhook) (*webhooks.Dispatcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	opts.Logger = servertest.Logger(t)
	d := webhooks.NewDispatcher(opts)
	d.SetHooks(hooks)
	t.Cleanup(func() { d.Close(context.Background()) })
	return d, reg
}

func outcome(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eddy_webhook_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == name {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestRetriedAfter500Until200: the receiver answers 500, then 200. The
// same body (same event ids, same signature) is posted again and counted
// as sent once.
func TestRetriedAfter500Until200(t *testing.T) {
	rcv := newReceiver(t, http.StatusInternalServerError)
	d, reg := dispatcher(t, webhooks.Options{Window: 10 * time.Millisecond, FirstBackoff: 50 * time.Millisecond},
		config.Webhook{URL: rcv.URL(), Secret: hookSecret, Events: []string{webhooks.ChannelOccupied}})
	d.Emit("", webhooks.Event{Name: webhooks.ChannelOccupied, Channel: "a"})
	servertest.Eventually(t, "a 200 after the 500", func() bool { return len(rcv.events(t)) == 1 })
	posts := rcv.posts()
	if len(posts) != 2 || posts[0].status != 500 || posts[1].status != 200 {
		t.Fatalf("posts %+v, want a 500 then a 200", posts)
	}
	if string(posts[0].body) != string(posts[1].body) || posts[0].header.Get("X-Eddy-Signature") != posts[1].header.Get("X-Eddy-Signature") {
		t.Fatalf("the retry differs from the first try:\n%s\n%s", posts[0].body, posts[1].body)
	}
	servertest.Eventually(t, "counted as sent", func() bool { return outcome(t, reg, "sent") == 1 })
}

// TestDroppedWhenRetriesRunOut: a receiver that always fails gets tries
// with growing waits until retry_for, then the events are dropped and
// counted; the next event is delivered once the receiver recovers.
func TestDroppedWhenRetriesRunOut(t *testing.T) {
	rcv := newReceiver(t, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500)
	d, reg := dispatcher(t, webhooks.Options{Window: 10 * time.Millisecond, FirstBackoff: 20 * time.Millisecond, RetryFor: 300 * time.Millisecond},
		config.Webhook{URL: rcv.URL(), Secret: hookSecret, Events: []string{webhooks.ChannelVacated}})
	d.Emit("", webhooks.Event{Name: webhooks.ChannelVacated, Channel: "a"})
	d.Emit("", webhooks.Event{Name: webhooks.ChannelVacated, Channel: "b"})
	servertest.Eventually(t, "events dropped after retrying", func() bool { return outcome(t, reg, "dropped_retries_exhausted") == 2 })
	if n := len(rcv.posts()); n < 2 {
		t.Fatalf("%d tries, want several", n)
	}
	rcv.mu.Lock()
	rcv.plan = nil
	rcv.mu.Unlock()
	d.Emit("", webhooks.Event{Name: webhooks.ChannelVacated, Channel: "c"})
	servertest.Eventually(t, "the next event delivered", func() bool { return len(rcv.events(t)) == 1 })
	if e := rcv.events(t)[0]; e.Channel != "c" {
		t.Fatalf("delivered %+v, want only c (a and b were dropped)", e)
	}
}

// TestDeadReceiverBlocksNothing: a receiver that never answers holds up
// neither Emit (its queue is bounded: what does not fit is dropped and
// counted) nor another receiver.
func TestDeadReceiverBlocksNothing(t *testing.T) {
	dead := newReceiver(t)
	dead.hold = make(chan struct{})
	defer close(dead.hold)
	alive := newReceiver(t)
	d, reg := dispatcher(t, webhooks.Options{Window: 10 * time.Millisecond, QueueSize: 100, MaxBatch: 10},
		config.Webhook{URL: dead.URL(), Secret: hookSecret, Events: []string{webhooks.MemberAdded}},
		config.Webhook{URL: alive.URL(), Secret: "other-secret", Events: []string{webhooks.MemberAdded}})
	const n = 5000
	for i := range n {
		d.Emit("", webhooks.Event{Name: webhooks.MemberAdded, Channel: "c", UserID: string(rune('a' + i%26))})
	}
	servertest.Eventually(t, "the live receiver gets what fit in its queue", func() bool { return len(alive.events(t)) >= 100 })
	if dropped := outcome(t, reg, "dropped_queue_full"); dropped < n-2*100-10 {
		t.Fatalf("%v events dropped for a full queue, want most of %d", dropped, n)
	}
	if v := gauge(t, reg, "eddy_webhook_queued_events"); v > 2*100 {
		t.Fatalf("%v events queued, more than the two queues' bound", v)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
