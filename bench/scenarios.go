package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/eddyrt/eddy/api"
)

// connections opens Conns authenticated connections at Rate, each
// subscribed to one channel, holds them for Duration and measures the
// server's memory per connection.
func (r *runner) connections(ctx context.Context) error {
	n := max(r.o.Conns, 1)
	if err := r.checkFDs(n); err != nil {
		return err
	}
	nch := r.o.Channels
	if nch <= 0 || nch > n {
		nch = n
	}
	chans := make([]*channel, nch)
	for i := range chans {
		chans[i] = &channel{name: fmt.Sprintf("bench-conn-%s-%d", r.runID, i)}
	}
	r.res.Connections, r.res.Channels = n, nch
	gcOK := r.settleServer(ctx)
	if !gcOK {
		r.note("server has no /debug/pprof (run it with --pprof): RSS is read without a forced GC")
	}
	r.res.ServerRSSBefore = r.serverRSS(ctx)
	stop := make(chan struct{})
	phase := "opening"
	var pmu sync.Mutex
	go r.progress(stop, func() string { pmu.Lock(); defer pmu.Unlock(); return phase })
	defer close(stop)

	start := time.Now()
	_, cpu0 := r.serverStats(ctx)
	self0 := selfCPU()
	rate, ch := r.openSubs(ctx, n, r.o.Rate, func(i int) (string, *channel) {
		return r.o.WS[i%len(r.o.WS)], chans[i%nch]
	}, nil)
	// Server CPU while connecting: the cost of a connection that does not
	// depend on how fast the load tool can dial on shared cores.
	_, cpu1 := r.serverStats(ctx)
	r.res.BenchCPU = selfCPU() - self0
	if _, _, opened := r.totals(); cpu1 > cpu0 && opened > 0 {
		r.res.ServerCPU = cpu1 - cpu0
		r.res.ServerCPUPerConn = r.res.ServerCPU / float64(opened) * 1e6
	}
	r.res.ConnectRate = rate
	r.res.ConnectP99ms = ms(ch.quantile(0.99))
	_, _, open := r.totals()
	pmu.Lock()
	phase = "holding"
	pmu.Unlock()
	select {
	case <-ctx.Done():
	case <-time.After(r.o.Duration):
	}
	_, _, still := r.totals()
	r.res.Dropped = uint64(open - still)
	r.settleServer(ctx)
	r.res.ServerRSS = r.serverRSS(ctx)
	if still > 0 && r.res.ServerRSS > r.res.ServerRSSBefore {
		r.res.RSSPerConn = float64(r.res.ServerRSS-r.res.ServerRSSBefore) / float64(still)
	}
	r.res.DurationS = time.Since(start).Seconds()
	if open < n {
		r.note("opened %d of %d connections", open, n)
	}
	r.res.Connections = still
	r.closeAll()
	return nil
}

// pubsub runs fanout, channels and cluster: nch channels with per
// subscribers each, a publisher at Rate msgs/s for Duration.
func (r *runner) pubsub(ctx context.Context, nch, per int, prefix string) error {
	chans := make([]*channel, nch)
	for i := range chans {
		chans[i] = &channel{name: prefix}
		if nch > 1 {
			chans[i].name = fmt.Sprintf("%s-%d", prefix, i)
		}
	}
	total := nch * per
	if err := r.checkFDs(total + max(r.o.PubConns, 1)); err != nil {
		return err
	}
	r.res.Subscribers, r.res.Channels, r.res.Connections = total, nch, total
	stop := make(chan struct{})
	phase := "subscribing"
	var pmu sync.Mutex
	go r.progress(stop, func() string { pmu.Lock(); defer pmu.Unlock(); return phase })
	defer close(stop)

	rate, ch := r.openSubs(ctx, total, 0, func(i int) (string, *channel) {
		return r.o.WS[i%len(r.o.WS)], chans[i%nch]
	}, nil)
	r.res.ConnectRate, r.res.ConnectP99ms = rate, ms(ch.quantile(0.99))
	_, _, open := r.totals()
	if open == 0 {
		return fmt.Errorf("no subscriber could connect to %s", strings.Join(r.o.WS, ", "))
	}
	if open < total {
		r.note("only %d of %d subscribers connected", open, total)
	}

	pmu.Lock()
	phase = "publishing"
	pmu.Unlock()
	_, cpu0 := r.serverStats(ctx)
	self0 := selfCPU()
	pubStart := time.Now()
	if err := r.publishFor(ctx, chans); err != nil {
		return err
	}
	pubEl := time.Since(pubStart)
	pmu.Lock()
	phase = "draining"
	pmu.Unlock()
	lastRecv := r.drain(ctx, chans)
	rss, cpu1 := r.serverStats(ctx)
	r.res.BenchCPU = selfCPU() - self0
	r.closeAll()

	r.collect(chans, pubEl, lastRecv.Sub(pubStart))
	r.res.ServerRSS = uint64(rss)
	if cpu1 > cpu0 {
		r.res.ServerCPU = cpu1 - cpu0
		if n := r.res.Received - r.res.Duplicated; n > 0 {
			r.res.ServerCPUPerMsg = r.res.ServerCPU / float64(n) * 1e6
		}
	}
	return nil
}

