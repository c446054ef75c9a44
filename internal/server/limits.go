package server

import (
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Names of the connection limits, as settings, refusal messages and the
// reason label of eddy_connections_refused_total.
const (
	limitNode = "max_connections"
	limitIP   = "max_connections_per_ip"
	limitUser = "max_connections_per_user"
)

// connLimits counts a node's WebSocket connections in all, per peer IP and
// per user, and refuses those past max_connections,
// max_connections_per_ip and max_connections_per_user. It also holds the
// publish rate bucket each user's connections share. A connection takes
// its node and IP slots before the upgrade (so a refusal is a plain HTTP
// answer) and its user slot once its token says who it is; cleanup gives
// them all back.
type connLimits struct {
	maxNode, maxIP, maxUser int
	userRate                rate.Limit
	userBurst               int
	refused                 *prometheus.CounterVec
	onRefuse                func(limit string) // webhooks' connection_limit; never nil
	// onRefuseApp reports a refusal of a connection whose app is known
	// (max_connections_per_user) to that app's receivers; never nil.
	onRefuseApp func(a *appState, limit string)

	mu    sync.Mutex
	total int
	ips   map[string]int
	users map[string]*userSlot
}

// userSlot is one user's connections on this node and their shared
// publish bucket; it goes when the user's last connection does.
type userSlot struct {
	conns   int
	limiter *rate.Limiter
}

func (s *Server) newConnLimits() *connLimits {
	l := &connLimits{
		maxNode:   s.cfg.MaxConnections,
		maxIP:     s.cfg.MaxConnectionsPerIP,
		maxUser:   s.cfg.MaxConnectionsPerUser,
		userRate:  rate.Limit(s.cfg.PublishRatePerUser),
		userBurst: max(1, int(s.cfg.PublishRatePerUser)),
		ips:       map[string]int{},
		users:     map[string]*userSlot{},
		onRefuse:  func(string) {},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_connections_refused_total",
			Help: "WebSocket connections refused by a limit, by the limit's setting name.",
		}, []string{"reason"}),
	}
	if s.opts.Webhooks != nil {
		l.onRefuse = s.opts.Webhooks.ConnectionRefused
	}
	l.onRefuseApp = s.appConnRefused // webhooks_apps.go
	for _, r := range []string{limitNode, limitIP, limitUser} {
		l.refused.WithLabelValues(r) // present at 0, so alerts can rate() it
	}
	s.metrics.registry.MustRegister(l.refused)
	return l
}

// peerIP is the host part of a request's remote address: the TCP peer,
// never a header a client could forge.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// acquire takes a node slot and an IP slot for a connection from ip, or
// names the limit that refuses it.
func (l *connLimits) acquire(ip string) (refusedBy string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.maxNode > 0 && l.total >= l.maxNode:
		refusedBy = limitNode
	case l.maxIP > 0 && l.ips[ip] >= l.maxIP:
		refusedBy = limitIP
	default:
		l.total++
		l.ips[ip]++
		return ""
	}
	l.refused.WithLabelValues(refusedBy).Inc()
	l.onRefuse(refusedBy)
	return refusedBy
}

// release gives back what acquire took.
func (l *connLimits) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.ips[ip]--; l.ips[ip] <= 0 {
		delete(l.ips, ip)
	}
}

// acquireUser takes a slot for one more connection of user and returns
// the publish bucket the user's connections share, or false when
// max_connections_per_user refuses it.
func (l *connLimits) acquireUser(a *appState, user string) (*rate.Limiter, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.users[user]
	if u != nil && l.maxUser > 0 && u.conns >= l.maxUser {
		l.refused.WithLabelValues(limitUser).Inc()
		l.onRefuseApp(a, limitUser)
		return nil, false
	}
	if u == nil {
		u = &userSlot{limiter: rate.NewLimiter(l.userRate, l.userBurst)}
		l.users[user] = u
	}
	u.conns++
	return u.limiter, true
}

// releaseUser gives back a slot acquireUser took.
func (l *connLimits) releaseUser(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := l.users[user]; u != nil {
		if u.conns--; u.conns <= 0 {
			delete(l.users, user)
		}
	}
}

// refuseConnection answers an upgrade request that a limit refused, before
// any WebSocket exists: 503 when the node is full (another node may have
// room), 429 when this address has too many.
func (s *Server) refuseConnection(w http.ResponseWriter, limit string) {
	status, msg := s.limitRefusal(limit)
	writeAPIError(w, status, protocol.CodeLimitExceeded, msg)
}

// limitRefusal is the status and message that refuse a connection past
// limit, counted; both accept paths (net/http's and wsaccept.go's) use it.
func (s *Server) limitRefusal(limit string) (int, string) {
	status, msg := http.StatusServiceUnavailable, fmt.Sprintf("this node has max_connections (%d) connections; try again later or another node", s.cfg.MaxConnections)
	if limit == limitIP {
		status, msg = http.StatusTooManyRequests, fmt.Sprintf("this address has max_connections_per_ip (%d) connections; close one first", s.cfg.MaxConnectionsPerIP)
	}
	s.metrics.errorsFor(protocol.CodeLimitExceeded).Inc()
	s.statusLimit(nil, limit, "", msg)
	return status, msg
}

// userLimitError is what a connection past max_connections_per_user is
// told before it is closed with CloseTooManyConnections.
func (s *Server) userLimitError(user string) *protocol.Error {
	err := protocol.Errorf(protocol.CodeLimitExceeded, "user %q has max_connections_per_user (%d) connections on this node; close one first", user, s.cfg.MaxConnectionsPerUser)
	s.statusLimit(nil, limitUser, user, err.Message)
	return err
}

// admit takes the node and IP slots for an upgrade request, answering it
// with the refusal when a limit is reached. release gives the slots back
// if the upgrade then fails; once a conn exists, its cleanup does.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (ip string, ok bool) {
	ip = peerIP(r)
	if by := s.limits.acquire(ip); by != "" {
		s.log.Debug("connection refused", "limit", by, "remote", r.RemoteAddr)
		s.refuseConnection(w, by)
		return ip, false
	}
	return ip, true
}

// admitUser takes a user slot for c once its token is verified. When the
// user already has max_connections_per_user connections, c is told so and
// closed with CloseTooManyConnections. c.mu held.
func (c *conn) admitUserLocked(user string) bool {
	lim, ok := c.s.limits.acquireUser(c.connApp(), user)
	if !ok {
		return false
	}
	c.user, c.userLimiter = user, lim
	return true
}

// releaseLimits gives back every slot c holds; cleanup calls it once.
func (c *conn) releaseLimits() {
	c.mu.Lock()
	user := c.user
	c.user = ""
	held := c.appHeld
	c.appHeld = nil
	c.mu.Unlock()
	if user != "" {
		c.s.limits.releaseUser(user)
	}
	if held != nil {
		held.conns.Add(-1)
	}
	c.s.limits.release(c.ip)
}

// allowUserPublish reports whether the publish bucket shared by all of this
// user's connections on the node has a token. Called on the read goroutine.
func (c *conn) allowUserPublish() bool {
	return c.userLimiter == nil || c.userLimiter.Allow()
}
