package protocol

// The refusals of the connection limits (docs/security.md).
const (
	// CodeLimitExceeded refuses a connection past max_connections,
	// max_connections_per_ip or max_connections_per_user; the message
	// names the setting.
	CodeLimitExceeded = "limit_exceeded"
	// CloseTooManyConnections closes a connection whose user already has
	// max_connections_per_user on the node, after its error frame.
	CloseTooManyConnections = 4010
)

// ReasonNotAllowed is the reason of an unsubscribed frame the server sends
// unasked, when a refreshed token no longer allows the channel.
const ReasonNotAllowed = "not_allowed"

type unsubscribedReason struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Reason  string `json:"reason"`
}

// UnsubscribedBy tells a client the server ended its subscription to
// channel unasked, and why (no id: it answers no request).
func UnsubscribedBy(channel, reason string) []byte {
	return mustMarshal(unsubscribedReason{TypeUnsubscribed, channel, reason})
}
