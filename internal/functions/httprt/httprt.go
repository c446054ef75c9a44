// Package httprt runs functions hosted behind an HTTP endpoint.
//
// For every message the runtime POSTs
//
//	{"channel":..,"event":..,"data":..,"user":..,"ts":..,"info":..}
//
// to the function's URL with the header
// X-Eddy-Signature: sha256=<hex HMAC-SHA256 of the body keyed by the secret>
// and expects a 2xx response
//
//	{"action":"pass"|"drop"|"reject","message":{...},"reason":"...","publish":[{"channel":..,"event":..,"data":..}]}
//
// Anything else (non-2xx, bad JSON, timeout, connection failure) is a
// failure, which the engine handles with the association's on_error.
package httprt

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// Defaults and limits.
const (
	DefaultMaxConcurrency = 64
	MaxResponseBytes      = 1 << 20
	// Retries is how many times a request is retried after a connection
	// error (never after a response was received).
	Retries = 2
)

// SignatureHeader carries the HMAC of the request body.
const SignatureHeader = "X-Eddy-Signature"

// Runtime holds the connection pool shared by all HTTP functions.
type Runtime struct {
	client    *http.Client
	transport *http.Transport
	// retryDelay is the pause before the first retry; it doubles.
	retryDelay time.Duration
}

// New returns an HTTP runtime with its own connection pool. Unless
// allowPrivate, it refuses to connect to loopback, private, link-local and
// other non-public addresses (see PublicOnly).
func New(allowPrivate bool) *Runtime {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	proxy := http.ProxyFromEnvironment
	if !allowPrivate {
		d.ControlContext = PublicOnly
		// A proxy would make the dial go to the proxy's address and the
		// check meaningless for the real target.
		proxy = nil
	}
	t := &http.Transport{
		Proxy:               proxy,
		DialContext:         d.DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &Runtime{
		transport:  t,
		client:     &http.Client{Transport: t, CheckRedirect: noRedirects},
		retryDelay: 10 * time.Millisecond,
	}
}

// ErrPrivateAddress is returned when a function's URL resolves to an
// address that is not public and allow_private_urls is off.
var ErrPrivateAddress = errors.New("address is not public (loopback, private, link-local...); set allow_private_urls to allow it")

// PublicOnly is a net.Dialer ControlContext that refuses every address
// that is not a public unicast one. It runs after DNS resolution, on the
// very address being dialed, so a name that resolves (or re-resolves) to
// 127.0.0.1 or 169.254.169.254 is refused as well as the literal.
func PublicOnly(_ context.Context, network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || nonPublic(ip) {
		return fmt.Errorf("dial %s: %w", address, ErrPrivateAddress)
	}
	return nil
}

// nonPublic lists special-purpose ranges netip has no predicate for.
var nonPublicPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("2001:db8::/32"),
}

func nonPublic(ip netip.Addr) bool {
	for _, p := range nonPublicPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Close drops idle connections.
func (r *Runtime) Close() error {
	r.transport.CloseIdleConnections()
	return nil
}

// Compile validates the URL; nothing is contacted.
func (r *Runtime) Compile(fn fnrt.Function, cfg fnrt.Config) (fnrt.Instance, error) {
	u, err := url.Parse(fn.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url must be an absolute http or https URL, got %q", fn.URL)
	}
	n := fn.MaxConcurrency
	if n <= 0 {
		n = DefaultMaxConcurrency
	}
	return &instance{rt: r, url: u.String(), secret: []byte(fn.Secret), timeout: cfg.Timeout, sem: make(chan struct{}, n)}, nil
}

type instance struct {
	rt      *Runtime
	url     string
	secret  []byte
	timeout time.Duration
	sem     chan struct{}
}

func (*instance) Close() error { return nil }

type request struct {
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	User    string          `json:"user,omitempty"`
	TS      int64           `json:"ts"`
	Info    json.RawMessage `json:"info,omitempty"`
}

type response struct {
	Action  fnrt.Action `json:"action"`
	Message *struct {
		Channel *string         `json:"channel"`
		Event   *string         `json:"event"`
		Data    json.RawMessage `json:"data"`
	} `json:"message"`
	Reason  string `json:"reason"`
	Publish []struct {
		Channel string          `json:"channel"`
		Event   string          `json:"event"`
		Data    json.RawMessage `json:"data"`
	} `json:"publish"`
}

// Sign returns the X-Eddy-Signature value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is the signature of body; function servers can
// use it.
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(Sign(secret, body)))
}

