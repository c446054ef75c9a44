package server_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// counterValue reads a counter or gauge (summed over the series with
// label=value, or over all series with label "") from a server's registry in process: a
// draining node's listeners are closed, so /metrics cannot be scraped.
func counterValue(t testing.TB, s *servertest.Server, name, label, value string) float64 {
	t.Helper()
	g, ok := s.Registry().(prometheus.Gatherer)
	if !ok {
		t.Fatal("server registry is not a Gatherer")
	}
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if match {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// rateWatch samples a growing count every slice and checks that no slice
// saw more than twice the even rate (perSecond) allows for the slice's real
// length, plus slack. It measures each slice's length rather than trusting
// the ticker, so a sampler delayed by a loaded machine widens its own bound
// instead of failing: counts are asserted, never timings.
type rateWatch struct {
	slice     time.Duration
	perSecond float64
	slack     int
	count     func() float64
	stop      chan struct{}
	done      chan struct{}

	mu       sync.Mutex
	worst    string // the slice furthest over its bound, if any
	maxSlice int
	slices   int // slices that saw any count
}

func watchRate(slice time.Duration, perSecond float64, slack int, count func() float64) *rateWatch {
	w := &rateWatch{slice: slice, perSecond: perSecond, slack: slack, count: count, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *rateWatch) run() {
	defer close(w.done)
	t := time.NewTicker(w.slice)
	defer t.Stop()
	last, lastAt := w.count(), time.Now()
	for {
		stopping := false
		select {
		case <-t.C:
		case <-w.stop:
			stopping = true
		}
		now, at := w.count(), time.Now()
		n := int(now - last)
		// The last slice, cut short by finish, is bounded as a whole one.
		bound := int(math.Ceil(w.perSecond*max(at.Sub(lastAt), w.slice).Seconds()))*2 + w.slack
		w.mu.Lock()
		if n > 0 {
			w.slices++
		}
		w.maxSlice = max(w.maxSlice, n)
		if n > bound && w.worst == "" {
			w.worst = fmt.Sprintf("%d in a slice of %s (bound %d)", n, at.Sub(lastAt).Round(time.Millisecond), bound)
		}
		w.mu.Unlock()
		last, lastAt = now, at
		if stopping {
			return
		}
	}
}

// finish stops the watch and returns its findings.
func (w *rateWatch) finish() (worst string, maxSlice, slices int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.worst, w.maxSlice, w.slices
}

// TestShutdownDrainsClientsOverDrainDuration (issue 21): a node shutting
// down with drain_duration D closes its N clients at an even pace, never
// much more than N/D per second in any slice of time, instead of all at
// once; every client still gets 1012 with a reason telling it to
// reconnect, and Shutdown returns within shutdown_timeout.
func TestShutdownDrainsClientsOverDrainDuration(t *testing.T) {
	const conns = 300
	const drain = 1500 * time.Millisecond
	n := servertest.Start(t, func(c *config.Config) {
		c.DrainDuration = drain
		c.ShutdownTimeout = drain + 3*time.Second
		c.PingInterval = time.Hour
	})
	addr := n.Addr().String()
	token := servertest.Token(t, "u", nil, nil)
	clients := make([]*plainWS, conns)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= conns {
					return
				}
				w, err := dialPlain(addr)
				if err == nil {
					err = w.send(map[string]any{"type": "auth", "token": token})
				}
				if err == nil {
					err = w.await(`"ready"`)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				clients[i] = w
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, w := range clients {
			w.conn.Close()
		}
	}()

	type closed struct {
		code   uint16
		reason string
		err    error
	}
	results := make(chan closed, conns)
	for _, w := range clients {
		_ = w.conn.SetDeadline(time.Now().Add(2 * n.Config.ShutdownTimeout))
		go func() {
			for {
				op, p, err := w.next()
				if err != nil {
					results <- closed{err: err}
					return
				}
				if op == 8 {
					_, _ = w.conn.Write([]byte{0x88, 0x80, 0, 0, 0, 0})
					if len(p) < 2 {
						results <- closed{}
						return
					}
					results <- closed{code: binary.BigEndian.Uint16(p), reason: string(p[2:])}
					return
				}
			}
		}()
	}

	// The server's own count of 1012 closes, read where it happens: the
	// clients' reading lags behind on a loaded machine and would bunch up.
	closes := func() float64 { return server.Closes(n.Server, "1012") }
	watch := watchRate(100*time.Millisecond, float64(conns)/drain.Seconds(), 10, closes)
	ctx, cancel := context.WithTimeout(context.Background(), n.Config.ShutdownTimeout)
	defer cancel()
	err := n.Shutdown(ctx)
	worst, maxSlice, slices := watch.finish()
	if err != nil {
		t.Fatalf("Shutdown did not finish within shutdown_timeout %s: %v", n.Config.ShutdownTimeout, err)
	}
	t.Logf("%d closes over %d slices of about 100ms, at most %d in one", conns, slices, maxSlice)
	if worst != "" {
		t.Fatalf("closes came faster than drain_duration allows: %s", worst)
	}
	if got := closes(); got != conns {
		t.Fatalf("server counted %g closes with 1012, want %d", got, conns)
	}
	bad := 0
	for range conns {
		r := <-results
		if r.err != nil || r.code != 1012 || !strings.Contains(r.reason, "reconnect") {
			if bad == 0 {
				t.Errorf("a client got code %d reason %q err %v, want 1012 and a reason asking it to reconnect", r.code, r.reason, r.err)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d clients did not get 1012 with a reconnect hint", bad, conns)
	}
}
