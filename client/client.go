// Package client is the Go client for Eddy: it holds one WebSocket to a
// server, subscribes and publishes, and reconnects by itself, recovering
// missed messages from the channels' history where the server keeps it.
package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/eddyrt/eddy/api"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// Message is one message received on a channel.
type Message = api.Message

// Member is one connection present in a channel.
type Member = api.Member

// PresenceEvent is a join or leave.
type PresenceEvent struct {
	Channel string `json:"channel"`
	Action  string `json:"action"`
	Member  Member `json:"member"`
}

// State is the connection's state.
type State int

// Connection states reported to Config.OnState.
const (
	StateConnecting State = iota
	StateConnected
	StateDisconnected
	StateClosed
)

func (s State) String() string {
	return [...]string{"connecting", "connected", "disconnected", "closed"}[s]
}

// Config configures a client. URL and one of Token or TokenFunc are required.
type Config struct {
	URL   string // ws://host:8080/ws
	Token string
	// TokenFunc is asked for a token on every (re)connect and before the
	// current one expires; it wins over Token.
	TokenFunc func(ctx context.Context) (string, error)
	// OnState is told about every state change; err says why for disconnects.
	OnState func(s State, err error)
	// MinBackoff and MaxBackoff bound reconnect delays (full jitter); defaults 250 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a connection must stay up for the reconnect
	// backoff to start over from MinBackoff; default 5 s. A connection the
	// server closes sooner (a crash loop, a recovery it cannot serve) counts
	// as a failed attempt, so such a server sees growing delays, not a
	// reconnect loop.
	StableAfter time.Duration
	// RequestTimeout bounds every request; default 10 s.
	RequestTimeout time.Duration
	// Header is sent with the WebSocket handshake (e.g. Origin).
	Header http.Header
	// NoReconnect makes a lost connection final (tests, one-shot tools).
	NoReconnect bool
}

// CloseError is how the server closed the connection.
type CloseError struct {
	Code   uint16
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed by server: %d %s", e.Code, e.Reason) }

// Error is an error frame from the server.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrClosed is returned after Close.
var ErrClosed = errors.New("client closed")

// Client is a connection to Eddy that survives network loss. Safe for concurrent use.
type Client struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	nextID atomic.Uint64

	mu      sync.Mutex
	socket  *gws.Conn
	ready   chan struct{} // closed when the current connection is authenticated
	connID  string
	pending map[uint64]chan frame
	subs    map[string]*Subscription
	lastErr error
	closed  bool
	refresh *time.Timer
}

