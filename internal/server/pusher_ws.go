package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"
	"golang.org/x/time/rate"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/outbox"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/pusher"
)

// Pusher protocol 7 over WebSocket at GET /app/{key}: the connection is a
// conn like any other (outbox, limits, pings, teardown), whose frames go
// to handlePusherFrame instead of Eddy's handlers.

// clientEventRate is how many client events a connection may send per
// second, Pusher's own limit.
const clientEventRate = 10

// pusherSession is a Pusher connection's protocol state.
type pusherSession struct {
	app      *pusherApp
	socketID string

	mu       sync.Mutex
	subs     map[string]*pusherSub
	user     string // set by pusher:signin
	userSub  *pusherUserWatch
	activity *time.Timer

	events *rate.Limiter // client events; owned by the frame handler
}

func (s *Server) mountPusher(client, api *http.ServeMux) {
	client.HandleFunc("GET /app/{key}", s.handlePusherWebSocket)
	s.mountPusherAPI(api)
}

func (s *Server) handlePusherWebSocket(w http.ResponseWriter, r *http.Request) {
	netConn, br, ip, ok := s.hijackWebSocket(w, r)
	if !ok {
		return
	}
	app, known := s.appForPusherKey(r.PathValue("key"))
	version := r.URL.Query().Get("protocol")
	var wire *frameWire
	wrap := func(c net.Conn) net.Conn {
		if s.offersDeflate(r) {
			return c
		}
		wire = &frameWire{Conn: c}
		return wire
	}
	s.upgradeWith(netConn, br, r, ip, wrap, func(socket *gws.Conn, sock *outbox.Socket) *conn {
		if wire != nil {
			wire.upgraded()
		}
		c := s.newPusherConn(socket, sock, wire, app)
		switch v, err := strconv.Atoi(version); {
		case !known:
			c.pusherRefuse(pusher.CodeAppNotFound, fmt.Sprintf("App key %s not in this cluster", r.PathValue("key")))
		case !c.pusherAdmitApp(r):
		case version == "":
			c.pusherRefuse(pusher.CodeNoProtocol, "no protocol version supplied: add ?protocol=7")
		case err != nil || v < 5 || v > pusher.Protocol:
			c.pusherRefuse(pusher.CodeUnsupportedVersion, fmt.Sprintf("unsupported protocol version %q; this server speaks 5 to %d", version, pusher.Protocol))
		default:
			data := pusher.StringData(map[string]any{"socket_id": c.pusher.socketID, "activity_timeout": s.pusher.activity})
			c.send(pusher.Frame{Event: "pusher:connection_established", Data: data}.Encode())
			c.pusher.armActivity(c, time.Duration(s.pusher.activity)*time.Second)
		}
		return c
	})
}

// pusherAdmitApp checks a connection to an app other than the default
// one against that app's allowed_origins and max_connections, and makes it
// one of the app's connections (so deleting the app closes it); false, and
// the connection refused, when the app does not admit it. The default
// app's connections are admitted as they always were.
func (c *conn) pusherAdmitApp(r *http.Request) bool {
	a := c.pusher.app.state
	if a.isDefault() {
		return true
	}
	if err := c.s.appOriginAllowed(a, r.Header.Get("Origin")); err != nil {
		c.s.metrics.errorsFor(protocol.CodeForbidden).Inc()
		c.pusherRefuse(pusher.CodeUnauthorized, err.Error())
		return false
	}
	c.mu.Lock()
	ok := c.admitAppLocked(a)
	c.mu.Unlock()
	if ok {
		return true
	}
	if a.deleted.Load() {
		c.pusherRefuse(pusher.CodeAppDisabled, fmt.Sprintf("app %q was deleted", a.id))
	} else {
		c.pusherRefuse(pusher.CodeOverConnQuota, appConnLimitError(a).Message)
	}
	return false
}

// pusherRefuse sends pusher:error with code and closes with it.
func (c *conn) pusherRefuse(code int, msg string) {
	c.send(pusher.ErrorFrame(code, msg))
	c.closeWith(protocol.Disconnect{Code: uint16(code), Reason: msg}, true)
}

