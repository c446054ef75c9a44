package server

import (
	"context"
	"errors"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// The catch-up of a subscribe with since: the missed messages are read from
// the history a page at a time and queued only as fast as the connection
// takes them, so a gap larger than max_queue_bytes is recovered rather than
// closed as a slow consumer (issue 12.5). Live messages that arrive
// meanwhile wait in the subscription's pending list and are merged by
// offset when the replay ends.

const (
	// minReplayPage and maxReplayPage bound one history read of a replay.
	minReplayPage, maxReplayPage = 8, 1024
	// replayReadTimeout bounds one history read made after the subscribe
	// was answered.
	replayReadTimeout = 10 * time.Second
	// maxRoomWait is the longest pause between two looks at a full queue.
	maxRoomWait = 16 * time.Millisecond
)

// replayBudget is how many bytes a replay lets wait in the connection's
// queue: half of max_queue_bytes, leaving the other half to replies and
// other channels' live messages.
func (c *conn) replayBudget() int { return c.s.cfg.MaxQueueBytes / 2 }

// roomFor reports whether a replayed frame of n bytes may be queued now.
// An empty queue takes any frame, so one message larger than the budget
// still goes (as it would live).
func (c *conn) roomFor(n int) bool {
	q := c.out.Queued()
	return q == 0 || q+n <= c.replayBudget()
}

// replay is one subscription's catch-up in progress.
type replay struct {
	sub     *subscription
	pos     protocol.Position // the channel's position when the subscribe was answered
	page    []*protocol.Message
	last    uint64 // offset of the newest message replayed (or skipped as known)
	async   bool   // running on its own goroutine, after the subscribe returned
	merging bool   // the history is replayed; what arrived meanwhile is next
}

// catchUp starts the subscription's delivery: the replay of page and of the
// history after it up to pos, then what arrived meanwhile, then live. pos
// is the channel's position read after the subscription was registered:
// everything up to it is in the history (or was not asked for), everything
// after it is pending or still to come. It returns when done, or hands the
// rest to a goroutine when the connection's queue is full, so that a slow
// reader holds neither its read loop nor a server goroutine busy.
func (sub *subscription) catchUp(pos protocol.Position, page []*protocol.Message) {
	sub.mu.Lock()
	sub.epoch, sub.last = pos.Epoch, pos.Offset
	r := &replay{sub: sub, pos: pos, page: page, last: pos.Offset}
	if len(page) > 0 && page[0].Epoch == pos.Epoch {
		sub.last = page[0].Offset - 1 // the replay starts right after since
		r.last = sub.last
	}
	sub.mu.Unlock()
	r.run()
}

// run replays until done, until the subscription ends, or until it must
// wait for the queue to drain (then it continues on a goroutine).
func (r *replay) run() {
	sub := r.sub
	for {
		for len(r.page) > 0 {
			m := r.page[0]
			frame := protocol.AppendMessage(nil, m)
			if !sub.c.roomFor(len(frame)) && !r.wait(len(frame)) {
				return
			}
			sub.mu.Lock()
			if sub.ended() {
				sub.mu.Unlock()
				return
			}
			err := sub.deliverLocked(m, frame)
			sub.mu.Unlock()
			if errors.Is(err, errHole) {
				go sub.resync() // the history itself skipped: read it again
				return
			}
			if err != nil {
				return // the connection is closing
			}
			r.page = r.page[1:]
			if m.Epoch == r.pos.Epoch && m.Offset > r.last {
				r.last = m.Offset
			}
		}
		if r.last >= r.pos.Offset {
			break
		}
		more, err := r.nextPage()
		if err != nil {
			// The history moved past the replay (trimmed or expired while
			// it ran, or the stream was lost), or the broker failed: what
			// was replayed stands, and a resync goes on from there, telling
			// the client recovered:false if the rest is gone.
			sub.c.s.log.Debug("replay interrupted: resynchronising", "conn", sub.c.id, "channel", sub.channel, "at", r.last, "err", err)
			go sub.resync()
			return
		}
		if !more {
			break
		}
	}
	r.finish()
}

// nextPage reads the history after the last replayed message; false when
// there is nothing more to read.
func (r *replay) nextPage() (bool, error) {
	sub := r.sub
	ctx, cancel := context.WithTimeout(context.Background(), replayReadTimeout)
	defer cancel()
	since := protocol.Position{Epoch: r.pos.Epoch, Offset: r.last}
	q := broker.HistoryQuery{Since: &since, Limit: sub.c.replayPageSize(), Options: brokerOptions(sub.opts)}
	page, _, err := sub.c.connApp().broker.History(ctx, sub.channel, q)
	if err != nil {
		return false, err
	}
	r.page = page
	return len(page) > 0, nil
}

// replayPageSize is how many messages one history read of a replay asks
// for: the queue budget's worth of messages of max_message_bytes, so a
// page read from Redis holds about as much memory as the queue may.
func (c *conn) replayPageSize() int {
	return min(max(c.replayBudget()/(c.s.cfg.MaxMessageBytes+256), minReplayPage), maxReplayPage)
}

// finish merges what arrived during the replay, as fast as the queue takes
// it, and switches the subscription to live delivery.
func (r *replay) finish() {
	sub := r.sub
	r.merging = true
	for {
		sub.mu.Lock()
		if sub.ended() {
			sub.mu.Unlock()
			return
		}
		if sub.epoch == r.pos.Epoch && sub.last < r.pos.Offset {
			sub.last = r.pos.Offset // not replayed because not asked for
		}
		n, need, hole := 0, 0, false
		for _, p := range sub.pending {
			size := p.size()
			if !sub.c.roomFor(size) {
				need = size
				break
			}
			if p.m != nil && p.m.Epoch != r.pos.Epoch {
				// Of a stream the history no longer shows (the one before a
				// loss): dropped. Were it of a newer one, the next message
				// of that stream reveals the hole and resynchronises.
			} else if p.m == nil {
				// a presence window: joins the subscribed reply listed are
				// left out, as in live delivery
				if frame := sub.filterKnownLocked(p.frame, p.events); frame != nil {
					_ = sub.c.out.Enqueue(frame)
				}
			} else if err := sub.deliverLocked(p.m, p.frame); errors.Is(err, errHole) {
				hole = true // more was missed after pos: p waits for the resync
				break
			} else if err != nil {
				sub.mu.Unlock()
				return
			}
			sub.pendingBytes -= size
			n++
		}
		clear(sub.pending[:n])
		sub.pending = sub.pending[n:]
		if hole || (len(sub.pending) == 0 && sub.stale) {
			// Still catching up: read from history what came after last.
			sub.stale = false
			sub.mu.Unlock()
			go sub.resync()
			return
		}
		if len(sub.pending) == 0 {
			sub.pending, sub.pendingBytes = nil, 0
			sub.catchingUp = false
			sub.mu.Unlock()
			return
		}
		sub.mu.Unlock()
		if !r.wait(need) {
			return
		}
	}
}

// wait returns once the queue has room for n bytes, true; false when the
// subscription ended meanwhile or the replay moved to its own goroutine,
// which continues it. The outbox has no drain notification (its write path
// is kept free of callbacks), so a waiting replay looks at the queue again
// after a pause that doubles up to maxRoomWait: a replay waits only while
// the socket is slower than the server, and never on a healthy connection.
func (r *replay) wait(n int) bool {
	if !r.async {
		r.async = true
		go r.continueLater(n)
		return false
	}
	pause := time.Millisecond
	for !r.sub.c.roomFor(n) {
		r.sub.mu.Lock()
		ended := r.sub.ended()
		r.sub.mu.Unlock()
		if ended {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, maxRoomWait)
	}
	return true
}

// continueLater is the rest of a replay, on its own goroutine.
func (r *replay) continueLater(n int) {
	if !r.wait(n) {
		return
	}
	if r.merging {
		r.finish()
		return
	}
	r.run()
}

// ended reports whether the subscription was left (unsubscribed, or its
// connection closed); sub.mu held.
func (sub *subscription) ended() bool {
	return sub.left || sub.c.ctx.Err() != nil
}

// size is what a pending frame counts against max_queue_bytes.
func (p pendingFrame) size() int {
	if len(p.frame) == 0 && p.m != nil {
		return len(p.m.Data) + 128
	}
	return len(p.frame)
}
