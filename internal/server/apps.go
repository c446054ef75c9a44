package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/time/rate"

	"github.com/eddyrt/eddy/internal/apps"
	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/hub"
	"github.com/eddyrt/eddy/internal/protocol"
)

// appState is one app's life on this node: its hub and its prefixed views
// of the broker and presence store, which last as long as the app, and its
// settings (keys, namespaces, limits), replaced whole when the app changes.
// Every "which app?" question of a request ends at one of the lookups
// below (appForToken, appForAPIKey, appForAdminKey, appByID).
type appState struct {
	id       string
	prefix   string // "" for the default app
	hub      *hub.Hub
	broker   broker.Broker
	presence broker.PresenceStore // nil when presence is not kept
	sampler  broker.MemberSampler // nil without the ability
	funcs    Middleware           // nil: no functions; set with setFuncs
	// funcFilter is funcs' ChannelFilter ability; nil: Apply for every channel.
	funcFilter ChannelFilter
	admin      http.Handler // the app's admin API (functions); nil: none

	conf      atomic.Pointer[appConfig]
	conns     atomic.Int64  // authenticated connections on this node
	published atomic.Uint64 // messages published through this node
	rate      *rate.Limiter // max_publish_rate on this node, nil until set
	rateMu    sync.Mutex    // rate and the publish rate figures below
	rateAt    time.Time     // when rateN was read (appstats.go)
	rateN     uint64
	lastRate  float64
	deleted   atomic.Bool
	pusher    pusherChannels // its Pusher fan-outs (pusher_apps.go)
}

// setFuncs sets the app's functions and resolves their abilities.
func (a *appState) setFuncs(f Middleware) {
	a.funcs = f
	a.funcFilter, _ = f.(ChannelFilter)
}

// appConfig is an app's settings at one moment; never changed in place.
type appConfig struct {
	model    *apps.App // nil for the default app (eddy.yaml)
	verifier *auth.Verifier
}

func (a *appState) isDefault() bool { return a.prefix == "" }

// channelOptions returns the options of channel's namespace in this app.
func (s *Server) channelOptions(a *appState, channel string) config.ChannelOptions {
	if m := a.conf.Load().model; m != nil {
		return m.ChannelOptionsFor(channel)
	}
	return s.cfg.ChannelOptionsFor(channel)
}

// maxMessageBytes is the app's max_message_bytes, never above the node's.
func (s *Server) maxMessageBytes(a *appState) int {
	if m := a.conf.Load().model; m != nil && m.Limits.MaxMessageBytes > 0 {
		return min(m.Limits.MaxMessageBytes, s.cfg.MaxMessageBytes)
	}
	return s.cfg.MaxMessageBytes
}

// allowPublish takes a token from the app's max_publish_rate bucket,
// shared by its API and its clients on this node.
func (a *appState) allowPublish() bool {
	m := a.conf.Load().model
	if m == nil || m.Limits.MaxPublishRate <= 0 {
		return true
	}
	a.rateMu.Lock()
	lim := rate.Limit(m.Limits.MaxPublishRate)
	burst := max(int(m.Limits.MaxPublishRate), 1)
	if a.rate == nil {
		a.rate = rate.NewLimiter(lim, burst)
	} else if a.rate.Limit() != lim {
		a.rate.SetLimit(lim)
		a.rate.SetBurst(burst)
	}
	ok := a.rate.Allow()
	a.rateMu.Unlock()
	return ok
}

// appRateError names the app's limit.
func appRateError(a *appState) error {
	return protocol.Errorf(protocol.CodeRateLimited, "app %q is over its max_publish_rate (%g messages per second on this node, API and clients together)", a.id, a.conf.Load().model.Limits.MaxPublishRate)
}