// Run posts msg and interprets the response.
func (in *instance) Run(ctx context.Context, msg fnrt.Message) (fnrt.Result, error) {
	if len(msg.Data) > fnrt.MaxDataBytes {
		return fnrt.Result{}, fmt.Errorf("message data is %d bytes, the limit for functions is %d", len(msg.Data), fnrt.MaxDataBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	select {
	case in.sem <- struct{}{}:
		defer func() { <-in.sem }()
	case <-ctx.Done():
		return fnrt.Result{}, fmt.Errorf("%w waiting for a concurrency slot", fnrt.ErrTimeout)
	}
	req := request{Channel: msg.Channel, Event: msg.Event, Data: msg.Data, User: msg.User, TS: msg.TS}
	if len(msg.Info) <= fnrt.MaxInfoBytes {
		req.Info = msg.Info
	}
	if len(req.Data) == 0 {
		req.Data = json.RawMessage("null")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fnrt.Result{}, fmt.Errorf("encode request: %w", err)
	}
	sig := Sign(in.secret, body)

	var resp *http.Response
	delay := in.rt.retryDelay
	for attempt := 0; ; attempt++ {
		resp, err = in.post(ctx, body, sig)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fnrt.Result{}, fmt.Errorf("%w: %v", fnrt.ErrTimeout, err)
		}
		if attempt == Retries {
			return fnrt.Result{}, fmt.Errorf("after %d attempts: %w", attempt+1, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fnrt.Result{}, fmt.Errorf("%w: %v", fnrt.ErrTimeout, err)
		}
		delay *= 2
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return fnrt.Result{}, fmt.Errorf("%w reading the response", fnrt.ErrTimeout)
		}
		return fnrt.Result{}, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fnrt.Result{}, fmt.Errorf("endpoint answered %s", resp.Status)
	}
	if len(raw) > MaxResponseBytes {
		return fnrt.Result{}, fmt.Errorf("response larger than %d bytes", MaxResponseBytes)
	}
	return decode(raw, msg)
}

func (in *instance) post(ctx context.Context, body []byte, sig string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, sig)
	return in.rt.client.Do(req)
}

func decode(raw []byte, msg fnrt.Message) (fnrt.Result, error) {
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		return fnrt.Result{}, fmt.Errorf("bad response JSON: %w", err)
	}
	if len(r.Publish) > fnrt.MaxPublish {
		return fnrt.Result{}, fmt.Errorf("response publishes %d messages, the limit is %d", len(r.Publish), fnrt.MaxPublish)
	}
	res := fnrt.Result{Action: r.Action}
	for _, p := range r.Publish {
		if p.Channel == "" || p.Event == "" || len(p.Event) > fnrt.MaxEventBytes {
			return fnrt.Result{}, errors.New("published messages need a channel and an event")
		}
		if len(p.Data) > fnrt.MaxDataBytes {
			return fnrt.Result{}, fmt.Errorf("published data larger than %d bytes", fnrt.MaxDataBytes)
		}
		data := p.Data
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		res.Publish = append(res.Publish, fnrt.Message{Channel: p.Channel, Event: p.Event, Data: data})
	}
	switch r.Action {
	case fnrt.Pass:
		res.Message = msg
		if m := r.Message; m != nil {
			if m.Channel != nil {
				res.Message.Channel = *m.Channel
			}
			if m.Event != nil {
				if len(*m.Event) > fnrt.MaxEventBytes {
					return fnrt.Result{}, errors.New("message.event too long")
				}
				res.Message.Event = *m.Event
			}
			if m.Data != nil {
				if len(m.Data) > fnrt.MaxDataBytes {
					return fnrt.Result{}, fmt.Errorf("message data larger than %d bytes", fnrt.MaxDataBytes)
				}
				res.Message.Data = m.Data
			}
		}
	case fnrt.Drop:
	case fnrt.Reject:
		res.Reason = fnrt.Truncate(r.Reason, fnrt.MaxReasonBytes)
		if res.Reason == "" {
			res.Reason = "rejected by function"
		}
		res.Publish = nil
	default:
		return fnrt.Result{}, fmt.Errorf("bad response action %q", r.Action)
	}
	return res, nil
}
