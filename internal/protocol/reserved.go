package protocol

// StatusChannel is the node's live status feed (docs/operations.md): only
// a token with the admin claim may subscribe, and nobody publishes to it
// but Eddy itself. Its '$' is a character no other channel name may
// hold, so no namespace, pattern or user channel can collide with it.
const StatusChannel = "$admin:status"

// reservedMessage tells a publisher why the status channel refused it.
const reservedMessage = "channel $admin:status is reserved: only Eddy publishes to it, and an admin token may only subscribe to it"

// validateSubscribeChannel is ValidateChannel for subscribe and
// unsubscribe frames, which may also name the status channel.
func validateSubscribeChannel(name string) error {
	if name == StatusChannel {
		return nil
	}
	return ValidateChannel(name)
}