// Dial connects and authenticates, then keeps the connection up until Close.
// It fails if the first connection cannot be made.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("client: URL is required")
	}
	if cfg.Token == "" && cfg.TokenFunc == nil {
		return nil, errors.New("client: Token or TokenFunc is required")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = 5 * time.Second
	}
	c := &Client{cfg: cfg, done: make(chan struct{}), pending: map[uint64]chan frame{}, subs: map[string]*Subscription{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	first := make(chan error, 1)
	go c.run(first)
	select {
	case err := <-first:
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
}

// ConnID is the server's id for the current connection.
func (c *Client) ConnID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connID
}

func (c *Client) setState(s State, err error) {
	if c.cfg.OnState != nil {
		c.cfg.OnState(s, err)
	}
}

// run connects, waits for the connection to end, and reconnects with
// exponential backoff and full jitter until Close. The backoff starts over
// only after a connection stayed up for StableAfter: a successful connect
// alone does not reset it, or a server that accepts and then closes at once
// would be hammered in a tight loop.
func (c *Client) run(first chan<- error) {
	defer close(c.done)
	attempt := 0
	for {
		c.setState(StateConnecting, nil)
		ended, err := c.connect()
		if first != nil {
			first <- err
			first = nil
			if err != nil {
				return
			}
		}
		if err == nil {
			up := time.Now()
			c.setState(StateConnected, nil)
			c.resubscribe()
			err = <-ended
			if time.Since(up) >= c.cfg.StableAfter {
				attempt = 0
			}
		}
		c.dropConnection(err)
		if c.ctx.Err() != nil {
			c.setState(StateClosed, nil)
			return
		}
		c.setState(StateDisconnected, err)
		var ce *CloseError
		if c.cfg.NoReconnect || (errors.As(err, &ce) && ce.Code == 4001 && c.cfg.TokenFunc == nil) {
			c.setState(StateClosed, err)
			return
		}
		delay := backoff(attempt, c.cfg.MinBackoff, c.cfg.MaxBackoff)
		attempt++
		select {
		case <-time.After(delay):
		case <-c.ctx.Done():
			c.setState(StateClosed, nil)
			return
		}
	}
}

// backoff is full jitter: uniform in [0, min(max, base*2^attempt)], so a
// crowd of clients of a restarted node does not return at one instant.
func backoff(attempt int, base, max time.Duration) time.Duration {
	ceiling := base << min(attempt, 20)
	if ceiling > max || ceiling <= 0 {
		ceiling = max
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

func (c *Client) token(ctx context.Context) (string, error) {
	if c.cfg.TokenFunc != nil {
		return c.cfg.TokenFunc(ctx)
	}
	return c.cfg.Token, nil
}

// connect dials and authenticates; ended reports why the connection ended.
func (c *Client) connect() (<-chan error, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	defer cancel()
	tok, err := c.token(ctx)
	if err != nil {
		return nil, fmt.Errorf("get token: %w", err)
	}
	h := &handler{c: c, ended: make(chan error, 1), readyCh: make(chan frame, 1)}
	socket, _, err := gws.NewClient(h, &gws.ClientOption{
		Addr:               c.cfg.URL,
		RequestHeader:      c.cfg.Header,
		ReadMaxPayloadSize: 64 << 20,
		HandshakeTimeout:   c.cfg.RequestTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", c.cfg.URL, err)
	}
	go socket.ReadLoop()
	auth, _ := json.Marshal(map[string]string{"type": "auth", "token": tok})
	if err := socket.WriteMessage(gws.OpcodeText, auth); err != nil {
		return nil, fmt.Errorf("send auth: %w", err)
	}
	select {
	case f := <-h.readyCh:
		if f.Type == "error" {
			_ = socket.WriteClose(1000, nil)
			return nil, &Error{Code: f.Code, Message: f.Message}
		}
		c.mu.Lock()
		c.socket, c.connID, c.lastErr = socket, f.Conn, nil
		c.mu.Unlock()
		c.scheduleRefresh(tok)
		return h.ended, nil
	case err := <-h.ended:
		// The server's error frame comes before its close: say what it said.
		select {
		case f := <-h.readyCh:
			if f.Type == "error" {
				return nil, &Error{Code: f.Code, Message: f.Message}
			}
		default:
		}
		return nil, err
	case <-ctx.Done():
		_ = socket.NetConn().Close()
		return nil, fmt.Errorf("auth: %w", ctx.Err())
	}
}

// scheduleRefresh renews a TokenFunc token before it expires.
func (c *Client) scheduleRefresh(tok string) {
	if c.cfg.TokenFunc == nil {
		return
	}
	exp := tokenExpiry(tok)
	if exp.IsZero() {
		return
	}
	wait := time.Until(exp) * 8 / 10
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refresh != nil {
		c.refresh.Stop()
	}
	c.refresh = time.AfterFunc(wait, func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
		defer cancel()
		t, err := c.cfg.TokenFunc(ctx)
		if err != nil {
			return
		}
		if _, err := c.request(ctx, map[string]any{"type": "refresh", "token": t}); err == nil {
			c.scheduleRefresh(t)
		}
	})
}

// tokenExpiry reads a JWT's exp claim without verifying it.
func tokenExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}

func (c *Client) dropConnection(err error) {
	c.mu.Lock()
	c.socket = nil
	c.lastErr = err
	pending := c.pending
	c.pending = map[uint64]chan frame{}
	if c.refresh != nil {
		c.refresh.Stop()
	}
	c.mu.Unlock()
	for _, ch := range pending {
		close(ch)
	}
}

// Close ends the connection for good.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	socket := c.socket
	c.mu.Unlock()
	c.cancel()
	if socket != nil {
		_ = socket.WriteClose(1000, nil)
	}
	<-c.done
	return nil
}

// frame is any frame the server sends.
type frame struct {
	Type         string          `json:"type"`
	ID           json.RawMessage `json:"id"` // a number for replies, a string for messages
	Conn         string          `json:"conn"`
	User         string          `json:"user"`
	Channel      string          `json:"channel"`
	Event        string          `json:"event"`
	Data         json.RawMessage `json:"data"`
	MsgID        json.RawMessage `json:"msg"`
	TS           int64           `json:"ts"`
	Offset       uint64          `json:"offset"`
	Epoch        string          `json:"epoch"`
	Recovered    *bool           `json:"recovered"`
	Members      []Member        `json:"members"`
	MembersTotal int             `json:"members_total"`
	Action       string          `json:"action"`
	Member       Member          `json:"member"`
	Code         string          `json:"code"`
	Message      string          `json:"message"`
	Exp          int64           `json:"exp"`
}

// requestID is the numeric id of a reply (0 if none).
func (f *frame) requestID() uint64 {
	var id uint64
	_ = json.Unmarshal(f.ID, &id)
	return id
}

// messageID is the string id of a message.
func (f *frame) messageID() string {
	var id string
	_ = json.Unmarshal(f.ID, &id)
	return id
}

// request sends req with a fresh id and waits for its reply.
func (c *Client) request(ctx context.Context, req map[string]any) (frame, error) {
	id := c.nextID.Add(1)
	req["id"] = id
	b, err := json.Marshal(req)
	if err != nil {
		return frame{}, fmt.Errorf("encode %s: %w", req["type"], err)
	}
	ch := make(chan frame, 1)
	c.mu.Lock()
	socket := c.socket
	if socket == nil {
		err := c.lastErr
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return frame{}, ErrClosed
		}
		return frame{}, fmt.Errorf("not connected: %v", err)
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := socket.WriteMessage(gws.OpcodeText, b); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return frame{}, fmt.Errorf("send %s: %w", req["type"], err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return frame{}, fmt.Errorf("%s: connection lost", req["type"])
		}
		if f.Type == "error" {
			return f, &Error{Code: f.Code, Message: f.Message}
		}
		return f, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return frame{}, fmt.Errorf("%s: %w", req["type"], ctx.Err())
	}
}

