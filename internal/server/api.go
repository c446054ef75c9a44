package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/apierror"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// apiAuth guards h with bearer keys, any of which is accepted (several
// during a rotation), each compared in constant time.
func (s *Server) apiAuth(keys []string, h http.HandlerFunc) http.Handler {
	want := make([][]byte, len(keys))
	for i, k := range keys {
		want[i] = []byte("Bearer " + k)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		// Compare with every key, no early exit: which key matched must
		// not show in the time taken.
		ok := 0
		for _, k := range want {
			ok |= subtle.ConstantTimeCompare(got, k)
		}
		if ok != 1 {
			// Not the default app's: maybe another app's (apps.go).
			if a, found := s.appForAPIKey(strings.TrimPrefix(string(got), "Bearer ")); found && len(got) > 7 {
				h(w, r.WithContext(withApp(r.Context(), a)))
				return
			}
			msg := "missing API key: send Authorization: Bearer <api key>"
			if len(got) > 0 {
				msg = "wrong API key"
			}
			s.metrics.errorsFor(protocol.CodeUnauthorized).Inc()
			writeAPIError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, msg)
			return
		}
		h(w, r)
	})
}

var jsonContentType = []string{"application/json"}

// writeJSONBytes sends an already encoded JSON answer.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	// Assigned directly: Header().Set canonicalises the key and allocates
	// the value slice on every call.
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) { apierror.WriteJSON(w, status, v) }

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	apierror.WriteStatus(w, status, &protocol.Error{Code: code, Message: msg})
}

// writeError answers an API call with err as clientError shows it.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	pe := s.clientError("api", err)
	s.metrics.errorsFor(pe.Code).Inc()
	apierror.Write(w, pe)
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	req, err := s.readPublishBody(r)
	if err != nil {
		s.writeError(w, err)
		return
	}
	channels, err := req.targets()
	if err != nil {
		s.writeError(w, err)
		return
	}
	if s.draining.Load() {
		s.writeError(w, protocol.ErrShuttingDown)
		return
	}
	offsets := make(map[string]uint64, len(channels))
	id, err := s.publish(r.Context(), publishRequest{channels: channels, event: req.event, data: req.data, source: "api", offsets: offsets, app: s.appOf(r.Context())})
	if err != nil {
		s.writeError(w, err)
		return
	}
	// {"id":"...","offsets":{...}} by hand: encoding/json's encoder cost
	// more than the rest of the answer. The id names the publish (every
	// channel's copy has it); offsets say where it landed in each channel.
	out := make([]byte, 0, 64+32*len(offsets))
	out = append(out, `{"id":`...)
	out = protocol.AppendString(out, id)
	out = append(out, `,"offsets":{`...)
	first := true
	for _, ch := range channels {
		off, ok := offsets[ch]
		if !ok {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = protocol.AppendString(out, ch)
		out = append(out, ':')
		out = strconv.AppendUint(out, off, 10)
	}
	out = append(out, "}}\n"...)
	writeJSONBytes(w, http.StatusOK, out)
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	channel := q.Get("channel")
	if err := protocol.ValidateChannel(channel); err != nil {
		s.writeError(w, err)
		return
	}
	var since *protocol.Position
	limit := 0
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "since must be an offset (a whole number), got %q", v))
			return
		}
		epoch := q.Get("epoch")
		since = &protocol.Position{Epoch: epoch, Offset: n}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "limit must be a non-negative whole number, got %q", v))
			return
		}
		limit = n
	}
	app := s.appOf(r.Context())
	opts := brokerOptions(s.channelOptions(app, channel))
	if since != nil && since.Epoch == "" {
		// Without an epoch, since means "in the current epoch".
		_, pos, err := app.broker.History(r.Context(), channel, broker.HistoryQuery{Limit: -1, Options: opts})
		if err != nil {
			s.writeError(w, err)
			return
		}
		since.Epoch = pos.Epoch
	}
	msgs, pos, err := app.broker.History(r.Context(), channel, broker.HistoryQuery{Since: since, Limit: limit, Options: opts})
	if errors.Is(err, broker.ErrGap) {
		// The oldest kept messages are still useful: return them from the start.
		msgs, pos, err = app.broker.History(r.Context(), channel, broker.HistoryQuery{Options: opts})
		if err == nil && limit > 0 && len(msgs) > limit {
			msgs = msgs[:limit]
		}
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	chOpts := s.channelOptions(app, channel)
	out := api.HistoryResponse{Channel: channel, Epoch: pos.Epoch, Offset: pos.Offset, Messages: make([]api.Message, 0, len(msgs)),
		HistorySize: chOpts.HistorySize, HistoryTTLMS: chOpts.HistoryTTL.Milliseconds()}
	for _, m := range msgs {
		out.Messages = append(out.Messages, *m)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handlePresence(w http.ResponseWriter, r *http.Request) {
	channel := r.URL.Query().Get("channel")
	if err := protocol.ValidateChannel(channel); err != nil {
		s.writeError(w, err)
		return
	}
	members, err := s.members(r.Context(), s.appOf(r.Context()), channel)
	if err != nil {
		s.writeError(w, err)
		return
	}
	if members == nil {
		members = []api.Member{}
	}
	out := api.PresenceResponse{Channel: channel, Members: members}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) selfInfo() api.NodeInfo {
	name := s.cfg.NodeName
	if name == "" {
		name, _ = os.Hostname()
	}
	info := api.NodeInfo{
		ID:            s.nodeID,
		Name:          name,
		Connections:   s.conns.len(),
		Subscriptions: int(s.hub.Stats().Subscriptions),
		UptimeS:       int64(time.Since(s.started).Seconds()),
		Apps:          s.appInfos(),
	}
	info.MessagesInPerS, info.MessagesOutPerS = s.stats.rates()
	return info
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	reg := s.abil.Nodes
	if reg == nil {
		writeJSON(w, http.StatusOK, api.InfoResponse{Nodes: infoFor([]api.NodeInfo{s.selfInfo()}, s.appOf(r.Context()).id)})
		return
	}
	nodes, err := reg.Nodes(r.Context())
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.InfoResponse{Nodes: infoFor(nodes, s.appOf(r.Context()).id)})
}

// announceLoop tells the cluster this node is alive, every few seconds.
func (s *Server) announceLoop(reg broker.NodeRegistry) {
	defer s.stopped.Done()
	t := time.NewTicker(announceEvery(s.cfg.NodeTTL))
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := reg.Announce(ctx, s.selfInfo()); err != nil {
			s.log.Debug("announce", "err", err)
		}
		cancel()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}