// drain waits until every subscriber has what was sent, or nothing more
// arrives for a while; it returns when the last message arrived.
func (r *runner) drain(ctx context.Context, chans []*channel) time.Time {
	var want uint64
	r.mu.Lock()
	subs := r.subs
	r.mu.Unlock()
	for _, s := range subs {
		want += s.ch.sent.Load()
	}
	last := time.Now()
	prev, _, _ := r.totals()
	deadline := time.Now().Add(r.o.DrainWait * 3)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		got, _, _ := r.totals()
		if got >= want {
			return time.Now()
		}
		if got != prev {
			prev, last = got, time.Now()
		} else if time.Since(last) > r.o.DrainWait {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return last
}

// collect merges the subscribers' counters into the result.
func (r *runner) collect(chans []*channel, pubEl, deliverEl time.Duration) {
	res := r.res
	h := new(hist)
	merged := map[*hist]bool{} // subscribers of one poller share its histogram
	for _, c := range chans {
		res.Sent += c.sent.Load()
	}
	for _, s := range r.subs {
		exp := s.ch.sent.Load()
		res.Expected += exp
		res.Received += s.recv.Load()
		res.WSMessages += s.reads.Load()
		res.Duplicated += s.dups
		res.OffsetGaps += s.gaps
		if s.seen.n < exp {
			res.Lost += exp - s.seen.n
		}
		if s.foreign > 0 {
			r.note("a subscriber got %d messages without a bench payload (someone else publishing to the channel?)", s.foreign)
		}
		if s.h != nil && !merged[s.h] {
			merged[s.h] = true
			h.merge(s.h)
		}
		if s.err != nil && !isClosedByUs(s.err) {
			r.fail(fmt.Errorf("subscriber: %w", s.err))
			res.Dropped++
		}
	}
	for _, p := range r.pubs {
		if p.failed.Load() > 0 {
			r.errs.Add(p.failed.Load())
			if f := p.first.Load(); f != nil {
				r.fail(fmt.Errorf("publish refused: %s", *f))
			}
		}
		if o := p.outstanding(); o > 0 {
			r.note("%d client publishes were never answered", o)
		}
	}
	res.DurationS = pubEl.Seconds()
	res.SentPerSec = float64(res.Sent) / pubEl.Seconds()
	if deliverEl < pubEl {
		deliverEl = pubEl
	}
	res.DeliveredPerSec = math.Round(float64(res.Received-res.Duplicated) / deliverEl.Seconds())
	res.P50ms, res.P99ms, res.P999ms, res.MaxMs = ms(h.quantile(0.5)), ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.max)
	if res.Rate > 0 && res.SentPerSec < 0.9*res.Rate {
		r.note("the publisher reached %.0f of the %.0f msgs/s asked for", res.SentPerSec, res.Rate)
	}
}

func isClosedByUs(err error) bool {
	return err == io.EOF || strings.Contains(err.Error(), "use of closed network connection")
}

