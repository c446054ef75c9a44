package redis

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// sharded keeps a node's pub/sub subscriptions in a Redis Cluster.
//
// Each channel with local subscribers has one SSUBSCRIBE, which rueidis
// sends to the master owning the channel's slot, so a message (SPUBLISHed
// by the publish script on that master) travels only to that master's
// subscribers, never to every node of the cluster as PUBLISH would. Each
// subscription is kept by a goroutine of its own (rueidis' Receive blocks
// for as long as the subscription lasts; its messages arrive in order).
// When the subscription ends without being asked to (Redis sends
// SUNSUBSCRIBE when the slot moves to another master or its master turns
// replica after a failover) or its connection breaks, the goroutine
// subscribes again, rueidis routing it to the slot's new owner, with
// backoff while that fails. Every subscription confirmed again counts as a
// reconnect (Broker.Connects): messages published in between were missed,
// so the server resynchronises its subscriptions from history.
//
// Cluster notices use plain SUBSCRIBE and PUBLISH on the control channel
// (any node; Redis Cluster forwards them to all nodes): they are rare.
type sharded struct {
	b *Broker
	s *shard

	mu   sync.Mutex
	subs map[string]*chanSub // by pub/sub channel name
	down int                 // subscriptions that were confirmed and are now lost
	ctl  *chanSub
	ctx  context.Context
	// slots is the last slot map read (watchTopology); subscriptions go
	// to the master it names.
	slots []slotRange
}

// chanSub is one kept subscription. Its fields under sharded.mu: up,
// confirmed.
type chanSub struct {
	name    string
	control bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when the goroutine ends

	first     chan struct{} // closed at the first confirmation or failure
	firstErr  error
	firstOnce sync.Once

	up        bool
	confirmed bool
	stopping  bool
	attempt   context.CancelFunc // ends the current Receive (watchTopology)
	addr      string             // where the current (or last) Receive subscribed; "" if the client chose
	// wake ends the wait between two attempts early (watchTopology: the
	// slot map names another master than the one last tried).
	wake chan struct{}
}

func (z *sharded) start(ctx context.Context) {
	z.ctx = ctx
	if err := z.s.connect(); err != nil {
		z.b.log.Warn("redis cluster not reachable yet; retrying in the background", "shard", z.s.name, "err", err)
	}
	z.mu.Lock()
	z.ctl = z.newSub(z.b.ctlChannel, true)
	z.mu.Unlock()
	z.b.wg.Add(2)
	go func() { defer z.b.wg.Done(); z.keep(z.ctl) }()
	go func() { defer z.b.wg.Done(); z.watchTopology(ctx) }()
}

// newSub makes a subscription record; z.mu held.
func (z *sharded) newSub(name string, control bool) *chanSub {
	cs := &chanSub{name: name, control: control, done: make(chan struct{}), first: make(chan struct{}), wake: make(chan struct{}, 1)}
	cs.ctx, cs.cancel = context.WithCancel(z.ctx)
	return cs
}

