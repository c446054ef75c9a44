// Package server runs one Eddy node: it accepts WebSocket clients and HTTP
// API calls, authenticates them, and connects them to the hub and broker.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/apps"
	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/memory"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions/fnlog"
	"github.com/eddyrt/eddy/internal/hub"
	"github.com/eddyrt/eddy/internal/outbox"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/status"
)

// App is one application's isolated space: its secret, keys and channels.
// A node serves one today; keeping these out of globals lets it serve many.
type App struct {
	Verifier *auth.Verifier
	Secret   []byte
	APIKey   string
	// APIKeys are every key the API accepts: APIKey then api_keys.
	APIKeys  []string
	AdminKey string
	jwks     *auth.JWKS // nil without jwks_url
}

// Middleware runs a message through user functions before it is published.
// It returns every message to publish, in order; an error refuses the
// publish (a *protocol.Error with code rejected or bad_request says why).
type Middleware interface {
	Apply(ctx context.Context, m *protocol.Message, info json.RawMessage) ([]*protocol.Message, error)
}

// ChannelFilter is a Middleware's optional ability to tell cheaply whether
// Apply may change or refuse a message of a channel (functions.Pipeline):
// most channels have no function, and Apply's copies of the message cost
// two allocations a publish. Resolved once, with the Middleware (appState).
type ChannelFilter interface {
	Touches(channel string) bool
}

// Options assemble a server; only Config is required.
type Options struct {
	Config   config.Config
	Logger   *slog.Logger
	Broker   broker.Broker        // nil: in-memory; when set, its creator closes it after Shutdown
	Presence broker.PresenceStore // nil: the broker, if it keeps presence
	// Functions, when set, sees every publish.
	Functions Middleware
	// AdminHandler, when set, serves the admin API (functions) behind the
	// admin key; with no admin_key it answers admin_disabled (admin.go).
	AdminHandler http.Handler
	// NodeID names this node (default: random); cluster brokers share theirs.
	NodeID string
	// Registry, when set, receives the server's metrics (so parts built
	// before the server, like functions, can share it).
	Registry *prometheus.Registry
	// ExtraHandlers are mounted on the client listener as given (e.g. /eddy.js, the demo).
	ExtraHandlers map[string]http.Handler
	// Webhooks, when set, hears of occupancy, members and refusals (webhooks.go).
	Webhooks Webhooks
	// Status, when set, is the status feed ($admin:status) the server runs
	// (node.Build relays it across the cluster); nil: one of this node only.
	Status *status.Feed
	// FunctionLogs, when set, serves GET /api/v1/functions/{name}/logs
	// behind the admin key (oplogs.go).
	FunctionLogs *fnlog.Store
	// PusherEvents, when set, receives client events and cache misses of
	// the Pusher protocol (for its webhooks).
	PusherEvents PusherEvents
	// Notices, when set, brings the console's cluster notices (a user's
	// connections, listed or disconnected on every node) from the broker
	// to the server (console_cluster.go).
	Notices *NoticeRelay
	// AppStore keeps the apps beside the default one (apps.go); nil: in
	// memory, until the process ends.
	AppStore apps.Store
	// AppNotices, when set, says the apps changed elsewhere: each receive
	// reloads them from AppStore (appsync.go).
	AppNotices <-chan struct{}
	// AppFunctions, when set, gives each app but the default one its own
	// functions (its publishes' Middleware and its admin API).
	AppFunctions AppFunctions

	// writeDelay, set only by tests (export_test.go), replaces write_delay
	// beyond its limit: a window of an hour makes "a reply never waits for
	// the window" a question of order, not of timing.
	writeDelay time.Duration
	// pusherActivity, set only by tests, replaces the Pusher activity_timeout (seconds).
	pusherActivity int
}

