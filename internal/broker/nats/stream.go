package nats

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// head is what a publish needs of a channel's last stored message.
type head struct {
	seq    uint64 // its stream sequence; 0: the channel has none
	offset uint64
	epoch  string
}

// heads remembers the last stored message of recently published channels,
// so that a publish usually costs one round trip; a stale entry only costs
// a refused attempt and a re-read. Publishes of one channel through this
// node take turns (striped locks), so they do not refuse each other.
type heads struct {
	stripes [256]sync.Mutex
	mu      sync.Mutex
	known   map[string]head
}

const maxHeads = 1 << 16 // forgotten all at once past this: only a cache

func (h *heads) init() { h.known = map[string]head{} }

func (h *heads) lock(channel string) func() {
	f := fnv.New32a()
	_, _ = f.Write([]byte(channel))
	m := &h.stripes[f.Sum32()%uint32(len(h.stripes))]
	m.Lock()
	return m.Unlock
}

func (h *heads) get(channel string) (head, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.known[channel]
	return v, ok
}

func (h *heads) set(channel string, v head) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.known) >= maxHeads {
		clear(h.known)
	}
	h.known[channel] = v
}

func (h *heads) forget(channel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.known, channel)
}

// maxAttempts bounds the refused attempts of one publish: each refusal
// means another publisher stored a message meanwhile, so the channel moves on.
const maxAttempts = 100

// purgeEvery is how many publishes a channel's stored messages may exceed
// its history size by before the publisher trims them.
const purgeEvery = 64

func (b *Broker) streamOf() (jetstream.Stream, error) {
	if r := b.stream.Load(); r != nil && b.ensured.Load() {
		return r.s, nil
	}
	return nil, natsgo.ErrConnectionReconnecting
}

// readHead reads a channel's last stored message.
func (b *Broker) readHead(ctx context.Context, s jetstream.Stream, channel string) (head, *jetstream.RawStreamMsg, error) {
	rm, err := s.GetLastMsgForSubject(ctx, b.histSubj+token(channel))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return head{}, nil, nil
	}
	if err != nil {
		return head{}, nil, err
	}
	off, err := strconv.ParseUint(rm.Header.Get(hdrOffset), 10, 64)
	if err != nil {
		return head{}, nil, fmt.Errorf("last message of %q: bad offset header: %w", channel, err)
	}
	return head{seq: rm.Sequence, offset: off, epoch: rm.Header.Get(hdrEpoch)}, rm, nil
}

// wrongLast reports whether a publish was refused because another
// publisher stored a message of the channel first.
func wrongLast(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// store appends one message (or an epoch marker) at the offset after h,
// refused by JetStream unless h is still the channel's last message.
func (b *Broker) store(ctx context.Context, channel string, h head, epoch, kind string, body []byte) (*jetstream.PubAck, error) {
	m := natsgo.NewMsg(b.histSubj + token(channel))
	m.Header.Set(hdrOffset, strconv.FormatUint(h.offset+1, 10))
	if kind == kindEpoch {
		m.Header.Set(hdrOffset, "0")
		m.Header.Set(hdrKind, kindEpoch)
	}
	m.Header.Set(hdrEpoch, epoch)
	m.Data = body
	return b.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(h.seq))
}

// publishFailed classifies an error of a JetStream publish. Failing to
// send, or no stream answering (NoResponders), proves the message was not
// stored; anything else after sending (timeout, connection lost) leaves the
// outcome unknown.
func publishFailed(err error) error {
	var apiErr *jetstream.APIError
	if errors.Is(err, natsgo.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, natsgo.ErrReconnectBufExceeded) || errors.Is(err, natsgo.ErrConnectionReconnecting) ||
		errors.As(err, &apiErr) {
		return unavailable("publish", err)
	}
	return fmt.Errorf("nats broker: publish: %w: %w: %w", broker.ErrOutcomeUnknown, broker.ErrUnavailable, err)
}

// Publish stores m in the stream at the channel's next offset; the stream
// republishes it to every subscribed node, this one included. It sets
// m.Offset and m.Epoch, and m.TS to now when it is zero (HistoryTTL is
// judged by TS). It usually costs one round trip (two when this node did
// not publish to the channel lately, more when publishers on several nodes
// race for the same channel).
func (b *Broker) Publish(ctx context.Context, m *protocol.Message, opts broker.ChannelOptions) (protocol.Position, error) {
	s, err := b.streamOf()
	if err != nil {
		return protocol.Position{}, unavailable("publish", err)
	}
	if m.TS == 0 {
		m.TS = time.Now().UnixMilli()
	}
	body := appendBody(make([]byte, 0, 128+len(m.Data)), m)
	unlock := b.heads.lock(m.Channel)
	defer unlock()
	for range maxAttempts {
		h, ok := b.heads.get(m.Channel)
		if !ok {
			if h, _, err = b.readHead(ctx, s, m.Channel); err != nil {
				return protocol.Position{}, unavailable("publish: read the channel's offset", err)
			}
		}
		epoch := h.epoch
		if h.seq == 0 {
			epoch = newEpoch() // kept only if this publish creates the channel
		}
		ack, err := b.store(ctx, m.Channel, h, epoch, "", body)
		if wrongLast(err) {
			b.heads.forget(m.Channel)
			continue
		}
		if err != nil {
			b.heads.forget(m.Channel)
			return protocol.Position{}, publishFailed(err)
		}
		next := head{seq: ack.Sequence, offset: h.offset + 1, epoch: epoch}
		b.heads.set(m.Channel, next)
		b.trim(ctx, s, m.Channel, next.offset, opts)
		m.Offset, m.Epoch = next.offset, epoch
		return protocol.Position{Epoch: epoch, Offset: next.offset}, nil
	}
	return protocol.Position{}, unavailable("publish", fmt.Errorf("channel %q: %d attempts refused by concurrent publishers", m.Channel, maxAttempts))
}