// Publish sends event with data (any JSON-encodable value or json.RawMessage)
// to channel and waits for the server's ack; it returns the message id.
func (c *Client) Publish(ctx context.Context, channel, event string, data any) (string, error) {
	raw, ok := data.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(data)
		if err != nil {
			return "", fmt.Errorf("publish %q: encode data: %w", channel, err)
		}
		raw = b
	}
	f, err := c.request(ctx, map[string]any{"type": "publish", "channel": channel, "event": event, "data": raw})
	if err != nil {
		return "", fmt.Errorf("publish %q: %w", channel, err)
	}
	var id string
	_ = json.Unmarshal(f.MsgID, &id)
	return id, nil
}

// Ping round-trips a ping frame.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.request(ctx, map[string]any{"type": "ping"})
	return err
}

// Presence lists the members of channel.
func (c *Client) Presence(ctx context.Context, channel string) ([]Member, error) {
	f, err := c.request(ctx, map[string]any{"type": "presence", "channel": channel})
	if err != nil {
		return nil, fmt.Errorf("presence %q: %w", channel, err)
	}
	return f.Members, nil
}

// handler receives gws events for one connection.
type handler struct {
	c       *Client
	ended   chan error
	readyCh chan frame
	authed  bool
}

func (h *handler) OnOpen(*gws.Conn) {}

func (h *handler) OnClose(_ *gws.Conn, err error) {
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		err = &CloseError{Code: ce.Code, Reason: string(ce.Reason)}
	}
	if err == nil {
		err = errors.New("connection closed")
	}
	h.ended <- err
}

func (h *handler) OnPing(socket *gws.Conn, payload []byte) { _ = socket.WritePong(payload) }
func (h *handler) OnPong(*gws.Conn, []byte)                {}

func (h *handler) OnMessage(_ *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	b := msg.Bytes()
	for len(b) > 0 {
		i := indexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > 0 {
			h.handle(line)
		}
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (h *handler) handle(line []byte) {
	var f frame
	if err := json.Unmarshal(line, &f); err != nil {
		return
	}
	c := h.c
	if !h.authed {
		if f.Type == "ready" || f.Type == "error" {
			h.authed = f.Type == "ready"
			h.readyCh <- f
		}
		return
	}
	switch f.Type {
	case "message":
		c.mu.Lock()
		sub := c.subs[f.Channel]
		c.mu.Unlock()
		if sub != nil {
			sub.dispatch(&Message{Channel: f.Channel, Event: f.Event, Data: f.Data, ID: f.messageID(), TS: f.TS, Offset: f.Offset, Epoch: f.Epoch, User: f.User})
		}
	case "presence":
		c.mu.Lock()
		sub := c.subs[f.Channel]
		c.mu.Unlock()
		if sub != nil {
			sub.dispatchPresence(PresenceEvent{Channel: f.Channel, Action: f.Action, Member: f.Member})
		}
	case "subscribed":
		// Applied here, on the read goroutine, so the position is set before
		// the replayed messages that follow the reply are dispatched.
		c.mu.Lock()
		sub := c.subs[f.Channel]
		c.mu.Unlock()
		switch {
		case sub != nil && f.requestID() == 0:
			// Unsolicited: the server resynchronised the subscription after
			// its broker came back and could not recover what was missed
			// (recovered:false); the connection stays open.
			sub.resynced(&f)
		case sub != nil:
			sub.applySubscribed(&f)
		}
		fallthrough
	default:
		id := f.requestID()
		if id == 0 {
			return
		}
		c.mu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
}
