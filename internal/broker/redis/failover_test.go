package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/protocol"
)

// publisher publishes 1, 2, 3, ... to one channel, one at a time, and
// keeps what was acknowledged and what was refused.
type publisher struct {
	b       *Broker
	channel string
	opts    broker.ChannelOptions

	mu      sync.Mutex
	acked   map[int]protocol.Position
	refused int
	unknown int // refused with ErrOutcomeUnknown
	lastErr error
	epochs  []string
	stop    chan struct{}
	done    chan struct{}
}

func startPublisher(b *Broker, channel string) *publisher {
	p := &publisher{b: b, channel: channel, opts: broker.ChannelOptions{HistorySize: 100000},
		acked: map[int]protocol.Position{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 1; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			pos, err := b.Publish(ctx, &protocol.Message{Channel: channel, Event: "e", Data: json.RawMessage(fmt.Sprint(i))}, p.opts)
			cancel()
			p.mu.Lock()
			switch {
			case err == nil:
				p.acked[i] = pos
				if n := len(p.epochs); n == 0 || p.epochs[n-1] != pos.Epoch {
					p.epochs = append(p.epochs, pos.Epoch)
				}
			case errors.Is(err, broker.ErrUnavailable):
				p.refused++
				p.lastErr = err
				if errors.Is(err, broker.ErrOutcomeUnknown) {
					p.unknown++
				}
			default:
				p.mu.Unlock()
				panic(fmt.Sprintf("publish refused with an error that is not ErrUnavailable: %v", err))
			}
			p.mu.Unlock()
			// Pace the load (the machine is shared): about 500 publishes/s,
			// and a client's backoff after a refusal.
			if err != nil {
				time.Sleep(10 * time.Millisecond)
			} else {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	return p
}

func (p *publisher) count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.acked) }

func (p *publisher) finish() {
	close(p.stop)
	<-p.done
}

// check compares what was acknowledged with the channel's history after
// the failover and with what sub's recorder received. It returns how many
// acknowledged messages the promoted replica does not have.
func (p *publisher) check(t *testing.T, rec *recorder) (lost int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	kept, pos, err := p.b.History(context.Background(), p.channel, broker.HistoryQuery{Options: p.opts})
	if err != nil {
		t.Fatal(err)
	}
	inHistory := map[int]bool{}
	for k, m := range kept {
		var i int
		if err := json.Unmarshal(m.Data, &i); err != nil {
			t.Fatal(err)
		}
		if inHistory[i] {
			t.Fatalf("%s: message %d twice in history", p.channel, i)
		}
		inHistory[i] = true
		if k > 0 && m.Offset != kept[k-1].Offset+1 {
			t.Fatalf("%s: history offsets %d then %d", p.channel, kept[k-1].Offset, m.Offset)
		}
		if a, ok := p.acked[i]; ok && a.Epoch == pos.Epoch && a.Offset != m.Offset {
			t.Fatalf("%s: message %d acknowledged at offset %d, in history at %d", p.channel, i, a.Offset, m.Offset)
		}
	}
	for i, a := range p.acked {
		if !inHistory[i] {
			lost++
			if a.Epoch == pos.Epoch {
				t.Fatalf("%s: message %d acknowledged in the current epoch at %d is not in history", p.channel, i, a.Offset)
			}
		}
	}
	// The subscriber never got two different messages under one position.
	seen := map[protocol.Position]string{}
	for _, m := range rec.messages(p.channel) {
		at := protocol.Position{Epoch: m.Epoch, Offset: m.Offset}
		if d, ok := seen[at]; ok && d != string(m.Data) {
			t.Fatalf("%s: two messages at %v: %s and %s (an offset handed out twice in one epoch)", p.channel, at, d, m.Data)
		}
		seen[at] = string(m.Data)
	}
	t.Logf("%s: %d acknowledged (epochs %v), %d refused (%d outcome unknown; last: %v), %d acknowledged but not on the new master",
		p.channel, len(p.acked), p.epochs, p.refused, p.unknown, p.lastErr, lost)
	return lost
}

// channelOn finds a channel whose slot the master m serves.
func channelOn(t *testing.T, rc *redistest.Cluster, b *Broker, m redistest.Master, base string) string {
	t.Helper()
	for i := range 1000 {
		ch := fmt.Sprintf("%s-%d", base, i)
		if m.Owns(rc.Slot(b.metaKey(ch))) {
			return ch
		}
	}
	t.Fatalf("no channel on %s", m.Addr)
	return ""
}

// TestRedisClusterFailover: a master is killed (SIGKILL) while two
// publishers write to channels it serves, one acknowledging after the
// replica has the message (WaitReplicas 1), one not. Its replica takes
// over; publishes resume through the promoted replica (the client follows
// the new slot map). Every publish is acknowledged or refused with an
// error; with WAIT every acknowledged message is on the new master; without
// it some may be lost (asynchronous replication), and then the channel has
// a new epoch, so no offset is handed out twice silently.
func TestRedisClusterFailover(t *testing.T) {
	rc := redistest.StartCluster(t, 3, 1)
	mk := func(id string, wait int) *Broker {
		b, err := New(Options{Addrs: rc.Seeds()[:1], Cluster: true, Prefix: "fo", NodeID: id, WaitReplicas: wait, WaitTimeout: 2 * time.Second, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		waitReady(t, b)
		return b
	}
	waiting, plain, sub := mk("waiting", 1), mk("plain", 0), mk("sub", 0)
	masters, err := rc.Topology()
	if err != nil {
		t.Fatal(err)
	}
	victim := masters[0]
	chWait := channelOn(t, rc, sub, victim, "feed:wait")
	chPlain := channelOn(t, rc, sub, victim, "feed:plain")
	rec := newRecorder(t)
	ctx := context.Background()
	if err := sub.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{chWait, chPlain} {
		if err := sub.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	pw, pp := startPublisher(waiting, chWait), startPublisher(plain, chPlain)
	waitFor(t, "publishing", func() bool { return pw.count() >= 50 && pp.count() >= 200 })
	before := sub.Connects()
	victim.Server.Stop()
	promoted := rc.AwaitFailover(victim)
	t.Logf("killed %s; %s took over", victim.Addr, promoted.Addr)
	w0, p0 := pw.count(), pp.count()
	waitFor(t, "publishes through the promoted replica", func() bool { return pp.count() >= p0+50 })
	// WAIT 1 cannot be satisfied while the promoted master has no replica:
	// those publishes are refused (outcome unknown). The killed node comes
	// back as its replica, and they are acknowledged again.
	victim.Server.Restart()
	rc.AwaitReplicas(promoted.Addr, 1)
	waitFor(t, "publishes with WAIT acknowledged again", func() bool { return pw.count() >= w0+50 })
	waitFor(t, "subscriber resubscribed at the promoted replica", func() bool { return sub.Ready() && sub.Connects() > before })
	// The subscription follows: a message published now is delivered.
	n := len(rec.messages(chPlain))
	pw.finish()
	pp.finish()
	if _, err := plain.Publish(ctx, &protocol.Message{Channel: chPlain, Event: "e", Data: json.RawMessage("0")}, pp.opts); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery after the failover", func() bool { return len(rec.messages(chPlain)) > n })

	if lost := pw.check(t, rec); lost != 0 {
		t.Fatalf("with WaitReplicas 1, %d acknowledged messages were lost in the failover", lost)
	}
	if lost := pp.check(t, rec); lost > 0 && len(pp.epochs) < 2 {
		t.Fatalf("%d acknowledged messages lost, and the epoch did not change: offsets reused silently", lost)
	}
	pp.mu.Lock()
	epochs := len(pp.epochs)
	pp.mu.Unlock()
	if epochs != 2 {
		t.Fatalf("epochs %d: a takeover must start exactly one new epoch", epochs)
	}
}
