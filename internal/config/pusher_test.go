package config

import (
	"strings"
	"testing"
)

func TestPusherChannelOptions(t *testing.T) {
	c := Default()
	c.Namespaces["chat"] = ChannelOptions{HistorySize: 5}
	for _, tc := range []struct {
		ch             string
		presence, join bool
		history        int
	}{
		{"presence-room", true, true, 0},
		{"presence-cache-room", true, true, 1},
		{"cache-x", false, false, 1},
		{"private-cache-x", false, false, 1},
		{"private-encrypted-cache-x", false, false, 1},
		{"private-x", false, false, 0},
		{"news", false, false, 0},
		{"chat:presence-x", false, false, 5}, // a namespace's own options win
	} {
		o := c.ChannelOptionsFor(tc.ch)
		if o.Presence != tc.presence || o.JoinLeave != tc.join || o.HistorySize != tc.history {
			t.Errorf("%s: %+v", tc.ch, o)
		}
	}
}

func TestValidatePusher(t *testing.T) {
	for _, tc := range []struct {
		key, secret, id, want string
	}{
		{"", "", "default", ""},
		{"k1", "s", "default", ""},
		{"k1", "", "default", "pusher_secret"},
		{"", "s", "default", "pusher_key"},
		{"k/1", "s", "default", "pusher_key"},
		{"k1", "s", "", "pusher_app_id"},
	} {
		c := Default()
		c.PusherKey, c.PusherSecret, c.PusherAppID = tc.key, tc.secret, tc.id
		err := c.validatePusher()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
	if k := NewPusherKey(); len(k) != 20 {
		t.Fatalf("key %q", k)
	}
}

// TestInitWritesPusherCredentials: eddy init gives every new config its own
// Pusher key and secret, which load and validate.
func TestInitWritesPusherCredentials(t *testing.T) {
	path := t.TempDir() + "/eddy.yaml"
	if _, _, err := Init(path); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.PusherKey) != 20 || len(c.PusherSecret) != 64 || c.PusherAppID != "default" || c.PusherClientEvents {
		t.Fatalf("pusher settings %q %q %q %v", c.PusherAppID, c.PusherKey, c.PusherSecret, c.PusherClientEvents)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
