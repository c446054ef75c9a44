package server

import (
	"context"
	"encoding/hex"
	"encoding/json"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/hub"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/pusher"
)

// User sign-in (pusher:signin) and terminate_connections. A signed-in
// connection watches its user's internal channel; terminate_connections
// publishes to that channel through the broker, so it reaches the user's
// connections on every node. The channel name has a ':' and so cannot be
// named by a Pusher client or the Pusher API.

const terminateEvent = "pusher_internal:terminate"

func pusherUserChannel(user string) string {
	return "pusher-internal:user." + hex.EncodeToString([]byte(user))
}

// pusherUserWatch is a signed-in connection's watch of its user channel.
type pusherUserWatch struct {
	c       *conn
	channel string
}

func (w *pusherUserWatch) Deliver(m *protocol.Message, _ []byte) {
	if m.Event == terminateEvent {
		w.c.send(pusher.ErrorFrame(pusher.CodeUnauthorized, "connection terminated by the server"))
		w.c.closeWith(protocol.Disconnect{Code: pusher.CodeUnauthorized, Reason: "terminated"}, true)
	}
}

func (w *pusherUserWatch) DeliverPresence([]byte, []hub.PresenceItem) {}

type signinData struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

func (c *conn) pusherSignin(ctx context.Context, raw json.RawMessage) {
	ps := c.pusher
	var d signinData
	if err := json.Unmarshal(raw, &d); err != nil {
		c.pusherBad("pusher:signin data must be an object with auth and user_data")
		return
	}
	want := pusher.UserAuth(ps.app.Key, ps.app.Secret, ps.socketID, d.UserData)
	if err := pusher.VerifyAuth(d.Auth, want); err != nil {
		c.pusherRefuse(pusher.CodeUnauthorized, "invalid signin: "+err.Error())
		return
	}
	var ud struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal([]byte(d.UserData), &ud)
	user, ok := pusher.UserIDString(ud.ID)
	if !ok {
		c.pusherRefuse(pusher.CodeUnauthorized, "invalid signin: user_data needs an id")
		return
	}
	ps.mu.Lock()
	if ps.user != "" {
		ps.mu.Unlock()
		c.send(pusher.ErrorFrame(0, "already signed in as "+ps.user))
		return
	}
	ps.user = user
	w := &pusherUserWatch{c: c, channel: pusherUserChannel(user)}
	ps.userSub = w
	ps.mu.Unlock()
	if err := ps.app.state.hub.Subscribe(ctx, w.channel, w); err != nil {
		c.send(pusher.ErrorFrame(0, "signin: "+c.s.clientError("pusher signin", err).Message))
		return
	}
	c.send(pusher.Frame{Event: "pusher:signin_success", Data: pusher.StringData(map[string]string{"user_data": d.UserData})}.Encode())
}

// serverToUserPrefix names the channel pusher-js subscribes to after a
// sign-in. Eddy sends nothing on it (sending to users is not implemented)
// but accepts the subscription of the signed-in user, so the client does
// not report an error.
const serverToUserPrefix = "#server-to-user-"

// pusherServerToUser answers the subscription to #server-to-user-{id}.
func (c *conn) pusherServerToUser(channel string) {
	ps := c.pusher
	ps.mu.Lock()
	user := ps.user
	ps.mu.Unlock()
	if user == "" || channel != serverToUserPrefix+user {
		c.subscriptionError(channel, "AuthError", "sign in as the user first", 403)
		return
	}
	c.send(pusher.Frame{Event: "pusher_internal:subscription_succeeded", Channel: channel, Data: json.RawMessage(`"{}"`)}.Encode())
}

// pusherTerminate closes every connection of app a signed in as user, on
// all nodes.
func (s *Server) pusherTerminate(ctx context.Context, a *appState, user string) error {
	m := &protocol.Message{Channel: pusherUserChannel(user), Event: terminateEvent, Data: json.RawMessage("null"), ID: s.nextID("m-")}
	_, err := a.broker.Publish(ctx, m, broker.ChannelOptions{})
	return err
}