// publishFor publishes at Rate msgs/s over the channels, round robin, for
// Duration: through the HTTP API, or over WebSockets with FromClient.
func (r *runner) publishFor(ctx context.Context, chans []*channel) error {
	rate := r.o.Rate
	if rate <= 0 {
		rate = 1000
		r.res.Rate = rate
	}
	// Each call of a publish function sends k messages: one, or a batch.
	k := 1
	if r.o.Scenario == "batch" {
		k = r.o.Batch
	}
	workers := r.o.PubConns
	if workers <= 0 {
		per := 5.0 // HTTP publishes a worker keeps up with when 10,000 readers share its CPU
		if r.o.FromClient {
			per = 90 // under the server's default publish_rate of 100/s per connection
		}
		if k > 1 {
			per = 100 * float64(k) // batches of single-subscriber channels: the server is the limit
		}
		workers = int(math.Ceil(rate / per))
		workers = min(max(workers, 1), 256)
	}
	var publish []func([]*channel) error
	if k > 1 {
		publish = r.batchPublishers(ctx, workers)
		defer r.closeBatchPublishers()
	} else if r.o.FromClient {
		for i := 0; i < workers; i++ {
			tok, err := r.token(fmt.Sprintf("bench-pub-%d", i), true)
			if err != nil {
				return err
			}
			url := r.o.WS[i%len(r.o.WS)]
			p, err := connectPub(ctx, r.d, url, tok)
			if err != nil {
				return fmt.Errorf("publisher connection to %s: %w", url, err)
			}
			r.mu.Lock()
			r.pubs = append(r.pubs, p)
			r.mu.Unlock()
			publish = append(publish, func(chs []*channel) error { return p.publish(chs[0]) })
		}
	} else {
		tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
		hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
		for i := 0; i < workers; i++ {
			base := strings.TrimRight(r.o.API[i%len(r.o.API)], "/")
			var buf []byte
			var body bytes.Buffer // the answer, read whole so the connection is kept
			publish = append(publish, func(chs []*channel) error {
				ch := chs[0]
				seq := ch.seq.Add(1)
				buf = append(buf[:0], `{"channel":"`...)
				buf = append(buf, ch.name...)
				buf = append(buf, `","event":"b","data":`...)
				buf = appendPayload(buf, seq, uint64(time.Now().UnixMicro()))
				buf = append(buf, '}')
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/publish", bytes.NewReader(buf))
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "Bearer "+r.o.APIKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				body.Reset()
				_, _ = body.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("publish: %s: %s", resp.Status, bytes.TrimSpace(body.Bytes()))
				}
				ch.sent.Add(1)
				r.sentAPI.Add(1)
				return nil
			})
		}
	}

	end := time.Now().Add(r.o.Duration)
	interval := time.Duration(float64(workers*k) / rate * float64(time.Second))
	var wg sync.WaitGroup
	for w, pub := range publish {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now().Add(interval * time.Duration(w) / time.Duration(workers))
			batch := make([]*channel, k)
			for i := w; ctx.Err() == nil; i += workers {
				now := time.Now()
				if !now.Before(end) {
					return
				}
				if d := next.Sub(now); d > 0 {
					time.Sleep(d)
				} else if -d > time.Second {
					next = now // too far behind: do not burst to catch up
				}
				next = next.Add(interval)
				for j := range batch {
					batch[j] = chans[(i*k+j)%len(chans)]
				}
				if err := pub(batch); err != nil {
					r.fail(err)
					if r.o.FromClient {
						return // the connection is gone
					}
				}
			}
		}()
	}
	wg.Wait()
	// Client publishes are answered asynchronously: wait for the acks.
	deadline := time.Now().Add(r.o.DrainWait)
	for time.Now().Before(deadline) {
		var out uint64
		for _, p := range r.pubs {
			out += p.outstanding()
		}
		if out == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// functions deploys a one-line JS function on a bench channel, runs the
// fan-out through it, and removes it again.
func (r *runner) functions(ctx context.Context) error {
	name := "bench-" + r.runID
	chName := "bench-fn-" + r.runID
	admin := api.NewClient(r.o.API[0], r.o.AdminKey)
	fn := map[string]any{"runtime": "js", "source": "function handle(m){return m}"}
	if err := admin.Do(ctx, http.MethodPut, "/api/v1/functions/"+name, fn, nil); err != nil {
		return fmt.Errorf("deploy function %s (needs the admin key: --admin-key, or --api-key when they are the same): %w", name, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := admin.Do(cctx, http.MethodDelete, "/api/v1/associations?pattern="+chName, nil, nil); err != nil {
			r.note("remove association %s: %v", chName, err)
		}
		if err := admin.Do(cctx, http.MethodDelete, "/api/v1/functions/"+name, nil, nil); err != nil {
			r.note("remove function %s: %v", name, err)
		}
	}()
	assoc := map[string]any{"pattern": chName, "functions": []string{name}}
	if err := admin.Do(ctx, http.MethodPut, "/api/v1/associations", assoc, nil); err != nil {
		return fmt.Errorf("associate %s with %s: %w", name, chName, err)
	}
	r.note("function %s (function handle(m){return m}) runs on channel %s", name, chName)
	return r.pubsub(ctx, 1, max(r.o.Subscribers, 1), chName)
}

// presence joins Conns clients, one after another at Rate, to one
// presence channel with join events on, and measures how the connect rate
// and delivered events per second change as the channel grows.
func (r *runner) presence(ctx context.Context) error {
	n := max(r.o.Conns, 1)
	if err := r.checkFDs(n); err != nil {
		return err
	}
	ns := r.o.Channel
	if i := strings.IndexByte(ns, ':'); i > 0 {
		ns = ns[:i]
	}
	r.note("presence needs channel %s in a namespace with presence and join events: namespaces: { %s: { presence: true, join_leave: true } }", r.o.Channel, ns)
	ch := &channel{name: r.o.Channel}
	r.res.Connections, r.res.Channels = n, 1

	// Probe with one client first, to say plainly if the namespace lacks presence.
	tok, err := r.token("bench-probe", false)
	if err != nil {
		return err
	}
	probe, err := connectSub(ctx, r.d, r.o.WS[0], tok, ch, r.o.ReadBuffer)
	if err != nil {
		return fmt.Errorf("probe connection to %s: %w", r.o.WS[0], err)
	}
	probe.c.close()
	if !probe.members {
		return fmt.Errorf("channel %s has no presence on this server (subscribed carried no members); its namespace %q needs presence: true, join_leave: true", r.o.Channel, ns)
	}

	stop := make(chan struct{})
	go r.progress(stop, func() string { return "joining" })
	defer close(stop)

	step := max(n/10, 1)
	var wmu sync.Mutex
	joined := 0
	winStart := time.Now()
	var winEvents uint64
	minRate := math.Inf(1)
	start := time.Now()
	rate, hc := r.openSubs(ctx, n, r.o.Rate, func(i int) (string, *channel) {
		return r.o.WS[i%len(r.o.WS)], ch
	}, func(int) {
		wmu.Lock()
		defer wmu.Unlock()
		joined++
		if joined%step != 0 {
			return
		}
		_, pres, _ := r.totals()
		el := time.Since(winStart).Seconds()
		w := Window{Members: joined, ConnectRate: float64(step) / el, DeliveredRate: float64(pres-winEvents) / el}
		r.res.Windows = append(r.res.Windows, w)
		minRate = min(minRate, w.ConnectRate)
		winStart, winEvents = time.Now(), pres
	})
	joinEl := time.Since(start)
	r.res.ConnectRate, r.res.ConnectP99ms = rate, ms(hc.quantile(0.99))
	if !math.IsInf(minRate, 1) {
		r.res.MinConnectRate = minRate
	}
	// Wait for the join events still on their way.
	_, _, open := r.totals()
	want := uint64(open) * uint64(open+1) / 2
	r.res.PresenceExpected = want
	last, prev := time.Now(), uint64(0)
	for time.Since(last) < 3*time.Second && ctx.Err() == nil {
		_, pres, _ := r.totals()
		if pres >= want {
			break
		}
		if pres != prev {
			prev, last = pres, time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, pres, still := r.totals()
	r.res.PresenceEvents = pres
	r.res.Received = pres
	r.res.DeliveredPerSec = math.Round(float64(pres) / time.Since(start).Seconds())
	r.res.DurationS = joinEl.Seconds()
	r.res.Dropped = uint64(open - still)
	r.res.Connections = still
	r.res.ServerRSS = r.serverRSS(ctx)
	r.closeAll()
	return nil
}
