// Package status is a node's live status feed: the events an operator (or
// the web console) watches on the $admin:status channel, sampled per kind,
// relayed to every node of a cluster, and handed to local subscribers
// without ever waiting for one (docs/operations.md lists the shapes).
package status

import "time"

// Kinds of events. Every event names its kind in Type, the node it
// happened on in Node and when in Time; the other fields depend on the kind.
const (
	ConnectionOpened = "connection_opened" // conn, user
	ConnectionClosed = "connection_closed" // conn, user, code, reason
	Subscribed       = "subscribed"        // conn, user, channel
	Unsubscribed     = "unsubscribed"      // conn, user, channel
	FunctionError    = "function_error"    // function, channel, error
	FunctionTimeout  = "function_timeout"  // function, channel, error
	LimitRefused     = "limit_refused"     // limit, message, user and conn when known
	NodeJoined       = "node_joined"       // node: the node that joined
	NodeLeft         = "node_left"         // node: the node that left (or whose announcements expired)
	// EventsOmitted counts, per kind, the events one node left out in the
	// last second because status_sample_rate was reached.
	EventsOmitted = "events_omitted" // omitted: {"connection_opened": 480, ...}
)

// Event is one status event, as subscribers get it in the data of a
// message whose event is the same Type.
type Event struct {
	Type     string           `json:"type"`
	Time     string           `json:"time"` // RFC 3339, UTC
	Node     string           `json:"node"`
	Conn     string           `json:"conn,omitempty"`
	User     string           `json:"user,omitempty"`
	Channel  string           `json:"channel,omitempty"`
	Code     int              `json:"code,omitempty"`
	Reason   string           `json:"reason,omitempty"`
	Function string           `json:"function,omitempty"`
	Error    string           `json:"error,omitempty"`
	Limit    string           `json:"limit,omitempty"`
	Message  string           `json:"message,omitempty"`
	Omitted  map[string]int64 `json:"omitted,omitempty"`
	// App is the app whose connection or channel the event is about; ""
	// the default app's (and the node's own events). A subscriber gets
	// the events of its own app only (Feed.SubscribeApp).
	App string `json:"app,omitempty"`
}

// sampled reports whether events of kind are bounded by status_sample_rate;
// node events and the omitted counts always pass.
func sampled(kind string) bool {
	switch kind {
	case NodeJoined, NodeLeft, EventsOmitted:
		return false
	}
	return true
}

// maxTextBytes bounds the free text of an event (errors, messages): an
// error of a function can repeat what the function threw.
const maxTextBytes = 512

func clip(s string) string {
	if len(s) <= maxTextBytes {
		return s
	}
	// Cut on a rune boundary so the JSON stays valid text.
	i := maxTextBytes
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "..."
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
