package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/console"
	"github.com/eddyrt/eddy/internal/protocol"
)

// The admin API behind the web console (/admin) and eddy top: live
// figures, channels, connections, disconnecting a user. Each route takes
// the admin key (adminRoute); the console calls nothing else, so a script
// can do whatever the console does.

// maxDisconnectReason bounds the reason sent in the close frame, whose
// payload is at most 125 bytes with the 2-byte code.
const maxDisconnectReason = 120

// maxListed bounds the channels and connections one call lists.
const maxListed = 1000

// mountConsole puts the console's pages and admin routes on mux.
func (s *Server) mountConsole(mux *http.ServeMux) {
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.adminRoute(h))
		s.apiRoutes = append(s.apiRoutes, pattern)
	}
	route("GET /api/v1/stats", s.handleStats)
	route("GET /api/v1/channels", s.handleChannels)
	route("GET /api/v1/channels/{channel}", s.handleChannel)
	route("POST /api/v1/channels/{channel}/publish", s.handleChannelPublish)
	route("GET /api/v1/connections", s.handleConnections)
	route("POST /api/v1/users/{user}/disconnect", s.handleDisconnectUser)
	// The pages themselves hold no secret: sign-in happens in the page,
	// and every call it makes carries the key.
	mux.Handle("GET /admin/", console.Handler())
	mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusFound))
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("follow") != "1" {
		writeJSON(w, http.StatusOK, s.stats.snapshot(r.Context(), true))
		return
	}
	ch, ok := s.stats.subscribe()
	if !ok {
		s.writeError(w, protocol.Errorf(protocol.CodeRateLimited, "too many open stats streams on this node (at most %d)", maxStatsStream))
		return
	}
	defer s.stats.unsubscribe(ch)
	flusher, _ := w.(http.Flusher)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: pass events through as they come
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		// A reader that stops reading is dropped rather than holding a
		// writer forever.
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "event: stats\ndata: %s\n\n", b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	first, err := json.Marshal(s.stats.snapshot(r.Context(), true))
	if err != nil || !send(first) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case b, open := <-ch:
			if !open || !send(b) {
				return
			}
		}
	}
}

func (s *Server) handleChannels(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	list, total := s.hub.Channels(q.Get("prefix"), limit)
	out := api.ChannelsResponse{Node: s.nodeID, Channels: make([]api.ChannelRate, 0, len(list)), Total: total}
	for _, c := range list {
		out.Channels = append(out.Channels, api.ChannelRate{Channel: c.Name, Subscribers: c.Subscribers, Messages: c.Messages, PerS: s.stats.channelRate(c.Name)})
	}
	writeJSON(w, http.StatusOK, out)
}

// consoleHistory is how many of a channel's last messages its page shows.
const consoleHistory = 20

func (s *Server) handleChannel(w http.ResponseWriter, r *http.Request) {
	channel := r.PathValue("channel")
	if err := protocol.ValidateChannel(channel); err != nil {
		s.writeError(w, err)
		return
	}
	opts := s.cfg.ChannelOptionsFor(channel)
	subs := s.hub.Subscribers(channel)
	out := api.ChannelDetail{
		ChannelRate: api.ChannelRate{Channel: channel, Subscribers: subs, PerS: s.stats.channelRate(channel)},
		Node:        s.nodeID, Presence: opts.Presence && s.presence != nil, Members: []api.Member{}, History: []api.Message{},
		HistorySize: opts.HistorySize,
	}
	out.Messages = s.hub.Messages(channel)
	if out.Presence {
		members, err := s.members(r.Context(), s.apps.def, channel) // the console is the default app's
		if err != nil {
			s.writeError(w, err)
			return
		}
		out.Members = append(out.Members, members...)
	}
	if opts.HistorySize > 0 {
		msgs, _, err := s.broker.History(r.Context(), channel, broker.HistoryQuery{Options: brokerOptions(opts)})
		if err != nil && !errors.Is(err, broker.ErrGap) {
			s.writeError(w, err)
			return
		}
		if len(msgs) > consoleHistory {
			msgs = msgs[len(msgs)-consoleHistory:]
		}
		for _, m := range msgs {
			out.History = append(out.History, *m)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleChannelPublish publishes a test message to the channel in the
// path, down the same road as POST /api/v1/publish (functions included).
func (s *Server) handleChannelPublish(w http.ResponseWriter, r *http.Request) {
	channel := r.PathValue("channel")
	if err := protocol.ValidateChannel(channel); err != nil {
		s.writeError(w, err)
		return
	}
	req, err := s.readPublishBody(r)
	if err != nil {
		s.writeError(w, err)
		return
	}
	if req.channel != "" || req.hasList {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "the channel is in the path: give only event and data"))
		return
	}
	if s.draining.Load() {
		s.writeError(w, protocol.ErrShuttingDown)
		return
	}
	offsets := make(map[string]uint64, 1)
	id, err := s.publish(r.Context(), publishRequest{channels: []string{channel}, event: req.event, data: req.data, source: "api", offsets: offsets})
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.PublishResponse{ID: id, Offsets: offsets})
}

