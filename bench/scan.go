package bench

import (
	"bytes"
	"math/bits"
	"strconv"
)

// The subscriber side never JSON-decodes a message: it reads the frame
// type and a few numbers with the byte scanner below. Eddy's frames start
// with {"type":"<type>" and the bench payload is {"s":SEQ,"t":MICROS}.

var typePrefix = []byte(`{"type":"`)

// frameType returns the type of one frame (a line of a message).
func frameType(line []byte) []byte {
	if !bytes.HasPrefix(line, typePrefix) {
		return nil
	}
	rest := line[len(typePrefix):]
	if i := bytes.IndexByte(rest, '"'); i >= 0 {
		return rest[:i]
	}
	return nil
}

// uintAfter parses the unsigned number that follows key in b.
func uintAfter(b, key []byte) (uint64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	return parseUint(b[i+len(key):])
}

func parseUint(b []byte) (uint64, bool) {
	var n uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + uint64(b[i]-'0')
	}
	return n, i > 0
}

var (
	keyData   = []byte(`"data":{"s":`)
	keyT      = []byte(`,"t":`)
	keyOffset = []byte(`"offset":`)
	keyTS     = []byte(`"ts":`)
)

// benchMessage is what the scanner reads from a message frame.
type benchMessage struct {
	seq, sentMicros, offset, serverTS uint64
}

// scanMessage reads a message frame; ok is false when the frame does not
// carry a bench payload.
func scanMessage(line []byte) (m benchMessage, ok bool) {
	i := bytes.Index(line, keyData)
	if i < 0 {
		return m, false
	}
	rest := line[i+len(keyData):]
	if m.seq, ok = parseUint(rest); !ok {
		return m, false
	}
	if m.sentMicros, ok = uintAfter(rest, keyT); !ok {
		return m, false
	}
	m.serverTS, _ = uintAfter(rest, keyTS)
	m.offset, ok = uintAfter(rest, keyOffset)
	return m, ok
}

// appendPayload appends the bench payload {"s":seq,"t":micros}. Micros fit
// a JavaScript number exactly, so a JS function returns the same bytes.
func appendPayload(b []byte, seq, micros uint64) []byte {
	b = append(b, `{"s":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendUint(b, micros, 10)
	return append(b, '}')
}

// hist is a log-linear latency histogram in microseconds: exact below 64,
// then 32 buckets per power of two (about 3% resolution).
type hist struct {
	counts [histBuckets]uint32
	n      uint64
	max    uint64
}

const histBuckets = 64 + 32*40

func histIndex(v uint64) int {
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(v) - 6 // >= 1
	i := 64 + (e-1)*32 + int(v>>uint(e)) - 32
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histValue is the upper bound of bucket i.
func histValue(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	e := (i-64)/32 + 1
	m := uint64((i-64)%32 + 32)
	return (m+1)<<uint(e) - 1
}

func (h *hist) add(v uint64) {
	h.counts[histIndex(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	if o == nil {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at q (0..1) in microseconds.
func (h *hist) quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen > rank {
			return min(histValue(i), h.max)
		}
	}
	return h.max
}

// seqSet records which sequence numbers arrived.
type seqSet struct {
	words []uint64
	n     uint64
}

// add reports whether seq is new.
func (s *seqSet) add(seq uint64) bool {
	w := int(seq / 64)
	if w >= len(s.words) {
		nw := make([]uint64, max(w+1, 2*len(s.words)))
		copy(nw, s.words)
		s.words = nw
	}
	bit := uint64(1) << (seq % 64)
	if s.words[w]&bit != 0 {
		return false
	}
	s.words[w] |= bit
	s.n++
	return true
}