// trim removes a channel's stored messages beyond its history size, every
// purgeEvery publishes. The last message always stays: it holds the offset.
// A failed trim is only logged: the messages go with the stream's MaxAge.
func (b *Broker) trim(ctx context.Context, s jetstream.Stream, channel string, offset uint64, opts broker.ChannelOptions) {
	if offset%purgeEvery != 0 {
		return
	}
	keep := uint64(max(opts.HistorySize, 1))
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(b.histSubj+token(channel)), jetstream.WithPurgeKeep(keep)); err != nil {
		b.log.Warn("trim history", "channel", channel, "err", err)
	}
}

// position returns the channel's last stored message, first storing an
// epoch marker when it has none, so that a subscriber of a channel nobody
// has published to yet gets a position that stays valid.
func (b *Broker) position(ctx context.Context, s jetstream.Stream, channel string) (head, error) {
	for range maxAttempts {
		h, _, err := b.readHead(ctx, s, channel)
		if err != nil || h.seq != 0 {
			return h, err
		}
		epoch := newEpoch()
		ack, err := b.store(ctx, channel, h, epoch, kindEpoch, nil)
		if wrongLast(err) {
			continue // someone else created it: read theirs
		}
		if err != nil {
			return head{}, err
		}
		return head{seq: ack.Sequence, epoch: epoch}, nil
	}
	return head{}, fmt.Errorf("channel %q: could not fix its epoch", channel)
}

// History reads the channel's last stored message for its position, then
// walks its stored messages (at most its history size plus purgeEvery of
// them) with direct gets. Messages beyond HistorySize or older than
// HistoryTTL count as gone even while still stored.
func (b *Broker) History(ctx context.Context, channel string, q broker.HistoryQuery) ([]*protocol.Message, protocol.Position, error) {
	s, err := b.streamOf()
	if err != nil {
		return nil, protocol.Position{}, unavailable("history", err)
	}
	h, err := b.position(ctx, s, channel)
	if err != nil {
		return nil, protocol.Position{}, unavailable("history", err)
	}
	top := h.offset
	pos := protocol.Position{Epoch: h.epoch, Offset: top}
	since := q.Since
	if since != nil && (since.Epoch != pos.Epoch || since.Offset > top) {
		return nil, pos, broker.ErrGap
	}
	if q.Limit < 0 {
		return nil, pos, nil
	}
	size := uint64(max(q.Options.HistorySize, 0))
	// The kept window is the newest size offsets.
	var first uint64 = 1
	if top > size {
		first = top - size + 1
	}
	from := first
	if since != nil {
		from = max(from, since.Offset+1)
	} else if q.Limit > 0 && top >= uint64(q.Limit) {
		from = max(from, top-uint64(q.Limit)+1)
	}
	var kept []*protocol.Message
	if size > 0 && from <= top {
		kept, err = b.walk(ctx, s, channel, from, h.seq, pos.Epoch)
		if err != nil {
			return nil, pos, unavailable("history", err)
		}
	}
	if ttl := q.Options.HistoryTTL; ttl > 0 {
		cutoff := time.Now().Add(-ttl).UnixMilli()
		i := sort.Search(len(kept), func(i int) bool { return kept[i].TS >= cutoff })
		kept = kept[i:]
	}
	if since != nil && q.Limit > 0 && len(kept) > q.Limit {
		kept = kept[:q.Limit]
	}
	if since != nil && since.Offset < top {
		if len(kept) == 0 || kept[0].Offset > since.Offset+1 {
			return nil, pos, broker.ErrGap
		}
	}
	return kept, pos, nil
}

// walk returns the stored messages of channel with offsets from..(the one
// at stream sequence last), oldest first.
func (b *Broker) walk(ctx context.Context, s jetstream.Stream, channel string, from, last uint64, epoch string) ([]*protocol.Message, error) {
	subj := b.histSubj + token(channel)
	var out []*protocol.Message
	for seq := uint64(1); seq <= last; {
		rm, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		if rm.Sequence > last {
			break
		}
		seq = rm.Sequence + 1
		if rm.Header.Get(hdrKind) != "" || rm.Header.Get(hdrEpoch) != epoch {
			continue
		}
		m, err := decodeStored(channel, rm.Header, rm.Data)
		if err != nil {
			return nil, fmt.Errorf("stored message %d of %q: %w", rm.Sequence, channel, err)
		}
		if m.Offset >= from {
			out = append(out, m)
		}
	}
	return out, nil
}
