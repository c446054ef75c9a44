package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebhooksFromFileAndEnvironment: webhooks is a YAML list in the file
// and JSON in EDDY_WEBHOOKS; each entry is checked, and a wrong one is
// refused with its index and what is wrong.
func TestWebhooksFromFileAndEnvironment(t *testing.T) {
	load := func(yaml string) (Config, error) {
		p := filepath.Join(t.TempDir(), "eddy.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p, nil)
	}
	c, err := load("webhooks:\n  - url: https://app.example.com/h\n    secret: s3\n    events: [channel_occupied, member_added]\n  - url: https://app.example.com/p\n    secret: ps\n    key: pk\n    format: pusher\n    events: [client_event]\nwebhook_window: 100ms\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Webhooks) != 2 || c.Webhooks[0].Events[1] != "member_added" || c.Webhooks[1].Format != "pusher" || c.Webhooks[1].Key != "pk" || c.WebhookWindow.Milliseconds() != 100 {
		t.Fatalf("webhooks %+v window %s", c.Webhooks, c.WebhookWindow)
	}
	for yaml, want := range map[string]string{
		"webhooks:\n  - url: https://a/h\n    events: [channel_occupied]\n":                              "webhooks[0]: secret",
		"webhooks:\n  - url: https://a/h\n    secret: s\n    events: [occupied]\n":                       `"occupied" is not one of`,
		"webhooks:\n  - url: https://a/h\n    secret: s\n    evnets: [channel_occupied]\n":               `unknown member "evnets"`,
		"webhooks:\n  - url: https://a/h\n    secret: s\n    events: channel_occupied\n":                 "must be a list of event names",
		"webhooks:\n  - url: https://a/h\n    secret: s\n    format: pusher\n    events: [cache_miss]\n": "key",
		"webhook_retry_for: 0s\n": "webhook_retry_for",
	} {
		if _, err := load(yaml); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", yaml, err, want)
		}
	}
	t.Setenv("EDDY_WEBHOOKS", `[{"url":"https://e.example/h","secret":"x","events":["channel_vacated"]}]`)
	c, err = Load("", nil)
	if err != nil || len(c.Webhooks) != 1 || c.Webhooks[0].Events[0] != "channel_vacated" {
		t.Fatalf("from EDDY_WEBHOOKS: %+v, %v", c.Webhooks, err)
	}
}
