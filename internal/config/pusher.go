package config

import (
	"crypto/rand"
	"encoding/hex"
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
