// Package bench is Eddy's load tool (eddy bench SCENARIO): it drives a
// running server over real sockets and measures delivered messages per
// second, publish-to-receive latency, loss, duplicates, connect rate and
// server memory. Every run is bounded in time and count.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Scenarios lists the scenario names, in help order.
var Scenarios = []string{"connections", "fanout", "channels", "batch", "presence", "functions", "cluster"}

// Options configure one run.
type Options struct {
	Scenario string
	WS       []string // ws://host:port/ws, one per node
	API      []string // http://host:port, one per node
	APIKey   string
	AdminKey string // functions scenario; empty: APIKey
	Secret   string

	Duration    time.Duration // publishing (or holding) time
	Conns       int           // connections, presence
	Rate        float64       // connect rate (connections, presence) or publish rate (others)
	Subscribers int           // fanout, functions, cluster; per channel in channels
	Channels    int           // channels; connections: distinct channels
	FromClient  bool          // publish over WebSockets instead of the HTTP API
	Batch       int           // batch: messages per POST /api/v1/batch (default 100)
	PubConns    int           // publisher connections or HTTP workers (0: derived from rate)
	Channel     string        // presence channel
	Concurrency int           // dials in flight
	ReadBuffer  int           // subscriber read buffer (bytes)
	DrainWait   time.Duration // how long to wait for stragglers after publishing
	Timeout     time.Duration // the whole run, whatever happens (default 5 minutes)
	Quiet       bool          // no progress line
	Protocol    string        // subscribers' protocol: eddy (default) or pusher (bench/pusher.go)
	PusherKey   string        // the Pusher app key, with Protocol pusher

	Progress io.Writer // live progress (stderr)
	Command  string    // the command line, for the JSON record
}