// newPusherConn starts a Pusher connection: it needs no auth frame, and
// writes each frame as its own WebSocket message (Pusher has no batching).
func (s *Server) newPusherConn(socket *gws.Conn, sock *outbox.Socket, wire *frameWire, app *pusherApp) *conn {
	c := s.allocConn()
	c.socket = socket
	c.pusher = &pusherSession{app: app, socketID: fmt.Sprintf("%d.%d", rand.Uint32N(1<<31), c.seq), subs: map[string]*pusherSub{}}
	onInvalid := func(frame []byte) { s.frameDropped(c.id, frame) }
	var w outbox.Writer = &pusherWriter{socketWriter: socketWriter{socket: socket, onInvalid: onInvalid}, wire: wire}
	if sock != nil {
		w = &pusherNBWriter{pusherWriter{socketWriter: socketWriter{socket: socket, onInvalid: onInvalid}, wire: wire}, sock}
	}
	s.startConn(c, w)
	c.mu.Lock()
	c.authTimer.Stop()
	c.mu.Unlock()
	return c
}

// armActivity sends pusher:ping when the client has been silent for d.
func (ps *pusherSession) armActivity(c *conn, d time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.activity = time.AfterFunc(d, func() {
		if c.closing() {
			return
		}
		idle := time.Since(time.Unix(0, c.lastRead.Load()))
		if idle >= d {
			c.send(pusher.Frame{Event: "pusher:ping", Data: json.RawMessage(`{}`)}.Encode())
			idle = 0
		}
		ps.mu.Lock()
		if ps.activity != nil {
			ps.activity.Reset(d - idle)
		}
		ps.mu.Unlock()
	})
}

// handlePusherFrame handles one message of a Pusher client.
func (c *conn) handlePusherFrame(ctx context.Context, b []byte) {
	if len(b) > c.s.cfg.MaxMessageBytes {
		c.send(pusher.ErrorFrame(0, fmt.Sprintf("message is %d bytes; the limit is %d", len(b), c.s.cfg.MaxMessageBytes)))
		return
	}
	var f pusher.Frame
	if err := json.Unmarshal(b, &f); err != nil || f.Event == "" {
		c.pusherBad("message must be a JSON object with an event")
		return
	}
	switch {
	case f.Event == "pusher:ping":
		c.send(pusher.Frame{Event: "pusher:pong", Data: json.RawMessage(`{}`)}.Encode())
	case f.Event == "pusher:pong":
	case f.Event == "pusher:subscribe":
		c.pusherSubscribe(ctx, f.Data)
	case f.Event == "pusher:unsubscribe":
		c.pusherUnsubscribe(ctx, f.Data)
	case f.Event == "pusher:signin":
		c.pusherSignin(ctx, f.Data)
	case strings.HasPrefix(f.Event, "client-"):
		c.pusherClientEvent(ctx, &f)
	default:
		c.pusherBad(fmt.Sprintf("unknown event %q", f.Event))
	}
}

func (c *conn) pusherBad(msg string) {
	c.send(pusher.ErrorFrame(0, msg))
	c.badFrames++
	if c.badFrames >= maxBadFrames {
		c.pusherRefuse(pusher.CodeGenericReconnect, "too many bad messages")
	}
}

type subscribeData struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data"`
}

// subscriptionError answers a refused subscribe as Pusher does.
func (c *conn) subscriptionError(channel, typ, msg string, status int) {
	data := pusher.StringData(map[string]any{"type": typ, "error": msg, "status": status})
	c.send(pusher.Frame{Event: "pusher:subscription_error", Channel: channel, Data: data}.Encode())
}