// Server is one running node.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	app      *App
	apps     *appSet // every app served, the default one included (apps.go)
	broker   broker.Broker
	presence broker.PresenceStore // abil.Presence: nil when presence is not kept
	hub      *hub.Hub
	funcs    Middleware
	metrics  *metrics
	upgrader *gws.Upgrader
	opts     Options
	tls      *tls.Config // nil: plain listeners (tls.go)

	abil       broker.Abilities // the broker's optional abilities, resolved once
	ownsBroker bool             // the server created broker, so Shutdown closes it
	// releaseCtx bounds closing connections' releasing calls (conn.teardown);
	// Shutdown cancels it when its own deadline passes.
	releaseCtx    context.Context
	cancelRelease context.CancelFunc

	nodeID  string
	started time.Time
	ids     atomic.Uint64 // message and connection ids

	conns    connSet
	sseConns sync.Map // SSE session id → *conn (sse.go)
	writers  *outbox.Pool
	handlers *handlerPool
	draining atomic.Bool
	// fastRequests counts the requests the API fast path served
	// (apiconn.go), for tests.
	fastRequests atomic.Int64
	limits       *connLimits // limits.go
	apiRoutes    []string    // "METHOD /path" of the HTTP API, set by mountAPI
	// dropLogged is when a dropped frame was last logged (unix nanoseconds).
	dropLogged atomic.Int64
	status     *status.Feed // the $admin:status feed (status.go)
	statusSubs statusSubs
	pusher     *pusherNode // the Pusher protocol (pusher_*.go)
	// stats samples the node's figures for the console (stats.go).
	stats   *statsSampler
	pending pendingAsks // the console's questions to the cluster awaiting replies (console_cluster.go)

	mu        sync.Mutex
	listeners []net.Listener
	servers   []*http.Server
	stop      chan struct{}
	stopped   sync.WaitGroup
}

// New builds a server from opts; Start makes it listen.
func New(opts Options) (*Server, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Secret == "" && len(cfg.JWTKeys) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("secret: missing (or set jwt_keys or jwks_url to verify tokens)")
	}
	if cfg.APIKey == "" {
		return nil, errors.New("api_key: missing")
	}
	for _, p := range append(append([]string(nil), cfg.DefaultChannels...), cfg.AllowedOrigins...) {
		if p == "" {
			return nil, errors.New("default_channels/allowed_origins: empty pattern")
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	app, err := newApp(cfg, log)
	if err != nil {
		return nil, err
	}
	tlsConf, err := newTLSConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		broker:  opts.Broker,
		funcs:   opts.Functions,
		opts:    opts,
		nodeID:  opts.NodeID,
		started: time.Now(),
		stop:    make(chan struct{}),
		app:     app,
		tls:     tlsConf,
	}
	if opts.writeDelay > 0 {
		s.cfg.WriteDelay = opts.writeDelay
	}
	if s.nodeID == "" {
		s.nodeID = newNodeID()
	}
	if s.app.AdminKey != "" && s.app.AdminKey == cfg.APIKey {
		log.Warn("admin_key equals api_key: every backend that can publish can also deploy functions; give the admin API its own key")
	}
	if s.broker == nil {
		s.broker = memory.NewWithOptions(memory.Options{MaxHistoryBytes: cfg.MaxHistoryBytes})
		s.ownsBroker = true
	}
	s.abil = broker.Resolve(s.broker, opts.Presence)
	s.presence = s.abil.Presence
	s.releaseCtx, s.cancelRelease = context.WithCancel(context.Background())
	s.conns.init()
	s.writers = newWriterPool()
	s.handlers = newHandlerPool()
	s.hub = hub.New(s.broker)
	if opts.Webhooks != nil {
		s.hub.SetObserver(opts.Webhooks)
	}
	if opts.AppStore == nil {
		opts.AppStore = apps.NewMemStore()
	}
	s.apps = s.newAppSet(app, opts.AppStore)
	s.metrics = newMetrics(s)
	s.limits = s.newConnLimits()
	s.stats = newStatsSampler(s)
	s.attachNotices(opts.Notices)
	s.registerHistoryMetrics()
	s.status = opts.Status
	if s.status == nil {
		s.status = s.newStatusFeed()
	}
	s.statusSubs.subs = map[*conn]func(){}
	s.pusher = newPusherNode(s)
	s.registerAppMetrics()
	s.upgrader = gws.NewUpgrader(&wsHandler{s: s}, &gws.ServerOption{
		// The hard cap gws enforces; frames between max_message_bytes and
		// this get a too_large error and the connection stays up.
		ReadMaxPayloadSize:  cfg.MaxMessageBytes*2 + 4096,
		WriteMaxPayloadSize: 64 << 20,
		// Off: the writers check outgoing frames themselves and drop a bad
		// one (gws would close the connection for it), and OnMessage checks
		// incoming text frames; gws checking too would double the cost.
		CheckUtf8Enabled:  false,
		NewSession:        func() gws.SessionStorage { return &connSlot{} },
		PermessageDeflate: deflateOption(cfg.Compression),
	})
	return s, nil
}

