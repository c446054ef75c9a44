package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Webhook is one receiver of webhook events: an entry of webhooks in
// eddy.yaml, or one added through the admin API (internal/webhooks).
type Webhook struct {
	// ID names an entry added through the admin API; entries of eddy.yaml
	// get config-1, config-2, ... by position.
	ID     string   `koanf:"id" json:"id,omitempty"`
	URL    string   `koanf:"url" json:"url"`
	Secret string   `koanf:"secret" json:"secret"`
	Events []string `koanf:"events" json:"events"`
	// Format is "eddy" (default: X-Eddy-Signature) or "pusher" (Pusher's
	// body and X-Pusher-Key / X-Pusher-Signature headers, signed with
	// Secret, the app's Pusher secret; Key is the app's Pusher key).
	Format string `koanf:"format" json:"format,omitempty"`
	Key    string `koanf:"key" json:"key,omitempty"`
}

// Webhook formats.
const (
	WebhookFormatEddy   = "eddy"
	WebhookFormatPusher = "pusher"
)

// WebhookEvents are the event names an Eddy-format webhook may ask for.
var WebhookEvents = []string{"channel_occupied", "channel_vacated", "member_added", "member_removed",
	"function_error", "connection_limit", "client_event", "cache_miss"}

// PusherWebhookEvents are those a Pusher-format webhook may ask for: the
// ones Pusher sends.
var PusherWebhookEvents = []string{"channel_occupied", "channel_vacated", "member_added", "member_removed",
	"client_event", "cache_miss"}

// webhookFields are the members of a webhooks entry.
var webhookFields = map[string]bool{"id": true, "url": true, "secret": true, "events": true, "format": true, "key": true}

// MaxWebhooks bounds the webhooks of a node (configured and added), so a
// script gone wrong cannot start a sender per call.
const MaxWebhooks = 100

// Validate names what is wrong with w, or returns nil.
func (w Webhook) Validate() error {
	u, err := url.Parse(w.URL)
	if w.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url: must be an http(s) URL, got %q", w.URL)
	}
	if w.Secret == "" {
		return fmt.Errorf("secret: missing; the receiver checks the signature made with it")
	}
	allowed := WebhookEvents
	switch w.Format {
	case "", WebhookFormatEddy:
		if w.Key != "" {
			return fmt.Errorf("key: only format pusher takes a key")
		}
	case WebhookFormatPusher:
		allowed = PusherWebhookEvents
		if w.Key == "" {
			return fmt.Errorf("key: format pusher needs the app's Pusher key (sent as X-Pusher-Key)")
		}
	default:
		return fmt.Errorf("format: must be eddy or pusher, got %q", w.Format)
	}
	if len(w.Events) == 0 {
		return fmt.Errorf("events: empty; name at least one of %s", strings.Join(allowed, ", "))
	}
	for _, e := range w.Events {
		ok := false
		for _, a := range allowed {
			ok = ok || e == a
		}
		if !ok {
			return fmt.Errorf("events: %q is not one of %s", e, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// WithPusherCredentials returns w with the Pusher key and secret this
// config's Pusher protocol uses (pusher_key, pusher_secret) where a
// Pusher-format entry leaves them out: they are what the Pusher SDKs check
// a webhook with, so repeating them in every entry only invites a mismatch.
func (c *Config) WithPusherCredentials(w Webhook) Webhook {
	if w.Format == WebhookFormatPusher {
		if w.Key == "" {
			w.Key = c.PusherKey
		}
		if w.Secret == "" {
			w.Secret = c.PusherSecret
		}
	}
	return w
}

// validateWebhooks checks every webhooks entry (Pusher-format entries
// with the Pusher credentials they leave out filled in).
func (c *Config) validateWebhooks() error {
	if len(c.Webhooks) > MaxWebhooks {
		return fmt.Errorf("webhooks: %d entries; at most %d", len(c.Webhooks), MaxWebhooks)
	}
	for i, w := range c.Webhooks {
		if err := c.WithPusherCredentials(w).Validate(); err != nil {
			return fmt.Errorf("webhooks[%d]: %w", i, err)
		}
	}
	if c.WebhookWindow < 0 || c.WebhookWindow > 10e9 {
		return fmt.Errorf("webhook_window: must be 0-10s, got %s", c.WebhookWindow)
	}
	if c.WebhookRetryFor <= 0 {
		return fmt.Errorf("webhook_retry_for: must be positive, got %s", c.WebhookRetryFor)
	}
	return nil
}

// checkWebhookList refuses a webhooks value that is not a list of objects
// with known members, naming what is wrong: the decoder would ignore a typo.
func checkWebhookList(raw any) error {
	if raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("webhooks: must be a list of {url, secret, events, format, key}, got %T", raw)
	}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("webhooks[%d]: must be an object {url, secret, events, format, key}, got %T", i, e)
		}
		for name, v := range m {
			if !webhookFields[name] {
				return fmt.Errorf("webhooks[%d]: unknown member %q", i, name)
			}
			if name == "events" {
				if _, isList := v.([]any); !isList {
					return fmt.Errorf("webhooks[%d].events: must be a list of event names, got %T", i, v)
				}
				continue
			}
			if _, isString := v.(string); !isString {
				return fmt.Errorf("webhooks[%d].%s: must be a string, got %T", i, name, v)
			}
		}
	}
	return nil
}
