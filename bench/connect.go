package bench

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eddyrt/eddy/internal/auth"
)

// subToken returns subscriber i's token. Tokens are minted for 1,024
// users and reused, so the load tool spends its CPU on connections rather
// than on signing (the server still verifies every one).
func (r *runner) subToken(i int) (string, error) {
	k := i % len(r.tokens)
	r.tokMu.Lock()
	defer r.tokMu.Unlock()
	if r.tokens[k] == "" {
		t, err := r.token("bench-"+strconv.Itoa(k), false)
		if err != nil {
			return "", err
		}
		r.tokens[k] = t
	}
	return r.tokens[k], nil
}

// token mints a client token for user; publish adds publish rights on every channel.
func (r *runner) token(user string, publish bool) (string, error) {
	spec := auth.TokenSpec{Subject: user, TTL: r.o.Duration + time.Hour}
	if publish {
		spec.Publish = []string{"*"}
	}
	return auth.Mint([]byte(r.o.Secret), spec)
}

// openSubs opens n subscribers at up to rate per second (0: as fast as the
// dials in flight allow); target(i) says where subscriber i goes. It
// returns the achieved connect rate and the connect-time histogram.
func (r *runner) openSubs(ctx context.Context, n int, rate float64, target func(i int) (string, *channel), onOpen func(i int)) (float64, *hist) {
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, r.o.Concurrency)
		hmu      sync.Mutex
		ch       = new(hist)
		nopen    atomic.Int64
		start    = time.Now()
		lastDone atomic.Int64
	)
	// opened ends one connection attempt, on whichever goroutine it ran.
	opened := func(i int, url string, s *sub, el time.Duration, err error) {
		defer wg.Done()
		defer func() { <-sem }()
		if err != nil {
			r.fail(fmt.Errorf("connect %s: %w", url, err))
			return
		}
		r.mu.Lock()
		r.subs = append(r.subs, s)
		r.mu.Unlock()
		hmu.Lock()
		ch.add(uint64(el.Microseconds()))
		hmu.Unlock()
		nopen.Add(1)
		lastDone.Store(int64(time.Since(start)))
		if onOpen != nil {
			onOpen(i)
		}
	}
	raw := map[string]*rawURL{} // parsed targets of the pollers' connections
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			// Sleep only when well ahead: a sleep lasts at least about a
			// millisecond, so sleeping per connection would cap the rate.
			if d := time.Until(due); d > 2*time.Millisecond {
				time.Sleep(d)
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		url, c := target(i)
		if r.o.Protocol == "pusher" {
			url = pusherURL(url, r.o.PusherKey)
		}
		if r.polls != nil {
			ru, ok := raw[url]
			if !ok {
				ru = parseRawURL(url)
				raw[url] = ru
			}
			if ru != nil {
				// A poller opens it: no goroutine (poller_linux.go).
				if err := r.dialPolled(i, url, ru, c, opened); err != nil {
					opened(i, url, nil, 0, err)
				}
				continue
			}
		}
		go func(i int) {
			tok, err := r.subToken(i)
			if err != nil {
				opened(i, url, nil, 0, err)
				return
			}
			t0 := time.Now()
			var s *sub
			if r.o.Protocol == "pusher" {
				s, err = connectPusherSub(ctx, r.d, url, c, r.o.ReadBuffer)
			} else {
				s, err = connectSub(ctx, r.d, url, tok, c, r.o.ReadBuffer)
			}
			if err == nil {
				go s.loop()
			}
			opened(i, url, s, time.Since(t0), err)
		}(i)
	}
	wg.Wait()
	el := time.Duration(lastDone.Load())
	if el <= 0 {
		return 0, ch
	}
	return float64(nopen.Load()) / el.Seconds(), ch
}

// rawURL is a ws:// URL a poller can open connections to (an IP address).
type rawURL struct {
	u *url.URL
	t *rawTarget
}

