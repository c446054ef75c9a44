package memory

import (
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
)

// stream is one channel's numbering and, while it keeps any, its history.
// A channel without kept messages holds only its counter: offsets may not
// restart within an epoch, so the counter lives as long as the broker.
type stream struct {
	top uint64
	h   *history // nil when no message is kept
}

// history is a channel's kept messages, a ring buffer, and its place in
// its shard's list of channels with history, ordered by last publish (the
// order eviction takes them in). The kept messages always have
// consecutive offsets ending at the stream's top: every publish appends
// one, and expiry, overwriting and eviction drop only the oldest.
type history struct {
	ring  []entry
	first int   // index of the oldest kept message in ring
	n     int   // kept messages
	bytes int64 // what the kept messages cost (entrySize), counted in Broker.bytes

	ttl        time.Duration // the channel's history_ttl at its last publish (for the sweeper)
	last       int64         // unix nanoseconds of the last publish
	prev, next *stream       // the shard's list, oldest publish first
	channel    string
}

// entry is one kept message and when the broker kept it (the TTL's clock).
type entry struct {
	m  *protocol.Message
	at time.Time
}

// entryOverhead approximates what a kept message costs beyond its strings
// and data: the Message struct, its pointer in the ring, the entry.
const entryOverhead = 160

func entrySize(m *protocol.Message) int64 {
	return int64(entryOverhead + len(m.Data) + len(m.Channel) + len(m.Event) + len(m.ID) + len(m.User))
}

func (h *history) entry(i int) *entry { return &h.ring[(h.first+i)%len(h.ring)] }

// keep appends m to the history of at most size messages and returns the
// change in bytes kept. The ring grows as messages come, so a channel with
// a long history_size and few messages does not hold a full-size ring.
func (h *history) keep(m *protocol.Message, at time.Time, size int) (delta int64) {
	switch {
	case len(h.ring) > size: // the history got shorter
		delta -= h.resize(size)
	case h.n == len(h.ring) && h.n < size:
		delta -= h.resize(min(size, max(8, 2*len(h.ring))))
	}
	sz := entrySize(m)
	delta += sz
	h.bytes += sz
	if h.n < len(h.ring) {
		*h.entry(h.n) = entry{m, at}
		h.n++
		return delta
	}
	old := entrySize(h.ring[h.first].m)
	h.bytes -= old
	delta -= old
	h.ring[h.first] = entry{m, at}
	h.first = (h.first + 1) % len(h.ring)
	return delta
}

// resize moves the newest min(n, size) messages to a ring of size and
// returns the bytes of those dropped.
func (h *history) resize(size int) (dropped int64) {
	keep := min(h.n, size)
	for i := 0; i < h.n-keep; i++ {
		dropped += entrySize(h.entry(i).m)
	}
	ring := make([]entry, size)
	for i := 0; i < keep; i++ {
		ring[i] = *h.entry(h.n - keep + i)
	}
	h.ring, h.first, h.n = ring, 0, keep
	h.bytes -= dropped
	return dropped
}

// expire drops the kept messages older than cutoff and returns their bytes.
func (h *history) expire(cutoff time.Time) (dropped int64) {
	for h.n > 0 && h.entry(0).at.Before(cutoff) {
		e := h.entry(0)
		dropped += entrySize(e.m)
		*e = entry{}
		h.first = (h.first + 1) % len(h.ring)
		h.n--
	}
	h.bytes -= dropped
	return dropped
}

// link appends st, which has history, to the shard's list as the newest; s.mu held.
func (s *shard) link(st *stream) {
	h := st.h
	h.prev, h.next = s.newest, nil
	if s.newest != nil {
		s.newest.h.next = st
	} else {
		s.oldest = st
	}
	s.newest = st
}

// unlink takes st out of the shard's list; s.mu held.
func (s *shard) unlink(st *stream) {
	h := st.h
	if h.prev != nil {
		h.prev.h.next = h.next
	} else {
		s.oldest = h.next
	}
	if h.next != nil {
		h.next.h.prev = h.prev
	} else {
		s.newest = h.prev
	}
	h.prev, h.next = nil, nil
}

// touch records a publish to st at now, making it the shard's newest; s.mu held.
func (s *shard) touch(st *stream, now time.Time, ttl time.Duration) {
	st.h.last, st.h.ttl = now.UnixNano(), ttl
	if s.newest != st {
		s.unlink(st)
		s.link(st)
	}
}

// dropHistory releases all of st's kept messages and returns their bytes;
// st keeps its counter. s.mu held.
func (s *shard) dropHistory(st *stream) int64 {
	if st.h == nil {
		return 0
	}
	s.unlink(st)
	dropped := st.h.bytes
	st.h = nil
	return dropped
}

// expire drops st's messages older than its TTL allows at now, releasing
// the history when none is left; s.mu held. It returns the bytes dropped.
func (s *shard) expire(st *stream, ttl time.Duration, now time.Time) int64 {
	if st.h == nil || ttl <= 0 {
		return 0
	}
	dropped := st.h.expire(now.Add(-ttl))
	if st.h.n == 0 {
		dropped += s.dropHistory(st)
	}
	return dropped
}
