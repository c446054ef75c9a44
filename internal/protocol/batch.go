package protocol

// Batching: several frames may leave in one WebSocket message, one JSON
// object per line. These are the one routine that decides how many fit;
// the outbox (per connection) and the hub's presence windows (shared by a
// channel's subscribers) both use it.

// BatchLen returns how many of frames, from the first, fit in one message
// of about limit bytes when joined by newlines; at least one.
func BatchLen(frames [][]byte, limit int) int {
	size, n := 0, 0
	for n < len(frames) && (n == 0 || size+len(frames[n])+1 <= limit) {
		size += len(frames[n]) + 1
		n++
	}
	return n
}

// JoinBatch joins the first BatchLen(frames, limit) frames with newlines
// into a new slice (a single frame is returned as it is) and returns the rest.
func JoinBatch(frames [][]byte, limit int) (joined []byte, rest [][]byte) {
	n := BatchLen(frames, limit)
	if n == 1 {
		return frames[0], frames[1:]
	}
	size := n - 1
	for _, f := range frames[:n] {
		size += len(f)
	}
	joined = make([]byte, 0, size)
	for i, f := range frames[:n] {
		if i > 0 {
			joined = append(joined, '\n')
		}
		joined = append(joined, f...)
	}
	return joined, frames[n:]
}
