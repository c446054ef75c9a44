package pusher

import (
	"fmt"
	"strings"
)

// Channel name prefixes with a meaning in Pusher's protocol.
const (
	PrefixPrivate   = "private-"
	PrefixEncrypted = "private-encrypted-"
	PrefixPresence  = "presence-"
	PrefixCache     = "cache-"
)

// Kind is what a channel's name makes of it.
type Kind struct {
	Private   bool // needs a channel auth (private-, private-encrypted-, presence-)
	Presence  bool
	Encrypted bool // the server relays ciphertext it cannot read
	Cache     bool // the last event is kept and given to new subscribers
}

// KindOf classifies a channel name: private-cache-x and presence-cache-x
// are cache channels too, as in Pusher.
func KindOf(name string) Kind {
	var k Kind
	switch {
	case strings.HasPrefix(name, PrefixEncrypted):
		k.Private, k.Encrypted = true, true
		k.Cache = strings.HasPrefix(name[len(PrefixEncrypted):], PrefixCache)
	case strings.HasPrefix(name, PrefixPrivate):
		k.Private = true
		k.Cache = strings.HasPrefix(name[len(PrefixPrivate):], PrefixCache)
	case strings.HasPrefix(name, PrefixPresence):
		k.Private, k.Presence = true, true
		k.Cache = strings.HasPrefix(name[len(PrefixPresence):], PrefixCache)
	default:
		k.Cache = strings.HasPrefix(name, PrefixCache)
	}
	return k
}

// MaxChannelLen is Pusher's limit on a channel name.
const MaxChannelLen = 164

// ValidateChannel checks a name a Pusher client or the Pusher API gives:
// 1-164 characters of Pusher's set that Eddy's channel names also allow
// (letters, digits, _ - = @ .). Pusher also allows ',' and ';', which Eddy
// channel names do not: such names are refused with a message saying so
// (docs/pusher.md). ':' is Eddy's namespace separator and not a Pusher
// character, so a Pusher client never reaches a namespaced Eddy channel.
func ValidateChannel(name string) error {
	if name == "" {
		return fmt.Errorf("channel name is empty")
	}
	if len(name) > MaxChannelLen {
		return fmt.Errorf("channel name is %d characters long; the limit is %d", len(name), MaxChannelLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '-' || c == '=' || c == '@' || c == '.':
		case c == ',' || c == ';':
			return fmt.Errorf("channel name %q has %q at byte %d: Pusher allows it, Eddy channel names do not", name, c, i)
		default:
			return fmt.Errorf("channel name %q has invalid character %q at byte %d; allowed are ASCII letters, digits and _-=@.", name, c, i)
		}
	}
	return nil
}