func newNodeID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// NodeID names this node.
func (s *Server) NodeID() string { return s.nodeID }

// Hub exposes the node's hub (for tests and the benchmark harness).
func (s *Server) Hub() *hub.Hub { return s.hub }

// Registry exposes the server's metrics registry so other parts (functions) add theirs.
func (s *Server) Registry() prometheus.Registerer { return s.metrics.registry }

// nextID returns a node-unique id with prefix, e.g. "m-ABC12-42".
func (s *Server) nextID(prefix string) string {
	n := s.ids.Add(1)
	b := make([]byte, 0, 24)
	b = append(b, prefix...)
	b = append(b, s.nodeID...)
	b = append(b, '-')
	b = strconv.AppendUint(b, n, 36)
	return string(b)
}

// Start begins listening and serving; it returns once the listeners are bound.
func (s *Server) Start(ctx context.Context) error {
	if err := s.broker.Start(ctx, s.apps.demux); err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	if err := s.syncApps(ctx); err != nil {
		return fmt.Errorf("load apps: %w", err)
	}
	s.app.prefetchKeys(ctx, s.log)
	clientMux := http.NewServeMux()
	clientMux.HandleFunc("GET /ws", s.handleWebSocket)
	s.mountSSE(clientMux)
	for pattern, h := range s.opts.ExtraHandlers {
		clientMux.Handle(pattern, h)
	}
	apiMux := clientMux
	if s.cfg.APIListen != "" {
		apiMux = http.NewServeMux()
		apiMux.HandleFunc("GET /healthz", s.handleHealth)
		apiMux.HandleFunc("GET /readyz", s.handleReady)
	}
	clientMux.HandleFunc("GET /healthz", s.handleHealth)
	clientMux.HandleFunc("GET /readyz", s.handleReady)
	s.mountAPI(apiMux)
	s.mountPusher(clientMux, apiMux)

	if err := s.listen(s.cfg.Listen, clientMux, true); err != nil {
		return err
	}
	if s.cfg.APIListen != "" {
		if err := s.listen(s.cfg.APIListen, apiMux, false); err != nil {
			s.closeListeners()
			return err
		}
	}
	s.stopped.Add(1)
	go s.pingLoop()
	s.stopped.Add(1)
	go s.stats.loop()
	if s.abil.Readiness != nil {
		s.stopped.Add(1)
		go s.watchBroker(s.abil.Readiness)
	}
	if s.abil.Nodes != nil {
		s.stopped.Add(1)
		go s.announceLoop(s.abil.Nodes)
	}
	s.stopped.Add(1)
	go func() {
		defer s.stopped.Done()
		s.status.Run(s.stop)
	}()
	if s.opts.FunctionLogs != nil {
		s.stopped.Add(1)
		go func() {
			defer s.stopped.Done()
			s.opts.FunctionLogs.Run(s.stop)
		}()
	}
	if s.opts.AppNotices != nil {
		s.stopped.Add(1)
		go s.watchAppNotices(s.opts.AppNotices)
	}
	return nil
}

// onlyMethod answers other methods with a JSON 405, which a method pattern
// would not do while the /api/ catch-all exists.
func onlyMethod(method string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeAPIError(w, http.StatusMethodNotAllowed, protocol.CodeBadRequest, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, method))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// listen serves h on addr; ws: WebSocket handshakes are accepted before
// net/http (wsaccept.go).
func (s *Server) listen(addr string, h http.Handler, ws bool) error {
	ln, err := listenTCP(addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	ln = s.wrapTLS(ln)
	// TLS connections pass straight through to net/http (wsaccept.go).
	ln = s.acceptFast(ln, h, ws)
	srv := &http.Server{
		Handler: h,
		// Idle keep-alive connections and slow requests are closed, so
		// they cannot pile up; a WebSocket clears these deadlines once
		// upgraded (ws.go) and is then watched by pings instead.
		ReadHeaderTimeout: min(10*time.Second, s.cfg.HTTPReadTimeout),
		ReadTimeout:       s.cfg.HTTPReadTimeout,
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.listeners = append(s.listeners, ln)
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "addr", addr, "err", err)
		}
	}()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.listeners {
		_ = ln.Close()
	}
}