func (c *conn) pusherSubscribe(ctx context.Context, raw json.RawMessage) {
	var d subscribeData
	if err := json.Unmarshal(raw, &d); err != nil {
		c.pusherBad("pusher:subscribe data must be an object with a channel")
		return
	}
	if strings.HasPrefix(d.Channel, serverToUserPrefix) {
		c.pusherServerToUser(d.Channel)
		return
	}
	if err := pusher.ValidateChannel(d.Channel); err != nil {
		c.subscriptionError(d.Channel, "InvalidChannel", err.Error(), 400)
		return
	}
	ps := c.pusher
	kind := pusher.KindOf(d.Channel)
	var member protocol.Member
	if kind.Private {
		signed := "" // channel_data is signed on presence channels only
		if kind.Presence {
			signed = d.ChannelData
		}
		want := pusher.ChannelAuth(ps.app.Key, ps.app.Secret, ps.socketID, d.Channel, signed)
		if err := pusher.VerifyAuth(d.Auth, want); err != nil {
			c.subscriptionError(d.Channel, "AuthError", "invalid auth for "+d.Channel+": "+err.Error(), 401)
			return
		}
	}
	if kind.Presence {
		var cd pusher.ChannelData
		if err := json.Unmarshal([]byte(d.ChannelData), &cd); err != nil {
			c.subscriptionError(d.Channel, "AuthError", "channel_data must be a JSON object with user_id", 400)
			return
		}
		uid, ok := pusher.UserIDString(cd.UserID)
		if !ok {
			c.subscriptionError(d.Channel, "AuthError", "channel_data needs a user_id (string or number)", 400)
			return
		}
		member = protocol.Member{User: uid, Conn: c.id, Info: cd.UserInfo}
	}
	ps.mu.Lock()
	switch {
	case ps.subs[d.Channel] != nil:
		ps.mu.Unlock()
		// Already subscribed (pusher-js only resubscribes on a new
		// connection): answer again, with the current members.
		succeeded := json.RawMessage(`"{}"`)
		if kind.Presence && ps.app.state.presence != nil {
			members, err := ps.app.state.presence.Members(ctx, d.Channel)
			if err != nil {
				c.s.log.Warn("pusher presence members", "channel", d.Channel, "err", err)
			}
			succeeded = pusher.StringData(presenceView(members))
		}
		c.send(pusher.Frame{Event: "pusher_internal:subscription_succeeded", Channel: d.Channel, Data: succeeded}.Encode())
		return
	case len(ps.subs) >= c.s.cfg.MaxSubscriptions:
		ps.mu.Unlock()
		c.subscriptionError(d.Channel, "LimitReached", fmt.Sprintf("subscription limit of %d reached", c.s.cfg.MaxSubscriptions), 429)
		return
	}
	ps.mu.Unlock()

	pc, err := c.s.pusherAcquire(ctx, ps.app.state, d.Channel)
	if err != nil {
		pe := c.s.clientError("pusher subscribe", err)
		c.subscriptionError(d.Channel, "ServerError", pe.Message, 503)
		return
	}
	sub := &pusherSub{c: c, sess: ps, ch: pc, userID: member.User}
	pc.add(sub)
	ps.mu.Lock()
	ps.subs[d.Channel] = sub
	ps.mu.Unlock()

	succeeded := json.RawMessage(`"{}"`)
	if kind.Presence && pc.app.presence != nil {
		if err := pc.app.presence.AddMember(ctx, d.Channel, member); err != nil {
			c.s.pusherLeave(ctx, sub)
			c.subscriptionError(d.Channel, "ServerError", c.s.clientError("pusher presence", err).Message, 503)
			return
		}
		// Webhooks count members per user across both protocols.
		c.s.memberJoined(pc.app, d.Channel, member.User)
		c.s.pusherAnnounce(ctx, pc.app, d.Channel, protocol.ActionJoin, member)
		members, err := pc.app.presence.Members(ctx, d.Channel)
		if err != nil {
			c.s.log.Warn("pusher presence members", "channel", d.Channel, "err", err)
		}
		view := presenceView(members)
		sub.ch.markReady(sub, view.Presence.IDs)
		succeeded = pusher.StringData(view)
	}
	c.send(pusher.Frame{Event: "pusher_internal:subscription_succeeded", Channel: d.Channel, Data: succeeded}.Encode())
	if kind.Cache {
		c.pusherSendCached(ctx, d.Channel)
	}
}

// pusherSendCached gives a new subscriber of a cache channel its last event,
// or pusher:cache_miss.
func (c *conn) pusherSendCached(ctx context.Context, channel string) {
	a := c.pusher.app.state
	msgs, _, err := a.broker.History(ctx, channel, broker.HistoryQuery{Limit: 1, Options: brokerOptions(c.s.channelOptions(a, channel))})
	if err != nil && !errors.Is(err, broker.ErrGap) {
		c.s.log.Warn("pusher cache", "channel", channel, "err", err)
	}
	if len(msgs) == 0 {
		c.send(pusher.Frame{Event: "pusher:cache_miss", Channel: channel}.Encode())
		c.s.pusher.cacheMiss(c.pusher.app, channel)
		return
	}
	m := msgs[len(msgs)-1]
	if strings.HasPrefix(m.Event, "client-") {
		c.send(pusher.AppendClientEvent(nil, m.Event, m.Channel, m.Data, ""))
		return
	}
	c.send(pusher.AppendEvent(nil, m.Event, m.Channel, m.Data, ""))
}

func (s *Server) pusherAnnounce(ctx context.Context, a *appState, channel, action string, member protocol.Member) {
	ev := &protocol.PresenceEvent{Channel: channel, Action: action, Member: member}
	if err := a.broker.PublishPresence(ctx, ev); err != nil {
		s.log.Warn("pusher presence event", "channel", channel, "action", action, "err", err)
	}
}