func (o *Options) defaults() {
	if len(o.WS) == 0 {
		o.WS = []string{"ws://127.0.0.1:8080/ws"}
	}
	if len(o.API) == 0 {
		o.API = make([]string, len(o.WS))
		for i, u := range o.WS {
			u = strings.TrimSuffix(u, "/ws")
			u = strings.Replace(u, "ws://", "http://", 1)
			o.API[i] = u
		}
	}
	if o.AdminKey == "" {
		o.AdminKey = o.APIKey
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = 2 << 10
		if o.Scenario != "connections" && o.Scenario != "presence" {
			o.ReadBuffer = 32 << 10
		}
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.DrainWait <= 0 {
		o.DrainWait = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	if o.Channel == "" {
		o.Channel = "chat:bench-presence"
	}
}

// Machine describes where the run happened.
type Machine struct {
	CPU       string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// Window is one slice of a growing run (presence, connections).
type Window struct {
	Members       int     `json:"members"`
	ConnectRate   float64 `json:"connect_rate"`
	DeliveredRate float64 `json:"delivered_per_sec"`
}

// Result is a run's figures; it is also the --json record.
type Result struct {
	Scenario    string    `json:"scenario"`
	Command     string    `json:"command"`
	Machine     Machine   `json:"machine"`
	Started     time.Time `json:"started"`
	DurationS   float64   `json:"duration_s"`
	TargetWS    []string  `json:"target_ws"`
	TargetAPI   []string  `json:"target_api"`
	Connections int       `json:"connections"`
	Subscribers int       `json:"subscribers"`
	Channels    int       `json:"channels"`
	Rate        float64   `json:"rate"`
	FromClient  bool      `json:"from_client"`

	Sent            uint64  `json:"sent"`
	SentPerSec      float64 `json:"sent_per_sec"`
	Expected        uint64  `json:"expected"`
	Received        uint64  `json:"received"`
	Lost            uint64  `json:"lost"`
	Duplicated      uint64  `json:"duplicated"`
	OffsetGaps      uint64  `json:"offset_gaps"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	WSMessages      uint64  `json:"ws_messages"` // WebSocket messages the deliveries came in (batching)
	P50ms           float64 `json:"p50_ms"`
	P99ms           float64 `json:"p99_ms"`
	P999ms          float64 `json:"p999_ms"`
	MaxMs           float64 `json:"max_ms"`

	ConnectRate    float64  `json:"connect_rate"`
	ConnectP99ms   float64  `json:"connect_p99_ms"`
	MinConnectRate float64  `json:"min_connect_rate,omitempty"`
	Dropped        uint64   `json:"dropped"` // connections that closed while they should have stayed
	Errors         uint64   `json:"errors"`
	ErrorSamples   []string `json:"error_samples,omitempty"`

	ServerRSSBefore uint64  `json:"server_rss_before_bytes"`
	ServerRSS       uint64  `json:"server_rss_bytes"`
	RSSPerConn      float64 `json:"server_rss_per_conn_bytes,omitempty"`
	ServerCPU       float64 `json:"server_cpu_seconds"` // during publishing and delivery
	BenchCPU        float64 `json:"bench_cpu_seconds"`  // the load tool's own, same span
	ServerCPUPerMsg float64 `json:"server_cpu_us_per_msg,omitempty"`
	// connections: server CPU while the connections were opened, per connection
	ServerCPUPerConn float64 `json:"server_cpu_us_per_conn,omitempty"`

	PresenceEvents   uint64   `json:"presence_events,omitempty"`
	PresenceExpected uint64   `json:"presence_expected,omitempty"`
	Windows          []Window `json:"windows,omitempty"`
	Notes            []string `json:"notes,omitempty"`
}

// Run executes one scenario.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &runner{o: o, res: &Result{
		Scenario: o.Scenario, Command: o.Command, Machine: machine(), Started: time.Now().UTC(),
		TargetWS: o.WS, TargetAPI: o.API, Rate: o.Rate, FromClient: o.FromClient,
	}}
	r.runID = newRunID()
	r.d = &dialer{perAddr: portsPerAddr()}
	if lim, err := raiseNoFile(); err == nil {
		r.fdLimit = lim
	}
	// One poller per core opens and reads the subscribers (poller_linux.go).
	if ps, err := startPollers(runtime.GOMAXPROCS(0), o.ReadBuffer); err == nil {
		r.polls = ps
		defer r.stopPollers()
	}
	if err := o.checkProtocol(); err != nil {
		return nil, err
	}
	if o.Protocol == "pusher" {
		r.note("subscribers speak the Pusher protocol (one WebSocket message per event)")
	}
	if len(o.Secret) < 32 {
		return nil, fmt.Errorf("no token secret (or shorter than 32 bytes): pass --secret, or run where eddy.yaml is / pass --config")
	}
	var err error
	switch o.Scenario {
	case "connections":
		err = r.connections(ctx)
	case "fanout", "cluster":
		if o.Scenario == "cluster" && len(o.WS) < 2 {
			r.note("cluster with one --ws URL is a plain fanout; repeat --ws and --api for each node")
		}
		err = r.pubsub(ctx, 1, max(o.Subscribers, 1), "bench-fanout-"+r.runID)
	case "channels":
		err = r.pubsub(ctx, max(o.Channels, 1), max(o.Subscribers, 1), "bench-ch-"+r.runID)
	case "batch":
		if o.FromClient {
			return nil, fmt.Errorf("batch publishes through the HTTP API: drop --from-client")
		}
		err = r.pubsub(ctx, max(o.Channels, 1), max(o.Subscribers, 1), "bench-batch-"+r.runID)
	case "functions":
		err = r.functions(ctx)
	case "presence":
		err = r.presence(ctx)
	default:
		return nil, fmt.Errorf("unknown scenario %q: one of %s", o.Scenario, strings.Join(Scenarios, ", "))
	}
	if ctx.Err() != nil {
		r.note("stopped early: %v (--timeout %s)", ctx.Err(), o.Timeout)
	}
	r.res.Errors += r.errs.Load()
	r.res.ErrorSamples = r.samples()
	return r.res, err
}

// runner holds one run's shared state.
type runner struct {
	o       Options
	res     *Result
	runID   string
	d       *dialer
	fdLimit uint64
	errs    atomic.Uint64

	tokMu  sync.Mutex
	tokens [1024]string

	mu      sync.Mutex
	samp    map[string]int
	subs    []*sub
	pubs    []*pubConn
	sentAPI atomic.Uint64

	batchTransport *http.Transport // batch scenario's HTTP pool

	polls     *pollers // nil: a read goroutine per subscriber
	pollsStop sync.Once
}

func (r *runner) stopPollers() {
	if r.polls != nil {
		r.pollsStop.Do(r.polls.stop)
	}
}

func (r *runner) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.res.Notes = append(r.res.Notes, msg)
	r.mu.Unlock()
	if !r.o.Quiet {
		fmt.Fprintln(r.o.Progress, "note:", msg)
	}
}

// fail counts an error and keeps a few distinct examples.
func (r *runner) fail(err error) {
	r.mu.Lock()
	r.failLocked(err)
	r.mu.Unlock()
}

// failLocked is fail with r.mu held.
func (r *runner) failLocked(err error) {
	r.errs.Add(1)
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	if r.samp == nil {
		r.samp = map[string]int{}
	}
	if _, ok := r.samp[msg]; ok || len(r.samp) < 8 {
		r.samp[msg]++
	}
}

func (r *runner) samples() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for m, n := range r.samp {
		out = append(out, fmt.Sprintf("%d× %s", n, m))
	}
	sort.Strings(out)
	return out
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// raiseNoFile lifts the soft open-files limit to the hard one.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}

// portsPerAddr is how many connections one source address takes before the
// dialer moves on: the ephemeral range, less a margin for TIME_WAIT leftovers.
func portsPerAddr() int {
	n := 28000
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil && hi > lo {
			n = hi - lo + 1
		}
	}
	return n * 2 / 3
}

// checkFDs says plainly when the run needs more descriptors than it has.
func (r *runner) checkFDs(n int) error {
	if r.fdLimit > 0 && uint64(n)+64 > r.fdLimit {
		return fmt.Errorf("%d connections need more open files than this process may have (limit %d, the hard limit); raise it (ulimit -Hn) or run several bench processes", n, r.fdLimit)
	}
	return nil
}

// WriteJSON writes res to path.
func WriteJSON(path string, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints res as a two-column table.
func WriteTable(w io.Writer, res *Result) {
	row := func(k string, v any) { fmt.Fprintf(w, "  %-22s %v\n", k, v) }
	fmt.Fprintf(w, "eddy bench %s  (%s, %d cores, %s)\n", res.Scenario, res.Machine.CPU, res.Machine.Cores, res.Machine.GoVersion)
	row("duration", fmt.Sprintf("%.1fs", res.DurationS))
	if res.Connections > 0 {
		row("connections", res.Connections)
	}
	if res.Subscribers > 0 {
		row("subscribers", res.Subscribers)
	}
	if res.Channels > 0 {
		row("channels", res.Channels)
	}
	if res.Sent > 0 || res.Scenario != "connections" && res.Scenario != "presence" {
		row("sent", fmt.Sprintf("%d (%.0f/s)", res.Sent, res.SentPerSec))
		row("received", fmt.Sprintf("%d of %d expected", res.Received, res.Expected))
		row("lost", res.Lost)
		row("duplicated", res.Duplicated)
		row("offset gaps", res.OffsetGaps)
		row("delivered msgs/s", fmt.Sprintf("%.0f", res.DeliveredPerSec))
		if res.WSMessages > 0 {
			row("batching", fmt.Sprintf("%.1f msgs per WebSocket message", float64(res.Received)/float64(res.WSMessages)))
		}
		row("latency p50/p99", fmt.Sprintf("%.2f / %.2f ms", res.P50ms, res.P99ms))
		row("latency p999/max", fmt.Sprintf("%.2f / %.2f ms", res.P999ms, res.MaxMs))
	}
	if res.ConnectRate > 0 {
		row("connect rate", fmt.Sprintf("%.0f/s (p99 connect %.1f ms)", res.ConnectRate, res.ConnectP99ms))
	}
	if res.MinConnectRate > 0 {
		row("min connect rate", fmt.Sprintf("%.0f/s", res.MinConnectRate))
	}
	if res.PresenceEvents > 0 || res.Scenario == "presence" {
		row("presence events", fmt.Sprintf("%d (one per join would be %d)", res.PresenceEvents, res.PresenceExpected))
		row("delivered events/s", fmt.Sprintf("%.0f", res.DeliveredPerSec))
	}
	row("dropped connections", res.Dropped)
	row("errors", res.Errors)
	for _, s := range res.ErrorSamples {
		row("", s)
	}
	if res.ServerRSS > 0 {
		row("server RSS", fmt.Sprintf("%.1f MiB (before %.1f MiB)", float64(res.ServerRSS)/(1<<20), float64(res.ServerRSSBefore)/(1<<20)))
	}
	if res.RSSPerConn > 0 {
		row("server RSS/conn", fmt.Sprintf("%.2f KiB", res.RSSPerConn/1024))
	}
	switch {
	case res.ServerCPUPerConn > 0:
		row("CPU server/bench", fmt.Sprintf("%.2fs / %.2fs while connecting (server %.1f µs per connection)", res.ServerCPU, res.BenchCPU, res.ServerCPUPerConn))
	case res.ServerCPU > 0:
		row("CPU server/bench", fmt.Sprintf("%.2fs / %.2fs (server %.2f µs per delivered msg)", res.ServerCPU, res.BenchCPU, res.ServerCPUPerMsg))
	}
	for _, win := range res.Windows {
		row(fmt.Sprintf("at %d", win.Members), fmt.Sprintf("connect %.0f/s, delivered %.0f/s", win.ConnectRate, win.DeliveredRate))
	}
	for _, n := range res.Notes {
		row("note", n)
	}
}
