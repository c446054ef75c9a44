package redis

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// shard is one Redis server: a pipelined client for commands and one
// dedicated connection for pub/sub, kept subscribed to wanted.
//
// The pub/sub connection is owned by the shard's run goroutine: it alone
// sends SUBSCRIBE and UNSUBSCRIBE, in the order Subscribe and Unsubscribe
// queued them, joining queued requests of a kind into one command. rueidis
// calls onMessage from the connection's single reader goroutine, so the
// messages of one channel reach the handler one at a time, in the order
// Redis published them.
type shard struct {
	b    *Broker
	idx  int
	name string
	opt  rueidis.ClientOption

	cl    atomic.Pointer[clientRef]
	ready atomic.Bool
	kick  chan struct{}

	mu      sync.Mutex
	connMu  sync.Mutex          // serialises connect
	wanted  map[string]struct{} // pub/sub channels this node needs
	live    bool                // a pub/sub connection takes requests
	pending []*subOp
}

type clientRef struct{ c rueidis.Client }

type subOp struct {
	channel string
	sub     bool
	done    chan error
}

var errNotConnected = errors.New("not connected")

const (
	minBackoff     = 50 * time.Millisecond
	maxBackoff     = 5 * time.Second
	subscribeChunk = 512
)

// client returns the shard's command client, nil with an error until the
// first connection succeeded (the client reconnects by itself afterwards).
func (s *shard) client() (rueidis.Client, error) {
	if r := s.cl.Load(); r != nil {
		return r.c, nil
	}
	return nil, errNotConnected
}

// connect makes the command client if there is none yet.
func (s *shard) connect() error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.cl.Load() != nil {
		return nil
	}
	c, err := rueidis.NewClient(s.opt)
	if err != nil {
		return err
	}
	if s.b.closed.Load() {
		c.Close()
		return errNotConnected
	}
	s.cl.Store(&clientRef{c})
	return nil
}

// run keeps a pub/sub connection until ctx ends, reconnecting with
// exponential backoff and jitter.
func (s *shard) run(ctx context.Context) {
	backoff := minBackoff
	for {
		wasReady, err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if wasReady {
			backoff = minBackoff
			s.b.log.Warn("redis pub/sub connection lost; reconnecting", "shard", s.name, "err", err)
		} else {
			s.b.log.Debug("redis connect failed", "shard", s.name, "err", err, "retry_in", backoff)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// session connects, subscribes everything wanted, then serves queued
// requests until the connection fails or ctx ends.
func (s *shard) session(ctx context.Context) (wasReady bool, err error) {
	if err := s.connect(); err != nil {
		return false, err
	}
	c, _ := s.client()
	conn, _ := c.Dedicate()
	errc := conn.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: s.onMessage})
	defer func() {
		s.teardown(err)
		conn.Close()
		// The hooks are not called after errc closes: wait for it so that
		// the next connection's reader never overlaps this one's.
		select {
		case <-errc:
		case <-time.After(time.Second):
		}
	}()
	if err := conn.Do(ctx, conn.B().Ping().Build()).Error(); err != nil {
		return false, err
	}
	s.mu.Lock()
	chans := make([]string, 0, len(s.wanted))
	for ch := range s.wanted {
		chans = append(chans, ch)
	}
	s.live = true
	s.mu.Unlock()
	for len(chans) > 0 {
		n := min(len(chans), subscribeChunk)
		if err := conn.Do(ctx, conn.B().Subscribe().Channel(chans[:n]...).Build()).Error(); err != nil {
			return false, err
		}
		chans = chans[n:]
	}
	s.ready.Store(true)
	s.b.connects.Add(1)
	s.b.notes.receive(strconv.Itoa(len(TopicReconnected)) + ":" + TopicReconnected)
	s.b.log.Info("redis shard ready", "shard", s.name)
	s.b.presence.kick() // members may be gone with a restarted Redis
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err, ok := <-errc:
			if !ok || err == nil {
				err = errors.New("pub/sub connection closed")
			}
			return true, err
		case <-s.kick:
			if err := s.flush(ctx, conn); err != nil {
				return true, err
			}
		}
	}
}

