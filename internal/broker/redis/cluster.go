package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/eddyrt/eddy/api"
	"github.com/redis/rueidis"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// NodeInfo is what a node announces about itself.
type NodeInfo = api.NodeInfo

// Announce records info in the node registry (on the first shard) for
// Options.NodeTTL. Call it every few seconds; an empty ID is this node's.
func (b *Broker) Announce(ctx context.Context, info NodeInfo) error {
	if info.ID == "" {
		info.ID = b.opts.NodeID
	}
	js, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("redis broker: encode node info: %w", err)
	}
	c, err := b.shards[0].client()
	if err != nil {
		return unavailable("announce", err)
	}
	_, err = retryConn(ctx, func() (struct{}, error) {
		return struct{}{}, addScript.Exec(ctx, c, []string{b.nodesKey, b.nodesExp},
			[]string{ms(b.opts.NodeTTL), info.ID, string(js)}).Error()
	})
	if err != nil {
		return unavailable("announce", err)
	}
	return nil
}

// Nodes lists the nodes whose last announcement has not expired, by ID.
func (b *Broker) Nodes(ctx context.Context) ([]NodeInfo, error) {
	c, err := b.shards[0].client()
	if err != nil {
		return nil, unavailable("nodes", err)
	}
	kv, err := b.liveEntries(ctx, c, b.nodesKey, b.nodesExp)
	if err != nil {
		return nil, unavailable("nodes", err)
	}
	out := make([]NodeInfo, 0, len(kv)/2)
	for i := 1; i < len(kv); i += 2 {
		var n NodeInfo
		if err := json.Unmarshal([]byte(kv[i]), &n); err != nil {
			return nil, fmt.Errorf("redis broker: node %q: %w", kv[i-1], err)
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Notify sends a cluster notification to every node, this one included,
// through the control pub/sub channel on the first shard. Like all pub/sub
// it is at most once: a node disconnected from Redis at that moment misses
// it, so a receiver should also reload when Ready turns true again.
func (b *Broker) Notify(ctx context.Context, topic string, payload []byte) error {
	c, err := b.shards[0].client()
	if err != nil {
		return unavailable("notify", err)
	}
	msg := make([]byte, 0, 8+len(topic)+len(payload))
	msg = strconv.AppendInt(msg, int64(len(topic)), 10)
	msg = append(msg, ':')
	msg = append(msg, topic...)
	msg = append(msg, payload...)
	cmd := c.B().Publish().Channel(b.ctlChannel).Message(string(msg)).Build()
	if err := c.Do(ctx, cmd).Error(); err != nil {
		return unavailable("notify", err)
	}
	return nil
}

// TopicReconnected is delivered to the OnNotify function of this node only,
// each time one of its shards' pub/sub connections becomes ready (the first
// time included). Notifications sent while the node was cut off were missed
// and Redis may have restarted without its data, so whoever keeps state from
// Redis (functions, associations) reloads it on this topic.
const TopicReconnected = "$reconnected"

// OnNotify sets the function that receives notifications, replacing any
// earlier one. It is called from one goroutine of its own, in arrival
// order, so a slow reload does not hold up message delivery.
func (b *Broker) OnNotify(fn func(topic string, payload []byte)) {
	b.notes.fn.Store(&fn)
}

// notifier queues notifications for the OnNotify function.
type notifier struct {
	fn   atomic.Pointer[func(string, []byte)]
	mu   sync.Mutex
	q    []string
	wake chan struct{}
}

func (n *notifier) init() { n.wake = make(chan struct{}, 1) }

// receive is called by the pub/sub reader and must not block.
func (n *notifier) receive(msg string) {
	n.mu.Lock()
	n.q = append(n.q, msg)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		n.mu.Lock()
		q := n.q
		n.q = nil
		n.mu.Unlock()
		fn := n.fn.Load()
		for _, msg := range q {
			lenStr, rest, ok := strings.Cut(msg, ":")
			l, err := strconv.Atoi(lenStr)
			if !ok || err != nil || l < 0 || l > len(rest) {
				continue
			}
			if fn != nil {
				(*fn)(rest[:l], []byte(rest[l:]))
			}
		}
	}
}

// ControlClient returns the client of the first shard, where cluster-wide
// state (node registry, functions) lives, and the key prefix to use there.
func (b *Broker) ControlClient() (rueidis.Client, string, error) {
	c, err := b.shards[0].client()
	if err != nil {
		return nil, "", unavailable("control", err)
	}
	return c, b.opts.Prefix, nil
}