// admitConn takes one of the app's max_connections slots.
func (a *appState) admitConn() bool {
	m := a.conf.Load().model
	if m == nil || m.Limits.MaxConnections <= 0 {
		a.conns.Add(1)
		return true
	}
	for {
		n := a.conns.Load()
		if n >= int64(m.Limits.MaxConnections) {
			return false
		}
		if a.conns.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// appSet is every app this node serves: the default one, always, and
// those of the registry, kept in step with it by syncApps.
type appSet struct {
	def   *appState
	reg   *apps.Registry
	store apps.Store
	demux *appDemux
	mu    sync.Mutex // syncApps, one at a time
	byID  atomic.Pointer[map[string]*appState]
	// changes serialises this node's writes to the store (read, change, write).
	changes sync.Mutex
}

// newAppSet builds the default app's state over the node's own hub and
// broker (no prefix, so a single-app install is unchanged).
func (s *Server) newAppSet(def *App, store apps.Store) *appSet {
	d := &appState{id: apps.DefaultID, hub: s.hub, broker: s.broker, presence: s.presence, sampler: s.abil.Sampler}
	d.setFuncs(s.funcs)
	d.conf.Store(&appConfig{verifier: def.Verifier})
	set := &appSet{def: d, reg: apps.NewRegistry(), store: store, demux: &appDemux{def: s.hub}}
	empty := map[string]*appState{}
	set.byID.Store(&empty)
	set.demux.apps.Store(&empty)
	return set
}

// newAppState builds the live state of a non-default app.
func (s *Server) newAppState(m *apps.App) *appState {
	p := m.Prefix()
	a := &appState{id: m.ID, prefix: p}
	a.broker = &appBroker{b: s.broker, prefix: p}
	if s.presence != nil {
		a.presence = &appPresence{p: s.presence, prefix: p}
	}
	if s.abil.Sampler != nil {
		a.sampler = &appSampler{s: s.abil.Sampler, prefix: p}
	}
	a.hub = hub.New(a.broker)
	s.observeApp(a) // webhooks_apps.go
	return a
}

func (s *Server) verifierFor(m *apps.App) (*auth.Verifier, error) {
	keys := make([]auth.Key, 0, len(m.JWTKeys))
	for _, k := range m.JWTKeys {
		key, err := auth.NewHMACKey(k.ID, []byte(k.Secret))
		if err != nil {
			return nil, fmt.Errorf("app %s: jwt key %s: %w", m.ID, k.ID, err)
		}
		keys = append(keys, key)
	}
	return auth.NewKeyVerifier(keys, nil, s.cfg.DefaultChannels)
}

// syncApps loads the store into the registry and brings the node's app
// states in step: new apps get a state, changed ones their new settings,
// and a deleted app's clients are closed (4011, not to reconnect).
func (s *Server) syncApps(ctx context.Context) error {
	set := s.apps
	if set.store == nil {
		return nil
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	list, loadErr := set.store.Load(ctx)
	if list == nil && loadErr != nil {
		return loadErr
	}
	setErr := set.reg.Set(list)
	old := *set.byID.Load()
	next := make(map[string]*appState, len(list))
	for _, m := range set.reg.List() {
		v, err := s.verifierFor(m)
		if err != nil {
			s.log.Warn("app left out", "app", m.ID, "err", err)
			continue
		}
		a := old[m.ID]
		if a == nil {
			a = s.newAppState(m)
			if f := s.opts.AppFunctions; f != nil {
				var err error
				var funcs Middleware
				if funcs, a.admin, err = f.Open(m.ID); err != nil {
					s.log.Warn("app left out: its functions did not load", "app", m.ID, "err", err)
					continue
				}
				a.setFuncs(funcs)
			}
		}
		a.conf.Store(&appConfig{model: m, verifier: v})
		s.appWebhooksChanged(m.ID, m)
		next[m.ID] = a
	}
	set.byID.Store(&next)
	set.demux.apps.Store(&next)
	for id, a := range old {
		if next[id] == nil {
			s.appWebhooksChanged(id, nil)
			s.dropApp(a)
		}
	}
	if loadErr != nil {
		return loadErr
	}
	return setErr
}

// dropApp closes a deleted app's clients on this node; they are told not
// to reconnect.
func (s *Server) dropApp(a *appState) {
	a.deleted.Store(true)
	s.conns.each(func(c *conn) {
		if c.app.Load() == a {
			c.closeWith(protocol.DisconnectAppDeleted, true)
		}
	})
	if f := s.opts.AppFunctions; f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.Drop(ctx, a.id); err != nil {
			s.log.Warn("app deleted, but removing its functions failed", "app", a.id, "err", err)
		}
	}
}

// AppFunctions makes and removes the functions of apps other than the
// default one (node.Build provides it).
type AppFunctions interface {
	// Open returns app id's functions, as publish middleware and as its
	// admin API handler; opening an open app returns the same engine.
	Open(id string) (Middleware, http.Handler, error)
	// Drop stops app id's functions and deletes what they stored.
	Drop(ctx context.Context, id string) error
}

// appByID finds an app by id ("default" is the default app).
func (s *Server) appByID(id string) (*appState, bool) {
	if id == "" || id == apps.DefaultID {
		return s.apps.def, true
	}
	a, ok := (*s.apps.byID.Load())[id]
	return a, ok
}

// tokenApp reads the app claim of a token without verifying it: which
// app's keys verify the token depends on it. "" when there is none.
func tokenApp(token string) string {
	i := strings.IndexByte(token, '.')
	if i < 0 {
		return ""
	}
	rest := token[i+1:]
	j := strings.IndexByte(rest, '.')
	if j < 0 {
		return ""
	}
	// Most tokens' claims are small enough to decode on the stack (a larger
	// frame would grow the handler goroutines' stacks).
	var buf [512]byte
	var payload []byte
	if seg := rest[:j]; base64.RawURLEncoding.DecodedLen(len(seg)) <= len(buf) {
		// Decode only reads seg: no copy of it needed.
		n, err := base64.RawURLEncoding.Decode(buf[:], unsafe.Slice(unsafe.StringData(seg), len(seg)))
		if err != nil {
			return ""
		}
		payload = buf[:n]
	} else {
		var err error
		if payload, err = base64.RawURLEncoding.DecodeString(seg); err != nil {
			return ""
		}
	}
	if !mayHaveAppClaim(payload) {
		return ""
	}
	return appClaim(bytes.Clone(payload)) // a copy: json.Unmarshal would move buf to the heap
}

// appClaim decodes the app claim of a token's claims.
func appClaim(payload []byte) string {
	var c struct {
		App string `json:"app"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.App
}

// mayHaveAppClaim reports whether json.Unmarshal could find an app member
// in payload: encoding/json matches member names without regard to ASCII
// case ("app" has no letter with a non-ASCII fold) and a name with an
// escape could spell anything. Default-app tokens have no such member, and
// skipping the decode saves a few percent of the CPU of a new connection.
func mayHaveAppClaim(payload []byte) bool {
	if bytes.IndexByte(payload, '\\') >= 0 {
		return true
	}
	for i := 0; i+4 <= len(payload); i++ {
		if payload[i]|0x20 == 'a' && payload[i+1]|0x20 == 'p' && payload[i+2]|0x20 == 'p' && payload[i+3] == '"' {
			return true
		}
	}
	return false
}

// appForToken finds the app a token's app claim names and verifies the
// token with that app's keys only: a token signed with app A's key that
// claims app B fails. No claim: the default app.
func (s *Server) appForToken(token string) (*appState, *auth.Identity, error) {
	id := tokenApp(token)
	a, ok := s.appByID(id)
	if !ok {
		return nil, nil, fmt.Errorf("token claim app: no app %q", truncateName(id))
	}
	ident, err := a.conf.Load().verifier.Verify(token)
	if err != nil {
		return nil, nil, err
	}
	return a, ident, nil
}

// appForAPIKey finds the app whose API key key is; ok false when none.
// The default app's keys are compared in constant time (apiAuth); app
// keys are found by a map lookup, whose time depends on a hash of the key.
func (s *Server) appForAPIKey(key string) (*appState, bool) {
	m, ok := s.apps.reg.ByAPIKey(key)
	if !ok {
		return nil, false
	}
	return s.appByID(m.ID)
}

// appForAdminKey finds the app whose admin key key is.
func (s *Server) appForAdminKey(key string) (*appState, bool) {
	m, ok := s.apps.reg.ByAdminKey(key)
	if !ok {
		return nil, false
	}
	return s.appByID(m.ID)
}

func truncateName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

type appCtxKey struct{}

// withApp records the app an API request was authenticated for.
func withApp(ctx context.Context, a *appState) context.Context {
	return context.WithValue(ctx, appCtxKey{}, a)
}

// appOf is the app of an API request (apiAuth set it); the default app
// when none was set.
func (s *Server) appOf(ctx context.Context) *appState {
	if a, ok := ctx.Value(appCtxKey{}).(*appState); ok {
		return a
	}
	return s.apps.def
}

// connApp is the connection's app: the default one until auth.
func (c *conn) connApp() *appState {
	if a := c.app.Load(); a != nil {
		return a
	}
	return c.s.apps.def
}

// admitAppLocked makes a the connection's app, taking one of its
// connection slots; false when the app is full or was deleted. c.mu held.
func (c *conn) admitAppLocked(a *appState) bool {
	if !a.admitConn() {
		if !a.deleted.Load() {
			c.s.appConnRefused(a, "max_connections") // webhooks_apps.go
		}
		return false
	}
	c.appHeld = a
	// The app first, then the check: a deletion under way either sees
	// this connection's app (dropApp closes it) or is seen here.
	c.app.Store(a)
	if a.deleted.Load() {
		c.appHeld = nil
		c.app.Store(nil)
		a.conns.Add(-1)
		return false
	}
	return true
}

// appConnLimitError names the app limit that refused a connection.
func appConnLimitError(a *appState) *protocol.Error {
	if a.deleted.Load() {
		return protocol.Errorf(protocol.CodeUnauthorized, "app %q was deleted", a.id)
	}
	return protocol.Errorf(protocol.CodeLimitExceeded, "app %q has max_connections (%d) connections on this node", a.id, a.conf.Load().model.Limits.MaxConnections)
}

// anyAppAllowsOrigin reports whether some app other than the default one
// lists origin in its allowed_origins: the handshake, before the token
// says which app it is, lets such an origin in, and auth checks it against
// the token's app (appOriginAllowed).
func (s *Server) anyAppAllowsOrigin(origin string) bool {
	for _, a := range *s.apps.byID.Load() {
		if originIn(a.conf.Load().model.AllowedOrigins, origin) {
			return true
		}
	}
	return false
}

// appOriginAllowed checks the connection's Origin against its app's
// allowed_origins (the default app: the node's).
func (s *Server) appOriginAllowed(a *appState, origin string) error {
	patterns := s.cfg.AllowedOrigins
	if m := a.conf.Load().model; m != nil {
		patterns = m.AllowedOrigins
	}
	if !originIn(patterns, origin) {
		return fmt.Errorf("origin %q is not in the allowed_origins of app %q", truncateName(origin), a.id)
	}
	return nil
}

// appRefusal is the close of a connection its app did not admit.
func appRefusal(a *appState) protocol.Disconnect {
	if a.deleted.Load() {
		return protocol.DisconnectAppDeleted
	}
	return protocol.DisconnectTooManyConns
}