// Addr is the client listener's address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.addr(0) }

// APIAddr is the API listener's address: Addr unless api_listen is set.
func (s *Server) APIAddr() net.Addr {
	if s.cfg.APIListen != "" {
		return s.addr(1)
	}
	return s.addr(0)
}

func (s *Server) addr(i int) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.listeners) {
		return nil
	}
	return s.listeners[i].Addr()
}

// Shutdown drains the node: readiness goes false, listeners close, in-flight
// API calls finish, then every client is closed with 1012 so it reconnects
// elsewhere, spread evenly over drain_duration (drain.go). Each connection
// tears itself down on its own goroutine; when ctx ends, their releasing
// broker calls are cut short. It returns when done or when ctx ends. It
// closes the broker only when the server created it (Options.Broker nil).
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	s.mu.Lock()
	servers := append([]*http.Server(nil), s.servers...)
	s.mu.Unlock()
	var firstErr error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("drain HTTP: %w", err)
		}
	}
	s.mu.Lock()
	listeners := append([]net.Listener(nil), s.listeners...)
	s.mu.Unlock()
	for _, ln := range listeners {
		if fl, ok := ln.(*frontListener); ok {
			if err := fl.waitAPI(ctx); err != nil && firstErr == nil {
				firstErr = fmt.Errorf("drain HTTP API: %w", err)
			}
		}
	}
	giveUp := context.AfterFunc(ctx, s.cancelRelease)
	defer giveUp()
	// Each connection tears itself down on its own goroutine: one stuck
	// broker call holds up only its connection, and none past ctx. The
	// closes are spread over drain_duration (drain.go).
	s.drain(ctx, protocol.DisconnectShutdown)
	if err := s.conns.waitEmpty(ctx); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("close connections: %w", err)
	}
	s.stopped.Wait()
	s.writers.Close() // its parked writers; a late write still gets one
	if s.ownsBroker {
		if err := s.broker.Close(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("close broker: %w", err)
		}
	}
	return firstErr
}

// pingLoop pings every connection each interval and drops those silent for
// two: one goroutine for the node instead of a timer per connection.
func (s *Server) pingLoop() {
	defer s.stopped.Done()
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			deadline := now.Add(-2 * s.cfg.PingInterval).UnixNano()
			s.conns.each(func(c *conn) {
				if c.lastRead.Load() < deadline {
					c.closeWith(protocol.DisconnectPingTimeout, false)
					return
				}
				c.out.Ping()
			})
		}
	}
}

// watchBroker reacts to the broker losing its backing service. While it is
// away, clients stay connected and publishes fail with unavailable. When it
// returns, messages may have been missed in between, so every subscription
// is resynchronised over its open connection (resync.go): it gets what it
// missed from history, or a subscribed frame with recovered:false.
func (s *Server) watchBroker(r broker.Readiness) {
	defer s.stopped.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	wasReady := r.Ready()
	// A short outage can come and go between two looks at Ready; a broker
	// that counts its reconnects tells us anyway.
	counter, counts := s.abil.Reconnects, s.abil.Reconnects != nil
	var connects uint64
	if counts {
		connects = counter.Connects()
	}
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ready := r.Ready()
		reconnected := !wasReady && ready
		if counts && ready {
			n := counter.Connects()
			reconnected = reconnected || n != connects
			connects = n
		}
		if wasReady && !ready {
			s.log.Warn("broker unavailable: publishes fail with 503 until it returns")
		}
		if reconnected {
			s.log.Info("broker available again: resynchronising subscriptions from history", "connections", s.conns.len())
			s.conns.each(func(c *conn) { c.resyncAll() })
		}
		wasReady = ready
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

func (s *Server) ready() bool {
	return !s.draining.Load() && s.abil.Ready()
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !s.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"ready":false}`))
		return
	}
	_, _ = w.Write([]byte(`{"ready":true}`))
}

// DropConnections cuts every client's TCP connection without a close frame,
// as a network failure would. Tests use it to exercise recovery.
func (s *Server) DropConnections() {
	s.conns.each(func(c *conn) { c.abort() })
}