// ready reports whether the control subscription and every channel
// subscription that was confirmed are live.
func (z *sharded) ready() bool {
	if _, err := z.s.client(); err != nil {
		return false
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.ctl != nil && z.ctl.up && z.down == 0
}

// subscribe starts keeping name subscribed and returns once Redis confirmed
// it (everything published afterwards is delivered), or with an error
// wrapping broker.ErrUnavailable when the first attempt failed.
func (z *sharded) subscribe(ctx context.Context, name string) error {
	z.mu.Lock()
	cs := z.subs[name]
	if cs == nil {
		if z.ctx == nil || z.ctx.Err() != nil {
			z.mu.Unlock()
			return unavailable("subscribe", errNotConnected)
		}
		cs = z.newSub(name, false)
		z.subs[name] = cs
		z.b.wg.Add(1)
		go func() { defer z.b.wg.Done(); z.keep(cs) }()
	}
	z.mu.Unlock()
	select {
	case <-cs.first:
		return cs.firstErr
	case <-ctx.Done():
		// The caller takes the channel as not subscribed: do not keep it.
		// (Not in b.wg: Close may be waiting already; a closed client
		// answers at once.)
		go func() {
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = z.unsubscribe(uctx, name)
		}()
		return ctx.Err()
	}
}

// unsubscribe stops keeping name subscribed and waits for its goroutine.
func (z *sharded) unsubscribe(ctx context.Context, name string) error {
	z.mu.Lock()
	cs := z.subs[name]
	if cs == nil {
		z.mu.Unlock()
		return nil
	}
	delete(z.subs, name)
	cs.stopping = true
	if cs.confirmed && !cs.up {
		z.down--
	}
	z.mu.Unlock()
	// SUNSUBSCRIBE ends Receive cleanly, the server forgetting the channel;
	// cancelling alone would leave it subscribed on the shared connection.
	if c, err := z.s.client(); err == nil {
		z.mu.Lock()
		addr := cs.addr
		z.mu.Unlock()
		if nc, ok := c.Nodes()[addr]; ok && addr != "" {
			c = nc
		}
		uctx, cancel := context.WithTimeout(ctx, time.Second)
		_ = c.Do(uctx, c.B().Sunsubscribe().Channel(name).Build()).Error()
		select {
		case <-cs.done:
		case <-uctx.Done():
		}
		cancel()
	}
	cs.cancel()
	select {
	case <-cs.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keep holds one subscription until it is stopped or the broker closes.
func (z *sharded) keep(cs *chanSub) {
	defer close(cs.done)
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		err := z.s.connect()
		var c rueidis.Client
		if err == nil {
			c, err = z.s.client()
		}
		if err == nil {
			// Subscribe at the slot's master, as the last slot map read
			// says (read again after a loss: the cluster changed);
			// without one, where the client's own map routes it.
			rc, addr := c, ""
			if !cs.control {
				if m := masterOf(z.topology(cs.ctx, c, attempt > 1), keySlot(cs.name)); m != "" {
					if nc, ok := c.Nodes()[m]; ok {
						rc, addr = nc, m
					}
				}
			}
			actx, cancel := context.WithCancel(cs.ctx)
			z.mu.Lock()
			cs.attempt, cs.addr = cancel, addr
			z.mu.Unlock()
			hctx := rueidis.WithOnSubscriptionHook(actx, func(p rueidis.PubSubSubscription) {
				if p.Kind == "ssubscribe" || p.Kind == "subscribe" {
					z.confirmed(cs)
				}
			})
			cmd := c.B().Ssubscribe().Channel(cs.name).Build()
			if cs.control {
				cmd = c.B().Subscribe().Channel(cs.name).Build()
			}
			err = rc.Receive(hctx, cmd, z.s.onMessage)
			z.mu.Lock()
			cs.attempt = nil
			z.mu.Unlock()
			if actx.Err() != nil && cs.ctx.Err() == nil {
				// Ended by watchTopology: leave the old place too (a
				// subscription left there would only cost memory).
				uctx, ucancel := context.WithTimeout(cs.ctx, time.Second)
				_ = rc.Do(uctx, rc.B().Sunsubscribe().Channel(cs.name).Build()).Error()
				ucancel()
			}
			cancel()
		}
		wasUp := z.lost(cs)
		z.b.log.Debug("redis cluster subscription ended", "channel", cs.name, "err", err, "was_up", wasUp, "attempt", attempt)
		if cs.ctx.Err() != nil || z.stopping(cs) {
			cs.firstOnce.Do(func() { cs.firstErr = unavailable("subscribe", errNotConnected); close(cs.first) })
			return
		}
		if !cs.control && !z.wasConfirmed(cs) && attempt >= firstAttempts {
			// The caller learns that the channel is not subscribed.
			z.mu.Lock()
			if z.subs[cs.name] == cs {
				delete(z.subs, cs.name)
			}
			z.mu.Unlock()
			if err == nil {
				err = errors.New("subscription ended")
			}
			cs.firstOnce.Do(func() { cs.firstErr = unavailable("subscribe", err); close(cs.first) })
			return
		}
		if wasUp {
			backoff = minBackoff
			if err == nil {
				// Redis ended it: the slot moved or its master stepped down.
				z.b.log.Info("redis cluster ended a subscription; subscribing again", "channel", cs.name)
				continue
			}
			z.b.log.Warn("redis cluster subscription lost; subscribing again", "channel", cs.name, "err", err)
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-cs.ctx.Done():
			t.Stop()
		case <-cs.wake:
			t.Stop()
			z.b.log.Debug("redis cluster slot map names a new master; subscribing there now", "channel", cs.name)
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// firstAttempts bounds the tries of a new subscription before Subscribe
// fails: a MOVED reply (the client's slot map was stale: it refreshes it)
// or a connection being replaced deserve another try at once.
const firstAttempts = 3

// confirmed is called by rueidis' reader when Redis confirmed cs. It must
// not block.
func (z *sharded) confirmed(cs *chanSub) {
	z.mu.Lock()
	if cs.up || cs.stopping {
		z.mu.Unlock()
		return
	}
	again, addr := cs.confirmed, cs.addr
	cs.up, cs.confirmed = true, true
	if again {
		z.down--
	}
	z.mu.Unlock()
	cs.firstOnce.Do(func() { close(cs.first) })
	z.b.log.Debug("redis cluster subscription confirmed", "channel", cs.name, "again", again, "at", addr)
	if cs.control || again {
		// Deliveries may have been missed (and notices, and members if a
		// master lost its data): resync, reload, re-add.
		z.b.connects.Add(1)
		z.b.presence.kick()
	}
	if cs.control {
		z.b.notes.receive(strconv.Itoa(len(TopicReconnected)) + ":" + TopicReconnected)
	}
}

// lost marks cs down and reports whether it was up.
func (z *sharded) lost(cs *chanSub) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	if !cs.up {
		return false
	}
	cs.up = false
	if !cs.stopping {
		z.down++
	}
	return true
}

func (z *sharded) stopping(cs *chanSub) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return cs.stopping
}

func (z *sharded) wasConfirmed(cs *chanSub) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return cs.confirmed
}
