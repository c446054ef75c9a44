package api

// The console's admin API: live figures, channels and connections
// (docs/http-api.md, "Console"). These take the admin key.

// NodeStats is one node's figures at one moment.
type NodeStats struct {
	NodeInfo
	Channels int `json:"channels"`
	// Totals since the node started: messages published through it, and
	// messages it handed to local subscribers.
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
	// Self is true for the node that answered; the others' figures come
	// from the cluster's node registry (refreshed every few seconds).
	Self bool `json:"self,omitempty"`
}

// StatsPoint is one second of the answering node's figures, for charts.
type StatsPoint struct {
	TimeMS          int64   `json:"time_ms"`
	Connections     int     `json:"connections"`
	Subscriptions   int     `json:"subscriptions"`
	MessagesInPerS  float64 `json:"messages_in_per_s"`
	MessagesOutPerS float64 `json:"messages_out_per_s"`
}

// ChannelRate is a channel's local subscribers and message rate.
type ChannelRate struct {
	Channel     string  `json:"channel"`
	Subscribers int     `json:"subscribers"`
	Messages    uint64  `json:"messages"`
	PerS        float64 `json:"per_s"`
}

// FunctionStats are one function's counters on the answering node.
type FunctionStats struct {
	Name        string  `json:"name"`
	Invocations uint64  `json:"invocations"`
	Errors      uint64  `json:"errors"`
	Timeouts    uint64  `json:"timeouts"`
	Rejections  uint64  `json:"rejections"`
	AvgMS       float64 `json:"avg_ms"`
}

// BrokerStatus says which broker carries messages and whether it is up.
type BrokerStatus struct {
	Kind  string `json:"kind"` // memory, redis or nats
	Ready bool   `json:"ready"`
}

// Stats answers GET /api/v1/stats and is each event of its follow=1 stream.
type Stats struct {
	TimeMS    int64           `json:"time_ms"`
	Node      string          `json:"node"` // the answering node's id
	Broker    BrokerStatus    `json:"broker"`
	Nodes     []NodeStats     `json:"nodes"`
	Busiest   []ChannelRate   `json:"busiest"`
	Functions []FunctionStats `json:"functions"`
	// History is the answering node's last minutes, oldest first; only in
	// the first answer (the stream's first event included), null after.
	History []StatsPoint `json:"history"`
}

// ChannelsResponse answers GET /api/v1/channels.
type ChannelsResponse struct {
	Node     string        `json:"node"`
	Channels []ChannelRate `json:"channels"`
	Total    int           `json:"total"`
}

// ConnectionInfo is one open connection.
type ConnectionInfo struct {
	ID          string   `json:"id"`
	User        string   `json:"user"` // empty until authenticated
	Transport   string   `json:"transport"`
	Node        string   `json:"node"`
	ConnectedAt string   `json:"connected_at"` // RFC 3339
	Channels    []string `json:"channels"`
}

// ConnectionsResponse answers GET /api/v1/connections: the first
// connections (oldest first) of every node that answered within 2 s.
type ConnectionsResponse struct {
	Connections []ConnectionInfo `json:"connections"`
	Total       int              `json:"total"`
	Nodes       int              `json:"nodes"`
}

// DisconnectRequest is the body of POST /api/v1/users/{user}/disconnect.
type DisconnectRequest struct {
	Reason string `json:"reason"`
}

// DisconnectResponse answers it: how many connections were closed, on
// how many nodes (those that answered within 2 s, the answering one included).
type DisconnectResponse struct {
	Disconnected int `json:"disconnected"`
	Nodes        int `json:"nodes"`
}

// ChannelDetail answers GET /api/v1/channels/{channel}: the console's
// channel page in one call.
type ChannelDetail struct {
	ChannelRate
	Node string `json:"node"`
	// Presence says whether the channel keeps presence; Members lists them then.
	Presence bool     `json:"presence"`
	Members  []Member `json:"members"`
	// History is the last messages kept (at most 20), oldest first.
	History     []Message `json:"history"`
	HistorySize int       `json:"history_size"`
}

// ChannelPublishRequest is the body of POST /api/v1/channels/{channel}/publish.
type ChannelPublishRequest struct {
	Event string `json:"event"`
	Data  any    `json:"data"`
}
