package webhooks_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/webhooks"
)

// TestRateLimitedEventsGoToTheirApp: function_error and connection_limit
// of an app go to that app's receivers, and the rate limit is per app: the
// default app's function f and app shop's function f failing in the same
// interval send one event each, to their own receivers, not one counted
// event to whichever came first.
func TestRateLimitedEventsGoToTheirApp(t *testing.T) {
	def, shop := newReceiver(t), newReceiver(t)
	events := []string{webhooks.FunctionError, webhooks.ConnectionLimit}
	d, _ := dispatcher(t, webhooks.Options{Window: 10 * time.Millisecond, RateInterval: time.Hour},
		config.Webhook{URL: def.URL(), Secret: hookSecret, Events: events})
	d.SetAppHooks("shop", []config.Webhook{{ID: "shop-1", URL: shop.URL(), Secret: hookSecret, Events: events}})

	d.FunctionFailedIn("shop", "f", "c", errors.New("shop's failure"))
	d.FunctionFailed("f", "c", errors.New("default's failure"))
	d.ConnectionRefusedIn("shop", "max_connections")
	d.ConnectionRefused("max_connections")
	for who, r := range map[string]*receiver{"default": def, "shop": shop} {
		servertest.Eventually(t, who+"'s two events", func() bool { return len(r.events(t)) >= 2 })
	}
	for who, c := range map[string]struct {
		r    *receiver
		text string
	}{"default": {def, "default's failure"}, "shop": {shop, "shop's failure"}} {
		evs := c.r.events(t)
		fe, cl := named(evs, webhooks.FunctionError), named(evs, webhooks.ConnectionLimit)
		if len(evs) != 2 || len(fe) != 1 || len(cl) != 1 || fe[0].Error != c.text || fe[0].Count != 1 || cl[0].Limit != "max_connections" || cl[0].Count != 1 {
			t.Fatalf("%s's receiver got %+v, want its own function_error (%q) and connection_limit, count 1 each", who, evs, c.text)
		}
	}
}
