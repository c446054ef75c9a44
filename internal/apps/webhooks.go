package apps

import (
	"fmt"

	"github.com/eddyrt/eddy/internal/config"
)

// maxWebhooks bounds an app's webhook receivers.
const maxWebhooks = 10

// SetWebhooks replaces a's webhook receivers. Each gets an id naming its
// app and place ("shop-1", ...) unless it has one; a Pusher-format
// receiver without a key or secret gets the app's Pusher key and secret,
// so the SDKs' webhook validation accepts what it receives.
func (a *App) SetWebhooks(hooks []config.Webhook) {
	out := make([]config.Webhook, len(hooks))
	for i, w := range hooks {
		if w.ID == "" {
			w.ID = fmt.Sprintf("%s-%d", a.ID, i+1)
		}
		if w.Format == config.WebhookFormatPusher {
			if w.Key == "" {
				w.Key = a.Pusher.Key
			}
			if w.Secret == "" {
				w.Secret = a.Pusher.Secret
			}
		}
		w.Events = append([]string(nil), w.Events...)
		out[i] = w
	}
	a.Webhooks = out
}

// validateWebhooks checks a's receivers, naming the one that is wrong.
func (a *App) validateWebhooks() error {
	if len(a.Webhooks) > maxWebhooks {
		return fmt.Errorf("webhooks: %d receivers; the limit is %d", len(a.Webhooks), maxWebhooks)
	}
	seen := map[string]bool{}
	for i, w := range a.Webhooks {
		if err := w.Validate(); err != nil {
			return fmt.Errorf("webhooks[%d]: %w", i, err)
		}
		if seen[w.ID] {
			return fmt.Errorf("webhooks[%d]: id %q is used twice", i, truncate(w.ID))
		}
		seen[w.ID] = true
	}
	return nil
}

// cloneWebhooks copies hooks deeply (Events included).
func cloneWebhooks(hooks []config.Webhook) []config.Webhook {
	if hooks == nil {
		return nil
	}
	out := make([]config.Webhook, len(hooks))
	for i, w := range hooks {
		w.Events = append([]string(nil), w.Events...)
		out[i] = w
	}
	return out
}