// flush sends the queued requests, joining neighbours of one kind.
func (s *shard) flush(ctx context.Context, conn rueidis.DedicatedClient) error {
	s.mu.Lock()
	ops := s.pending
	s.pending = nil
	s.mu.Unlock()
	for i := 0; i < len(ops); {
		j := i + 1
		for j < len(ops) && ops[j].sub == ops[i].sub {
			j++
		}
		chans := make([]string, 0, j-i)
		seen := make(map[string]bool, j-i)
		for _, op := range ops[i:j] {
			if !seen[op.channel] {
				seen[op.channel] = true
				chans = append(chans, op.channel)
			}
		}
		var cmd rueidis.Completed
		if ops[i].sub {
			cmd = conn.B().Subscribe().Channel(chans...).Build()
		} else {
			cmd = conn.B().Unsubscribe().Channel(chans...).Build()
		}
		if err := conn.Do(ctx, cmd).Error(); err != nil {
			s.fail(ops[i:], err)
			return err
		}
		for _, op := range ops[i:j] {
			op.done <- nil
		}
		i = j
	}
	return nil
}

// teardown marks the shard down and fails the queued requests.
func (s *shard) teardown(err error) {
	s.ready.Store(false)
	s.mu.Lock()
	s.live = false
	ops := s.pending
	s.pending = nil
	s.mu.Unlock()
	if err == nil {
		err = errNotConnected
	}
	s.fail(ops, err)
}

// fail answers ops with err. A failed subscribe is forgotten: its caller
// learns that the channel is not subscribed. An unsubscribe cannot fail: the
// channel is no longer wanted, and a new connection will not subscribe it.
func (s *shard) fail(ops []*subOp, err error) {
	s.mu.Lock()
	for _, op := range ops {
		if op.sub {
			delete(s.wanted, op.channel)
		}
	}
	s.mu.Unlock()
	for _, op := range ops {
		if op.sub {
			op.done <- unavailable("subscribe", err)
		} else {
			op.done <- nil
		}
	}
}

// request queues a (un)subscribe for the run goroutine and waits for it.
func (s *shard) request(ctx context.Context, channel string, sub bool) error {
	s.mu.Lock()
	if sub {
		if !s.live {
			s.mu.Unlock()
			return unavailable("subscribe", errNotConnected)
		}
		s.wanted[channel] = struct{}{}
	} else {
		delete(s.wanted, channel)
		if !s.live {
			s.mu.Unlock()
			return nil
		}
	}
	op := &subOp{channel: channel, sub: sub, done: make(chan error, 1)}
	s.pending = append(s.pending, op)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe makes this node receive channel. It returns once Redis has
// confirmed the subscription, so that everything published afterwards is
// delivered; while the shard is down it fails with broker.ErrUnavailable.
func (b *Broker) Subscribe(ctx context.Context, channel string) error {
	if b.cluster != nil {
		return b.cluster.subscribe(ctx, b.pubsubName(channel))
	}
	return b.shardFor(channel).request(ctx, b.chanPrefix+channel, true)
}

// Unsubscribe stops receiving channel. Messages already on the way may still
// be delivered.
func (b *Broker) Unsubscribe(ctx context.Context, channel string) error {
	if b.cluster != nil {
		return b.cluster.unsubscribe(ctx, b.pubsubName(channel))
	}
	return b.shardFor(channel).request(ctx, b.chanPrefix+channel, false)
}

// onMessage decodes one pub/sub message, once, and hands it on.
func (s *shard) onMessage(m rueidis.PubSubMessage) {
	b := s.b
	if m.Channel == b.ctlChannel {
		b.notes.receive(m.Message)
		return
	}
	channel, ok := strings.CutPrefix(m.Channel, b.chanPrefix)
	if ok && b.chanSuffix != "" {
		channel, ok = strings.CutSuffix(channel, b.chanSuffix)
	}
	if !ok || m.Message == "" {
		return
	}
	h := b.handlerOf()
	if h == nil {
		return
	}
	switch m.Message[0] {
	case kindMessage:
		msg, err := decodePubSub(channel, m.Message)
		if err != nil {
			b.log.Error("bad message from redis", "channel", channel, "err", err)
			return
		}
		h.HandleMessage(msg)
	case kindPresence:
		ev, err := decodePresence(m.Message[1:])
		if err != nil {
			b.log.Error("bad presence event from redis", "channel", channel, "err", err)
			return
		}
		ev.Channel = channel
		h.HandlePresence(ev)
	}
}

// Kinds of payload on a channel's pub/sub channel: the first byte.
const (
	kindMessage  = 'M'
	kindPresence = 'P'
)
