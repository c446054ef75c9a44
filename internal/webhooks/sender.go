package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/eddyrt/eddy/internal/config"
)

// maxBackoff caps the wait between two tries of one POST;
// defaultPostTimeout bounds one try.
const (
	maxBackoff         = time.Minute
	defaultPostTimeout = 10 * time.Second
)

// sender is one receiver's queue and the goroutine that empties it: events
// gather for the window, go out in one signed POST, and a failed POST is
// tried again with exponential backoff until RetryFor has passed since its
// first try. Batches go out one at a time, in order.
type sender struct {
	d      *Dispatcher
	app    string // whose receiver it is; "" the default app
	hook   config.Webhook
	events map[string]bool
	target string // the URL without credentials, for logs

	mu    sync.Mutex
	queue []Event

	wake     chan struct{} // an event was queued (capacity 1)
	stopping chan struct{} // closed by stop: send what is queued, no more waiting
	stopOnce sync.Once
	ctx      context.Context // cancelled when the grace of stop ends
	cancel   context.CancelFunc
	done     chan struct{}
}

func newSender(d *Dispatcher, h config.Webhook) *sender {
	s := &sender{
		d: d, hook: h, events: map[string]bool{},
		target:   redact(h.URL),
		wake:     make(chan struct{}, 1),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
	for _, e := range h.Events {
		s.events[e] = true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	u.RawQuery = ""
	return u.Redacted()
}

func (s *sender) wants(name string) bool { return s.events[name] }

// enqueue adds ev unless the queue is full (then ev is dropped, counted,
// and logged at most once per queue-full spell).
func (s *sender) enqueue(ev Event) {
	s.mu.Lock()
	if len(s.queue) >= s.d.opts.QueueSize {
		s.mu.Unlock()
		s.d.metrics.dropped(outcomeQueueFull, 1)
		s.d.limiter.logOnce("queue-full:"+s.target, func() {
			s.d.log.Warn("webhook queue full: events dropped (the receiver is slow or down)", "url", s.target, "queue", s.d.opts.QueueSize)
		})
		return
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	s.d.metrics.queued.Inc()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sender) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// take removes and returns up to n queued events.
func (s *sender) take(n int) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = min(n, len(s.queue))
	out := append([]Event(nil), s.queue[:n]...)
	rest := copy(s.queue, s.queue[n:])
	clear(s.queue[rest:])
	s.queue = s.queue[:rest]
	if cap(s.queue) > 1024 && rest < cap(s.queue)/4 {
		s.queue = append([]Event(nil), s.queue...)
	}
	s.d.metrics.queued.Sub(float64(n))
	return out
}

// stop ends the sender: what is queued gets grace to go out (one try per
// batch), then the rest is dropped. It returns when the goroutine ended.
func (s *sender) stop(grace time.Duration) {
	s.stopOnce.Do(func() {
		close(s.stopping)
		if grace <= 0 {
			s.cancel()
		} else {
			time.AfterFunc(grace, s.cancel)
		}
	})
	<-s.done
	s.cancel()
}

func (s *sender) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

func (s *sender) run() {
	defer close(s.done)
	defer func() {
		if left := s.take(s.d.opts.QueueSize); len(left) > 0 {
			s.d.metrics.dropped(outcomeShutdown, len(left))
		}
	}()
	for {
		if s.queued() == 0 {
			if s.isStopping() {
				return
			}
			select {
			case <-s.wake:
			case <-s.stopping:
			case <-s.ctx.Done():
				return
			}
			continue
		}
		// A short wait gathers the events of a burst into one POST; a full
		// batch (a backlog) goes at once.
		if !s.isStopping() && s.queued() < s.d.opts.MaxBatch {
			t := time.NewTimer(s.d.opts.Window)
			select {
			case <-t.C:
			case <-s.stopping:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			t.Stop()
		}
		s.deliver(s.take(s.d.opts.MaxBatch))
		if s.ctx.Err() != nil {
			return
		}
	}
}

// deliver POSTs batch until a 2xx answer, RetryFor, or the end of stop's grace.
func (s *sender) deliver(batch []Event) {
	body, header, err := encodeBatch(s.hook, batch, time.Now())
	if err != nil {
		s.d.log.Error("webhook: encode events", "url", s.target, "err", err)
		s.d.metrics.dropped(outcomeRetriesExhausted, len(batch))
		return
	}
	first := time.Now()
	wait := s.d.opts.FirstBackoff
	for try := 1; ; try++ {
		err := s.post(body, header)
		if err == nil {
			s.d.metrics.sent(len(batch))
			return
		}
		if s.isStopping() || s.ctx.Err() != nil {
			s.d.metrics.dropped(outcomeShutdown, len(batch))
			s.d.log.Warn("webhook events dropped at shutdown", "url", s.target, "events", len(batch), "err", err)
			return
		}
		// Jitter spreads the retries of many nodes after a receiver's outage.
		next := wait/2 + rand.N(wait/2+1)
		if time.Since(first)+next > s.d.opts.RetryFor {
			s.d.metrics.dropped(outcomeRetriesExhausted, len(batch))
			s.d.log.Warn("webhook events dropped: the receiver failed every try", "url", s.target,
				"events", len(batch), "tries", try, "for", time.Since(first).Round(time.Millisecond), "last_err", err)
			return
		}
		s.d.log.Debug("webhook POST failed; retrying", "url", s.target, "try", try, "in", next, "err", err)
		t := time.NewTimer(next)
		select {
		case <-t.C:
		case <-s.stopping: // one last try, at once
		case <-s.ctx.Done():
		}
		t.Stop()
		wait = min(2*wait, maxBackoff)
	}
}

// post sends one try; an error says why it did not succeed.
func (s *sender) post(body []byte, header http.Header) error {
	limit := s.d.opts.Client.Timeout
	if limit <= 0 {
		limit = defaultPostTimeout
	}
	ctx, cancel := context.WithTimeout(s.ctx, limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.hook.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.d.opts.Client.Do(req)
	if err != nil {
		s.d.metrics.request("error")
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	s.d.metrics.request(fmt.Sprintf("%dxx", resp.StatusCode/100))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
