package nats

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	natsgo "github.com/nats-io/nats.go"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Every channel subscription feeds the one deliver channel from the
// connection's single reader goroutine, and one dispatch goroutine drains
// it: the handler sees messages in the order NATS sent them, also across
// an Unsubscribe and a new Subscribe of one channel (a message goes to
// either subscription, never both, and the old one's come first).

// Subscribe makes this node receive channel. It returns once the server has
// confirmed the subscription, so that everything stored afterwards is
// delivered; while NATS is unreachable it fails with broker.ErrUnavailable.
func (b *Broker) Subscribe(ctx context.Context, channel string) error {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	if _, ok := b.subs[channel]; ok {
		return nil
	}
	if !b.nc.IsConnected() {
		return unavailable("subscribe", natsgo.ErrConnectionReconnecting)
	}
	sub, err := b.nc.ChanSubscribe(b.delivSubj+token(channel), b.deliver)
	if err != nil {
		return unavailable("subscribe", err)
	}
	// A channel subscription has no pending limits of its own: when the
	// shared deliver channel is full, NATS drops the message and reports a
	// slow consumer to the error handler (counted as a reconnect).
	// The server has the subscription once it answered a ping sent after it.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opTimeout)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return unavailable("subscribe", err)
	}
	b.subs[channel] = sub
	return nil
}

// Unsubscribe stops receiving channel. Messages already on the way may
// still be delivered.
func (b *Broker) Unsubscribe(_ context.Context, channel string) error {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	sub, ok := b.subs[channel]
	if !ok {
		return nil
	}
	delete(b.subs, channel)
	// While disconnected the client forgets the subscription and does not
	// renew it on reconnect, so an error here changes nothing.
	_ = sub.Unsubscribe()
	return nil
}

// dispatch decodes what the subscriptions received and hands it on.
func (b *Broker) dispatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-b.deliver:
			b.handle(m)
		}
	}
}

func (b *Broker) handle(m *natsgo.Msg) {
	tok, ok := strings.CutPrefix(m.Subject, b.delivSubj)
	if !ok {
		return
	}
	channel, err := untoken(tok)
	if err != nil {
		b.log.Error("bad subject from nats", "subject", m.Subject)
		return
	}
	h := b.handlerOf()
	if h == nil {
		return
	}
	switch m.Header.Get(hdrKind) {
	case "":
		msg, err := decodeStored(channel, m.Header, m.Data)
		if err != nil {
			b.log.Error("bad message from nats", "channel", channel, "err", err)
			return
		}
		h.HandleMessage(msg)
	case kindPresence:
		ev := new(protocol.PresenceEvent)
		if err := json.Unmarshal(m.Data, ev); err != nil {
			b.log.Error("bad presence event from nats", "channel", channel, "err", err)
			return
		}
		ev.Channel = channel
		h.HandlePresence(ev)
	}
	// kindEpoch markers carry no message.
}

// decodeStored decodes a stored (or republished) message.
func decodeStored(channel string, h natsgo.Header, data []byte) (*protocol.Message, error) {
	off, err := strconv.ParseUint(h.Get(hdrOffset), 10, 64)
	if err != nil {
		return nil, err
	}
	return decodeBody(channel, data, off, h.Get(hdrEpoch))
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