// pusherLeave ends sub: presence says goodbye, the fan-out forgets it.
func (s *Server) pusherLeave(ctx context.Context, sub *pusherSub) {
	sub.ch.remove(sub)
	if a := sub.ch.app; sub.ch.kind.Presence && a.presence != nil {
		s.memberLeft(a, sub.ch.name, sub.userID)
		if err := a.presence.RemoveMember(ctx, sub.ch.name, sub.c.id); err != nil {
			s.log.Warn("pusher presence remove", "channel", sub.ch.name, "err", err)
		}
		s.pusherAnnounce(ctx, a, sub.ch.name, protocol.ActionLeave, protocol.Member{User: sub.userID, Conn: sub.c.id})
	}
	s.pusherRelease(ctx, sub.ch)
}

func (c *conn) pusherUnsubscribe(ctx context.Context, raw json.RawMessage) {
	var d subscribeData
	_ = json.Unmarshal(raw, &d)
	ps := c.pusher
	ps.mu.Lock()
	sub := ps.subs[d.Channel]
	delete(ps.subs, d.Channel)
	ps.mu.Unlock()
	if sub != nil {
		c.s.pusherLeave(ctx, sub)
	}
}

// pusherRelease ends a closing Pusher connection's subscriptions (teardown).
func (c *conn) pusherReleaseAll(ctx context.Context) {
	ps := c.pusher
	ps.mu.Lock()
	subs := ps.subs
	ps.subs = map[string]*pusherSub{}
	watch := ps.userSub
	ps.userSub = nil
	if ps.activity != nil {
		ps.activity.Stop()
		ps.activity = nil
	}
	ps.mu.Unlock()
	for _, sub := range subs {
		c.s.pusherLeave(ctx, sub)
	}
	if watch != nil {
		if err := ps.app.state.hub.Unsubscribe(ctx, watch.channel, watch); err != nil {
			c.s.log.Warn("pusher user unsubscribe", "err", err)
		}
	}
}

func (c *conn) pusherClientEvent(ctx context.Context, f *pusher.Frame) {
	ps := c.pusher
	if !ps.app.clientEvents() { // pusher_apps.go
		c.send(pusher.ErrorFrame(0, "client events are off for this app: set pusher_client_events"))
		return
	}
	ps.mu.Lock()
	sub := ps.subs[f.Channel]
	ps.mu.Unlock()
	switch {
	case sub == nil:
		c.send(pusher.ErrorFrame(0, fmt.Sprintf("client event on %q, which this connection is not subscribed to", f.Channel)))
		return
	case !sub.ch.kind.Private || sub.ch.kind.Encrypted:
		c.send(pusher.ErrorFrame(0, fmt.Sprintf("client events are allowed on private- and presence- channels only, not on %q", f.Channel)))
		return
	}
	if ps.events == nil {
		ps.events = rate.NewLimiter(clientEventRate, clientEventRate)
	}
	if !ps.events.Allow() {
		c.send(pusher.ErrorFrame(pusher.CodeClientEventRate, fmt.Sprintf("client event rejected: only %d accepted per second", clientEventRate)))
		return
	}
	data := f.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	_, err := c.s.publish(ctx, publishRequest{
		channels: []string{f.Channel}, event: f.Event, data: data,
		user: sub.userID, source: "client", exclude: ps.socketID, app: ps.app.state,
	})
	if err != nil {
		c.send(pusher.ErrorFrame(0, "client event refused: "+c.s.clientError("pusher client event", err).Message))
		return
	}
	c.s.pusher.clientEvent(ps.app, f.Channel, f.Event, data, ps.socketID, sub.userID)
}

// pusherDisconnect translates the server's own disconnects into Pusher's
// close codes, whose ranges tell pusher-js whether to reconnect: Eddy's
// 4009 (slow consumer) would mean "unauthorised, never reconnect" there.
func pusherDisconnect(d *protocol.Disconnect) *protocol.Disconnect {
	switch *d {
	case protocol.DisconnectShutdown:
		return &protocol.Disconnect{Code: pusher.CodeGenericReconnect, Reason: d.Reason}
	case protocol.DisconnectSlowConsumer:
		return &protocol.Disconnect{Code: pusher.CodeOverCapacity, Reason: d.Reason}
	case protocol.DisconnectTooManyConns:
		return &protocol.Disconnect{Code: pusher.CodeOverCapacity, Reason: d.Reason}
	}
	return d
}
