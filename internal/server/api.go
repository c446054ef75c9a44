package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/apierror"
	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// apiAuth guards h with a bearer key compared in constant time.
func (s *Server) apiAuth(key string, h http.HandlerFunc) http.Handler {
	want := []byte("Bearer " + key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			msg := "missing API key: send Authorization: Bearer <api key>"
			if len(got) > 0 {
				msg = "wrong API key"
			}
			s.metrics.errors.WithLabelValues(protocol.CodeUnauthorized).Inc()
			writeAPIError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, msg)
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) { apierror.WriteJSON(w, status, v) }

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	apierror.WriteStatus(w, status, &protocol.Error{Code: code, Message: msg})
}

// writeError answers an API call with err as clientError shows it.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	pe := s.clientError("api", err)
	s.metrics.errors.WithLabelValues(pe.Code).Inc()
	apierror.Write(w, pe)
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	// Read one byte past the limit to tell "too large" from "exactly at it";
	// the envelope around data gets 4 KiB of slack.
	limit := int64(s.cfg.MaxMessageBytes) + 4096
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "read body: %v", err))
		return
	}
	if int64(len(body)) > limit {
		s.writeError(w, protocol.Errorf(protocol.CodeTooLarge, "body over max_message_bytes (%d)", s.cfg.MaxMessageBytes))
		return
	}
	var req api.PublishRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "malformed JSON body: %v", err))
		return
	}
	channels := req.Channels
	if req.Channel != "" {
		if len(channels) > 0 {
			s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "give channel or channels, not both"))
			return
		}
		channels = []string{req.Channel}
	}
	if len(channels) > 100 {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "at most 100 channels per publish, got %d", len(channels)))
		return
	}
	if s.draining.Load() {
		s.writeError(w, protocol.ErrShuttingDown)
		return
	}
	id, err := s.publish(r.Context(), publishRequest{channels: channels, event: req.Event, data: req.Data, source: "api"})
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.PublishResponse{ID: id})
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
	opts := brokerOptions(s.cfg.ChannelOptionsFor(channel))
	if since != nil && since.Epoch == "" {
		// Without an epoch, since means "in the current epoch".
		_, pos, err := s.broker.History(r.Context(), channel, broker.HistoryQuery{Limit: -1, Options: opts})
		if err != nil {
			s.writeError(w, err)
			return
		}
		since.Epoch = pos.Epoch
	}
	msgs, pos, err := s.broker.History(r.Context(), channel, broker.HistoryQuery{Since: since, Limit: limit, Options: opts})
	if errors.Is(err, broker.ErrGap) {
		// The oldest kept messages are still useful: return them from the start.
		msgs, pos, err = s.broker.History(r.Context(), channel, broker.HistoryQuery{Options: opts})
		if err == nil && limit > 0 && len(msgs) > limit {
			msgs = msgs[:limit]
		}
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	out := api.HistoryResponse{Channel: channel, Epoch: pos.Epoch, Offset: pos.Offset, Messages: make([]api.Message, 0, len(msgs))}
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
	members, err := s.members(r.Context(), channel)
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
	return api.NodeInfo{
		ID:            s.nodeID,
		Name:          name,
		Connections:   s.conns.len(),
		Subscriptions: int(s.hub.Stats().Subscriptions),
		UptimeS:       int64(time.Since(s.started).Seconds()),
	}
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	reg := s.abil.Nodes
	if reg == nil {
		writeJSON(w, http.StatusOK, api.InfoResponse{Nodes: []api.NodeInfo{s.selfInfo()}})
		return
	}
	nodes, err := reg.Nodes(r.Context())
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.InfoResponse{Nodes: nodes})
}

// announceLoop tells the cluster this node is alive, every few seconds.
func (s *Server) announceLoop(reg broker.NodeRegistry) {
	defer s.stopped.Done()
	every := min(5*time.Second, s.cfg.NodeTTL/3)
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
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
