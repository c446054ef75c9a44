package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// Resynchronisation: a subscription that may have missed messages (its
// node's broker connection broke and came back, or a live message skipped
// offsets) reads what it missed from history and delivers it in order,
// holding live messages in pending meanwhile (the catch-up of replay.go).
// When the history no longer covers the hole, the client gets an
// unsolicited subscribed frame with recovered:false and the channel's new
// position. Either way the connection stays open: a broker outage costs
// no reconnect wave (issue 19.4).

const (
	// minResyncPause and maxResyncPause bound the wait between two history
	// reads of a resync while the broker fails.
	minResyncPause, maxResyncPause = 50 * time.Millisecond, 2 * time.Second
)

// resync catches sub up from the last message it delivered; it runs on its
// own goroutine, with sub.catchingUp set by whoever started it. While the
// broker fails it retries until it answers or the subscription ends.
func (sub *subscription) resync() {
	pause := minResyncPause
	for {
		sub.mu.Lock()
		if sub.ended() {
			sub.mu.Unlock()
			return
		}
		since := protocol.Position{Epoch: sub.epoch, Offset: sub.last}
		sub.mu.Unlock()
		ctx, cancel := context.WithTimeout(sub.c.ctx, replayReadTimeout)
		q := broker.HistoryQuery{Since: &since, Limit: sub.c.replayPageSize(), Options: brokerOptions(sub.opts)}
		page, pos, err := sub.c.connApp().broker.History(ctx, sub.channel, q)
		cancel()
		switch {
		case errors.Is(err, broker.ErrGap):
			sub.lost(pos)
			return
		case err == nil:
			sub.catchUp(pos, page)
			return
		}
		sub.c.s.log.Debug("resync: history read failed, retrying", "conn", sub.c.id, "channel", sub.channel, "err", err)
		select {
		case <-sub.c.ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxResyncPause)
	}
}

// lost tells the client that what it missed is gone from the history: it
// gets a subscribed frame with recovered:false and the channel's position,
// then what arrived since, live.
func (sub *subscription) lost(pos protocol.Position) {
	recovered := false
	frame, err := json.Marshal(resubscribed{
		Type: protocol.TypeSubscribed, Channel: sub.channel,
		Epoch: pos.Epoch, Offset: pos.Offset, Recovered: &recovered,
	})
	if err != nil {
		panic(err) // plain data; cannot fail
	}
	sub.mu.Lock()
	if sub.ended() {
		sub.mu.Unlock()
		return
	}
	// Queued under sub.mu, so that nothing of the channel overtakes it.
	err = sub.c.out.Enqueue(frame)
	sub.mu.Unlock()
	if err != nil {
		return // the connection is closing
	}
	sub.catchUp(pos, nil)
}

// resubscribed is the unsolicited subscribed frame of a resync that could
// not recover: it answers no request, so it has no id.
type resubscribed struct {
	Type      string `json:"type"`
	Channel   string `json:"channel"`
	Epoch     string `json:"epoch"`
	Offset    uint64 `json:"offset"`
	Recovered *bool  `json:"recovered"`
}

// resyncLocked starts a resync of sub, or asks the catch-up under way to
// end with one; sub.mu held.
func (sub *subscription) resyncLocked() {
	switch {
	case sub.ended():
	case sub.catchingUp:
		sub.stale = true
	default:
		sub.catchingUp = true
		go sub.resync()
	}
}

// resyncAll resynchronises every subscription of the connection: its
// node's broker came back, and messages of the outage never arrived live.
func (c *conn) resyncAll() {
	c.mu.Lock()
	subs := make([]*subscription, 0, len(c.subs))
	for _, sub := range c.subs {
		subs = append(subs, sub)
	}
	c.mu.Unlock()
	// conn.mu is a leaf: the subscriptions are locked after it is released.
	for _, sub := range subs {
		sub.mu.Lock()
		sub.resyncLocked()
		sub.mu.Unlock()
	}
}
