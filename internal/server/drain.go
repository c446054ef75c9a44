package server

import (
	"context"
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
)

// minDrainStep is the shortest pause between two batches of closes: finer
// steps would only cost timer wake-ups, not smooth the stream further.
const minDrainStep = 20 * time.Millisecond

// drainSchedule is how a drain spreads n closes over d: batches of size
// per, one every step, so the rate never exceeds about n/d per second.
func drainSchedule(n int, d time.Duration) (step time.Duration, per int) {
	if n <= 0 || d <= 0 {
		return 0, n
	}
	step = max(d/time.Duration(n), minDrainStep)
	steps := max(int(d/step), 1)
	per = (n + steps - 1) / steps
	return step, per
}

// maxCatchUp is how many batches one wake-up may close when the drain fell
// behind (a busy machine delays timers): enough to keep to drain_duration,
// few enough that a long stall does not end in a wave.
const maxCatchUp = 4

// drain closes every connection with d (1012: reconnect) spread evenly over
// s.cfg.DrainDuration, so the nodes that take the clients over see a steady
// stream of reconnects instead of one wave (the "self-DDoS" of a rolling
// restart). Batches are due by the clock, not counted by ticks, so late
// timers do not stretch the drain; a late wake-up catches up by at most
// maxCatchUp batches. When ctx ends first, the rest close at once. No new
// connection arrives meanwhile: the listeners are closed already.
func (s *Server) drain(ctx context.Context, d protocol.Disconnect) {
	var all []*conn
	s.conns.each(func(c *conn) { all = append(all, c) })
	step, per := drainSchedule(len(all), s.cfg.DrainDuration)
	if step == 0 {
		for _, c := range all {
			c.closeWith(d, true)
		}
		return
	}
	s.log.Info("draining clients", "connections", len(all), "over", s.cfg.DrainDuration, "per_batch", per, "every", step)
	start := time.Now()
	t := time.NewTicker(step)
	defer t.Stop()
	closed := 0
	for {
		due := per * (1 + int(time.Since(start)/step))
		target := min(len(all), due, closed+maxCatchUp*per)
		for _, c := range all[closed:target] {
			c.closeWith(d, true)
		}
		closed = target
		if closed == len(all) {
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			for _, c := range all[closed:] {
				c.closeWith(d, true)
			}
			return
		}
	}
}
