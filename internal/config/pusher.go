package config

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// pusherChannelOptions applies what a Pusher channel's name promises to the
// options of a channel outside any namespace (Pusher names have no ':', so
// they are all there): presence- channels keep presence with join and leave
// events, cache- channels (also private-cache-, presence-cache-,
// private-encrypted-cache-) keep at least their last message. The same
// channel reached through Eddy's own protocol gets the same options, so
// both protocols share one channel. docs/pusher.md explains the mapping.
func pusherChannelOptions(channel string, o ChannelOptions) ChannelOptions {
	rest, presence := strings.CutPrefix(channel, "presence-")
	if presence {
		o.Presence, o.JoinLeave = true, true
	} else if r, ok := strings.CutPrefix(channel, "private-encrypted-"); ok {
		rest = r
	} else if r, ok := strings.CutPrefix(channel, "private-"); ok {
		rest = r
	} else {
		rest = channel
	}
	if strings.HasPrefix(rest, "cache-") && o.HistorySize < 1 {
		o.HistorySize = 1
	}
	return o
}

// NewPusherKey returns a random Pusher app key: 20 hex digits, the shape
// Pusher's own keys have, which clients put in URLs as they are.
func NewPusherKey() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validatePusher checks the Pusher app settings: a key needs a secret and
// an app id, and the key goes in a URL path as it is.
func (c *Config) validatePusher() error {
	switch {
	case c.PusherKey == "" && c.PusherSecret == "":
		return nil
	case c.PusherKey == "":
		return fmt.Errorf("pusher_key: missing while pusher_secret is set")
	case c.PusherSecret == "":
		return fmt.Errorf("pusher_secret: missing while pusher_key is set")
	case c.PusherAppID == "":
		return fmt.Errorf("pusher_app_id: must not be empty while pusher_key is set")
	}
	for _, s := range []struct{ key, v string }{{"pusher_key", c.PusherKey}, {"pusher_app_id", c.PusherAppID}} {
		for _, r := range s.v {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				return fmt.Errorf("%s: %q has %q; use letters, digits and -_.", s.key, s.v, r)
			}
		}
	}
	return nil
}