func parseRawURL(s string) *rawURL {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "ws" {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	t, ok := parseRawTarget(u.Hostname(), port)
	if !ok {
		return nil
	}
	return &rawURL{u: u, t: t}
}

// dialPolled has a poller open subscriber i's connection to ru, subscribed
// to c; opened is called when it is live or failed.
func (r *runner) dialPolled(i int, url string, ru *rawURL, c *channel, opened func(int, string, *sub, time.Duration, error)) error {
	size := max(r.o.ReadBuffer, 512)
	s := &sub{c: &wsConn{fd: -1, size: size, rb: make([]byte, min(size, 4096))}, ch: c, done: make(chan struct{}),
		pusher: r.o.Protocol == "pusher"}
	dl := &dialing{req: upgradeRequest(ru.u), done: func(s *sub, el time.Duration, err error) {
		opened(i, url, s, el, err)
	}}
	if !s.pusher {
		tok, err := r.subToken(i)
		if err != nil {
			return err
		}
		// auth and subscribe leave in one write, as in connectSub.
		dl.frames = appendFrame(appendFrame(nil, 0x1, authFrame(tok)), 0x1, subscribeFrame(c.name))
	}
	dl.start = time.Now()
	dl.deadline = dl.start.Add(dialTimeout)
	return r.polls.dial(s, r.d, ru.t, dl)
}

// progress prints a live line every second until stop is closed.
func (r *runner) progress(stop <-chan struct{}, phase func() string) {
	if r.o.Quiet {
		return
	}
	tty := false
	if f, ok := r.o.Progress.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	start := time.Now()
	var lastRecv, lastSent uint64
	last := start
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			if tty {
				fmt.Fprintln(r.o.Progress)
			}
			return
		case now := <-t.C:
			recv, pres, open := r.totals()
			sent := r.sent()
			dt := now.Sub(last).Seconds()
			line := fmt.Sprintf("[%s %3.0fs] %s conns %d  sent %d (%.0f/s)  recv %.0f/s  presence %d  errors %d",
				r.o.Scenario, now.Sub(start).Seconds(), phase(), open, sent, float64(sent-lastSent)/dt,
				float64(recv+pres-lastRecv)/dt, pres, r.errs.Load())
			lastRecv, lastSent, last = recv+pres, sent, now
			if tty {
				fmt.Fprintf(r.o.Progress, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(r.o.Progress, line)
			}
		}
	}
}

// totals sums the subscribers' counters.
func (r *runner) totals() (recv, presence uint64, open int) {
	r.mu.Lock()
	subs := r.subs
	r.mu.Unlock()
	for _, s := range subs {
		recv += s.recv.Load()
		presence += s.presence.Load()
		select {
		case <-s.done:
		default:
			open++
		}
	}
	return recv, presence, open
}

func (r *runner) sent() uint64 {
	n := r.sentAPI.Load()
	r.mu.Lock()
	for _, p := range r.pubs {
		n += p.acked.Load()
	}
	r.mu.Unlock()
	return n
}

// closeAll closes every connection and waits for the read loops to end.
func (r *runner) closeAll() {
	r.mu.Lock()
	subs, pubs := r.subs, r.pubs
	r.mu.Unlock()
	// Stopped first, so no poller reads a socket being closed; a closed
	// socket just leaves the epoll set, with no event, so the subscribers
	// it still had are ended here.
	r.stopPollers()
	for _, s := range subs {
		s.c.close()
	}
	for _, p := range pubs {
		p.c.close()
	}
	for _, s := range subs {
		if s.polled {
			select {
			case <-s.done:
			default:
				close(s.done)
			}
			continue
		}
		<-s.done
	}
	for _, p := range pubs {
		<-p.done
	}
}

// serverRSS sums process_resident_memory_bytes over the API URLs; a node
// that does not answer is named in a note and counts 0.
func (r *runner) serverRSS(ctx context.Context) uint64 {
	rss, _ := r.serverStats(ctx)
	return uint64(rss)
}

// serverStats sums process_resident_memory_bytes and
// process_cpu_seconds_total over the API URLs.
func (r *runner) serverStats(ctx context.Context) (rss, cpu float64) {
	ctx = context.WithoutCancel(ctx) // also after the run's timeout
	for _, base := range r.o.API {
		m, err := scrapeMetrics(ctx, base, r.o.APIKey, "process_resident_memory_bytes", "process_cpu_seconds_total")
		if err != nil {
			r.note("server metrics of %s not read: %v", base, err)
			continue
		}
		rss += m[0]
		cpu += m[1]
	}
	return rss, cpu
}

// scrapeMetrics reads the named unlabelled metrics from base/metrics,
// which the server serves to the API key only.
func scrapeMetrics(ctx context.Context, base, apiKey string, names ...string) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := make([]float64, len(names))
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		for i, name := range names {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return nil, err
				}
				out[i] = f
				found++
			}
		}
	}
	if found < len(names) {
		return out, fmt.Errorf("/metrics lacks some of %s", strings.Join(names, ", "))
	}
	return out, nil
}

// selfCPU is the CPU time this process has used, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// settleServer asks the server to collect garbage (GET /debug/pprof/heap?gc=1,
// served when the server runs with --pprof) and gives the runtime a moment
// to return freed memory, so RSS shows what connections hold.
func (r *runner) settleServer(ctx context.Context) bool {
	ok := false
	for _, base := range r.o.API {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/debug/pprof/heap?gc=1", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
		}
		cancel()
	}
	time.Sleep(2 * time.Second)
	return ok
}

func ms(us uint64) float64 { return math.Round(float64(us)/10) / 100 }
