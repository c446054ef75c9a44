package redis

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// metaTTL is how long a channel's meta hash lives after a publish: at least
// as long as its history.
func (b *Broker) metaTTL(opts broker.ChannelOptions) time.Duration {
	if b.opts.MetaTTL < 0 {
		return 0
	}
	return max(b.opts.MetaTTL, opts.HistoryTTL)
}

// Publish runs one script on the channel's shard that numbers m, appends it
// to the history stream (trimmed to HistorySize, expiring after HistoryTTL
// without publishes) and publishes it to every subscribed node, this one
// included. It costs one round trip, pipelined with concurrent callers.
// It sets m.Offset and m.Epoch, and m.TS to now when it is zero (HistoryTTL
// is judged by TS).
//
// A nil error means Redis executed the script. An error wraps
// broker.ErrUnavailable; when it is a timeout or a lost connection after
// sending, the script may still have run, and the error also wraps
// broker.ErrOutcomeUnknown.
func (b *Broker) Publish(ctx context.Context, m *protocol.Message, opts broker.ChannelOptions) (protocol.Position, error) {
	s := b.shardFor(m.Channel)
	c, err := s.client()
	if err != nil {
		return protocol.Position{}, unavailable("publish", err)
	}
	if m.TS == 0 {
		m.TS = time.Now().UnixMilli()
	}
	bp := bodyPool.Get().(*[]byte)
	body := appendBody((*bp)[:0], m)
	args := []string{
		b.pubsubName(m.Channel),
		string(body),
		strconv.Itoa(max(opts.HistorySize, 0)),
		ms(opts.HistoryTTL),
		ms(b.metaTTL(opts)),
		newEpoch(),
		b.takeover,
		b.pubCmd,
	}
	*bp = body
	bodyPool.Put(bp)
	keys := []string{b.metaKey(m.Channel), b.historyKey(m.Channel)}
	var res []rueidis.RedisMessage
	var replicas int64 = -1
	if b.opts.WaitReplicas > 0 {
		res, replicas, err = b.publishWait(ctx, c, keys, args)
	} else {
		res, err = publishScript.Exec(ctx, c, keys, args).ToArray()
	}
	if err != nil {
		return protocol.Position{}, publishFailed(err)
	}
	// The script ran; a reply we cannot read leaves the outcome unknown.
	if len(res) != 2 {
		return protocol.Position{}, publishFailed(fmt.Errorf("unexpected reply of %d values", len(res)))
	}
	off, err := res[0].AsInt64()
	if err != nil {
		return protocol.Position{}, publishFailed(fmt.Errorf("reply offset: %v", err))
	}
	epoch, err := res[1].ToString()
	if err != nil {
		return protocol.Position{}, publishFailed(fmt.Errorf("reply epoch: %v", err))
	}
	m.Offset, m.Epoch = uint64(off), epoch
	if replicas >= 0 && replicas < int64(b.opts.WaitReplicas) {
		// Stored and delivered, but a failover now could lose it: not an ack.
		return protocol.Position{}, fmt.Errorf("redis broker: publish: %w: %w: offset %d reached %d of %d replicas within %s",
			broker.ErrOutcomeUnknown, broker.ErrUnavailable, off, replicas, b.opts.WaitReplicas, b.opts.WaitTimeout)
	}
	return protocol.Position{Epoch: epoch, Offset: uint64(off)}, nil
}

// History implements broker.Broker with one script call: the position and
// the kept messages are read in the same atomic step. A channel nobody has
// published to gets its epoch here, so that the position given to its first
// subscribers stays valid when the first message arrives.
func (b *Broker) History(ctx context.Context, channel string, q broker.HistoryQuery) ([]*protocol.Message, protocol.Position, error) {
	s := b.shardFor(channel)
	c, err := s.client()
	if err != nil {
		return nil, protocol.Position{}, unavailable("history", err)
	}
	sinceEpoch, sinceNext := "", ""
	if q.Since != nil {
		sinceEpoch = q.Since.Epoch
		sinceNext = strconv.FormatUint(q.Since.Offset+1, 10)
	}
	args := []string{newEpoch(), ms(b.metaTTL(q.Options)), sinceEpoch, sinceNext, strconv.Itoa(q.Limit), b.takeover}
	keys := []string{b.metaKey(channel), b.historyKey(channel)}
	res, err := retryConn(ctx, func() ([]string, error) {
		return historyScript.Exec(ctx, c, keys, args).AsStrSlice()
	})
	if err != nil {
		return nil, protocol.Position{}, unavailable("history", err)
	}
	if len(res) < 2 || len(res)%2 != 0 {
		return nil, protocol.Position{}, unavailable("history", fmt.Errorf("unexpected reply of %d values", len(res)))
	}
	top, err := strconv.ParseUint(res[0], 10, 64)
	if err != nil {
		return nil, protocol.Position{}, unavailable("history", err)
	}
	pos := protocol.Position{Epoch: res[1], Offset: top}
	since := q.Since
	if since != nil && (since.Epoch != pos.Epoch || since.Offset > top) {
		return nil, pos, broker.ErrGap
	}
	if q.Limit < 0 {
		return nil, pos, nil // the position only, as the contract says
	}
	kept := make([]*protocol.Message, 0, len(res)/2-1)
	for i := 2; i < len(res); i += 2 {
		off, err := streamOffset(res[i])
		if err != nil {
			return nil, pos, fmt.Errorf("redis broker: history of %q: entry id %q: %w", channel, res[i], err)
		}
		m, err := decodeBody(channel, res[i+1], off, pos.Epoch)
		if err != nil {
			return nil, pos, fmt.Errorf("redis broker: history of %q: entry %d: %w", channel, off, err)
		}
		kept = append(kept, m)
	}
	if since == nil && q.Limit > 0 {
		slices.Reverse(kept) // read newest first
	}
	if ttl := q.Options.HistoryTTL; ttl > 0 {
		cutoff := time.Now().Add(-ttl).UnixMilli()
		i := sort.Search(len(kept), func(i int) bool { return kept[i].TS >= cutoff })
		kept = kept[i:]
	}
	if since != nil && since.Offset < top {
		// The entries start at since+1 unless it is gone.
		if len(kept) == 0 || kept[0].Offset > since.Offset+1 {
			return nil, pos, broker.ErrGap
		}
	}
	return kept, pos, nil
}
