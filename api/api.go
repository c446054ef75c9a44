// Package api is Eddy's HTTP API for application backends: the request and
// response shapes, and a client that publishes and queries a server.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PublishRequest is the body of POST /api/v1/publish: Channel or Channels.
type PublishRequest struct {
	Channel  string          `json:"channel,omitempty"`
	Channels []string        `json:"channels,omitempty"`
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
}

// PublishResponse answers a publish.
type PublishResponse struct {
	// ID names the publish: every channel's copy of the message has it.
	ID string `json:"id"`
	// Offsets is the offset the message took in each channel, for
	// correlating with history and subscribers' positions; a channel a
	// function dropped the message from is absent.
	Offsets map[string]uint64 `json:"offsets,omitempty"`
}

// BatchMessage is one item of POST /api/v1/batch.
type BatchMessage struct {
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
}

// BatchRequest is the body of POST /api/v1/batch.
type BatchRequest struct {
	Messages []BatchMessage `json:"messages"`
}

// BatchResult is the fate of one batch item: its message id and channel
// offset, or the error that refused it. Offset is 0 when a function
// dropped the message or sent it to other channels.
type BatchResult struct {
	ID     string       `json:"id,omitempty"`
	Offset uint64       `json:"offset,omitempty"`
	Error  *ErrorDetail `json:"error,omitempty"`
}

// BatchResponse answers a batch: one result per item, in order.
type BatchResponse struct {
	Results []BatchResult `json:"results"`
}

// Message is one delivered or stored message.
type Message struct {
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	ID      string          `json:"id"`
	TS      int64           `json:"ts"`
	Offset  uint64          `json:"offset"`
	Epoch   string          `json:"epoch"`
	User    string          `json:"user,omitempty"`
	// Exclude, when set, is the Pusher socket id of a connection that must
	// not receive the message (its sender: Pusher's socket_id). Internal:
	// not part of the JSON shape, carried between nodes by the brokers.
	Exclude string `json:"-"`
}

// HistoryResponse answers GET /api/v1/history.
type HistoryResponse struct {
	Channel  string    `json:"channel"`
	Epoch    string    `json:"epoch"`
	Offset   uint64    `json:"offset"`
	Messages []Message `json:"messages"`
	// HistorySize and HistoryTTLMS are the channel's namespace settings:
	// a size of 0 means the channel keeps no history at all.
	HistorySize  int   `json:"history_size"`
	HistoryTTLMS int64 `json:"history_ttl_ms"`
}

// Member is one connection in a presence channel.
type Member struct {
	User string          `json:"user"`
	Conn string          `json:"conn"`
	Info json.RawMessage `json:"info,omitempty"`
}

// PresenceResponse answers GET /api/v1/presence.
type PresenceResponse struct {
	Channel string   `json:"channel"`
	Members []Member `json:"members"`
}

// NodeInfo describes one live node.
type NodeInfo struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Connections   int    `json:"connections"`
	Subscriptions int    `json:"subscriptions"`
	UptimeS       int64  `json:"uptime_s"`
	// Rates over the last second, for the console and eddy top (console.go).
	MessagesInPerS  float64 `json:"messages_in_per_s"`
	MessagesOutPerS float64 `json:"messages_out_per_s"`
	// Apps are the figures of the asking app on this node (docs/apps.md).
	// A pointer keeps NodeInfo comparable.
	Apps *[]AppInfo `json:"apps,omitempty"`
}

// AppInfo is one app's load on one node.
type AppInfo struct {
	ID            string  `json:"id"`
	Connections   int     `json:"connections"`
	Subscriptions int     `json:"subscriptions"`
	Published     uint64  `json:"published"`    // messages published through the node since it started
	PublishRate   float64 `json:"publish_rate"` // messages per second, over the last few seconds
}

// InfoResponse answers GET /api/v1/info.
type InfoResponse struct {
	Nodes []NodeInfo `json:"nodes"`
}

// ErrorBody is every error response's body.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail names what went wrong.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is a non-2xx answer from the server.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// Client calls one Eddy server's HTTP API.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	APIKey  string
	HTTP    *http.Client // nil: a client with a 10 s timeout
}

// NewClient returns a client for baseURL with apiKey.
func NewClient(baseURL, apiKey string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: apiKey}
}

var defaultHTTP = &http.Client{Timeout: 10 * time.Second}

// Publish sends event with data (any JSON-encodable value, or json.RawMessage)
// to channel and returns the message id.
func (c *Client) Publish(ctx context.Context, channel, event string, data any) (string, error) {
	return c.PublishMany(ctx, []string{channel}, event, data)
}

// PublishMany sends one event to several channels.
func (c *Client) PublishMany(ctx context.Context, channels []string, event string, data any) (string, error) {
	raw, err := encodeData(data)
	if err != nil {
		return "", err
	}
	req := PublishRequest{Event: event, Data: raw}
	if len(channels) == 1 {
		req.Channel = channels[0]
	} else {
		req.Channels = channels
	}
	var out PublishResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/publish", req, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// Batch publishes many messages in one request. Each item is published
// as a single publish would be (functions included), in order; the error
// is only for the request as a whole (transport, auth, more than the
// server's max_batch). An item the server refused has its Error set in its
// result, and the others were still published.
func (c *Client) Batch(ctx context.Context, msgs []BatchMessage) ([]BatchResult, error) {
	var out BatchResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/batch", BatchRequest{Messages: msgs}, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(msgs) {
		return nil, fmt.Errorf("POST /api/v1/batch: %d results for %d messages", len(out.Results), len(msgs))
	}
	return out.Results, nil
}

// NewBatchMessage builds a batch item; data is any JSON-encodable value,
// or json.RawMessage.
func NewBatchMessage(channel, event string, data any) (BatchMessage, error) {
	raw, err := encodeData(data)
	if err != nil {
		return BatchMessage{}, err
	}
	return BatchMessage{Channel: channel, Event: event, Data: raw}, nil
}

func encodeData(data any) (json.RawMessage, error) {
	switch d := data.(type) {
	case json.RawMessage:
		return d, nil
	case []byte:
		return json.RawMessage(d), nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode data: %w", err)
	}
	return b, nil
}

// History returns up to limit stored messages of channel after offset since
// (all kept ones when since is 0).
func (c *Client) History(ctx context.Context, channel string, since uint64, limit int) (*HistoryResponse, error) {
	q := url.Values{"channel": {channel}}
	if since > 0 {
		q.Set("since", strconv.FormatUint(since, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out HistoryResponse
	if err := c.Do(ctx, http.MethodGet, "/api/v1/history?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Presence lists the members of a presence channel.
func (c *Client) Presence(ctx context.Context, channel string) (*PresenceResponse, error) {
	var out PresenceResponse
	if err := c.Do(ctx, http.MethodGet, "/api/v1/presence?"+url.Values{"channel": {channel}}.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Info lists the live nodes.
func (c *Client) Info(ctx context.Context) (*InfoResponse, error) {
	var out InfoResponse
	if err := c.Do(ctx, http.MethodGet, "/api/v1/info", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Do sends one API request: in (when not nil) as the JSON body, the JSON
// answer decoded into out (when not nil). Non-2xx answers become *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &Error{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