func listLimit(v string) (int, error) {
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxListed {
		return 0, protocol.Errorf(protocol.CodeBadRequest, "limit must be a whole number from 1 to %d, got %q", maxListed, v)
	}
	return n, nil
}

// info describes c for the connections list.
func (c *conn) info() api.ConnectionInfo {
	ci := api.ConnectionInfo{ID: c.id, Transport: "websocket", Node: c.s.nodeID, ConnectedAt: c.opened.UTC().Format(time.RFC3339)}
	if c.sse != nil {
		ci.Transport = "sse"
	}
	c.mu.Lock()
	if c.identity != nil {
		ci.User = c.identity.User
	}
	ci.Channels = make([]string, 0, len(c.subs))
	for ch := range c.subs {
		ci.Channels = append(ci.Channels, ch)
	}
	c.mu.Unlock()
	sort.Strings(ci.Channels)
	return ci
}

// userOf is c's authenticated user ("" before auth).
func (c *conn) userOf() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.identity == nil {
		return ""
	}
	return c.identity.User
}

func (s *Server) handleConnections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	user := q.Get("user")
	conns, total := s.localConnections(user, limit)
	out := api.ConnectionsResponse{Connections: conns, Total: total, Nodes: 1}
	if s.clustered() {
		replies, err := s.askCluster(r.Context(), clusterAsk{Kind: "connections", User: user, Limit: limit})
		if err != nil {
			s.writeError(w, err)
			return
		}
		for _, rep := range replies {
			out.Connections = append(out.Connections, rep.Connections...)
			out.Total += rep.Count
		}
		out.Nodes += len(replies)
		sortConnections(out.Connections)
		if len(out.Connections) > limit {
			out.Connections = out.Connections[:limit]
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// localConnections lists this node's open connections (of user, unless
// empty), oldest first, the first limit of them, and how many there are.
func (s *Server) localConnections(user string, limit int) ([]api.ConnectionInfo, int) {
	// Pointers first, the details only for the connections shown: a node
	// with a million connections answers without a million descriptions.
	var all []*conn
	s.conns.each(func(c *conn) {
		if c.closing() || (user != "" && c.userOf() != user) {
			return
		}
		all = append(all, c)
	})
	sort.Slice(all, func(i, j int) bool {
		if !all[i].opened.Equal(all[j].opened) {
			return all[i].opened.Before(all[j].opened)
		}
		return all[i].seq < all[j].seq
	})
	out := make([]api.ConnectionInfo, 0, min(limit, len(all)))
	for _, c := range all[:min(limit, len(all))] {
		out = append(out, c.info())
	}
	return out, len(all)
}

// sortConnections orders connections oldest first (ties by id), so the
// list is stable from one look to the next.
func sortConnections(cs []api.ConnectionInfo) {
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].ConnectedAt != cs[j].ConnectedAt {
			return cs[i].ConnectedAt < cs[j].ConnectedAt
		}
		return cs[i].ID < cs[j].ID
	})
}

func (s *Server) handleDisconnectUser(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if user == "" {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "the path names no user: POST /api/v1/users/{user}/disconnect"))
		return
	}
	var req api.DisconnectRequest
	body, err := readBody(r, 4096)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			err = protocol.Errorf(protocol.CodeTooLarge, "body over 4096 bytes")
		}
		s.writeError(w, err)
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "body must be {\"reason\":\"...\"}: %v", err))
			return
		}
	}
	d, err := operatorDisconnect(req.Reason)
	if err != nil {
		s.writeError(w, err)
		return
	}
	n := s.disconnectLocal(user, d)
	nodes := 1
	if s.clustered() {
		replies, err := s.askCluster(r.Context(), clusterAsk{Kind: "disconnect", User: user, Reason: d.Reason})
		if err != nil {
			// This node's connections are closed already; say the rest failed.
			s.log.Warn("admin disconnect: reach the other nodes", "user", user, "err", err)
			s.writeError(w, err)
			return
		}
		for _, rep := range replies {
			n += rep.Count
		}
		nodes += len(replies)
	}
	s.log.Info("admin disconnected a user", "user", user, "connections", n, "nodes", nodes, "reason", d.Reason)
	writeJSON(w, http.StatusOK, api.DisconnectResponse{Disconnected: n, Nodes: nodes})
}

// disconnectLocal closes user's connections on this node and says how many.
func (s *Server) disconnectLocal(user string, d protocol.Disconnect) int {
	n := 0
	s.conns.each(func(c *conn) {
		if user != "" && c.userOf() == user && !c.closing() {
			c.closeWith(d, false)
			n++
		}
	})
	return n
}

// operatorDisconnect is the close an operator sends, with its reason
// checked: it travels in the close frame, so it is short valid UTF-8.
func operatorDisconnect(reason string) (protocol.Disconnect, error) {
	if reason == "" {
		return protocol.DisconnectByOperator, nil
	}
	if !utf8.ValidString(reason) || len(reason) > maxDisconnectReason {
		return protocol.Disconnect{}, protocol.Errorf(protocol.CodeBadRequest, "reason must be valid UTF-8 of at most %d bytes", maxDisconnectReason)
	}
	return protocol.Disconnect{Code: protocol.CloseByOperator, Reason: reason}, nil
}
