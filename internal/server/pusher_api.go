package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/eddyrt/eddy/internal/apierror"
	"github.com/eddyrt/eddy/internal/protocol"
	"github.com/eddyrt/eddy/internal/pusher"
)

// The Pusher HTTP API under /apps/{id}/, signed Pusher's way
// (pusher.VerifyRequest). Errors are plain text, as Pusher's are: the
// SDKs show the body to the developer.

// maxPusherEventName is Pusher's limit on an event name.
const maxPusherEventName = 200

func (s *Server) mountPusherAPI(mux *http.ServeMux) {
	h := func(pattern string, f func(http.ResponseWriter, *http.Request, *pusherApp, []byte)) {
		mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			app, body, ok := s.pusherAuth(w, r)
			if ok {
				f(w, r, app, body)
			}
		}))
	}
	h("POST /apps/{id}/events", s.handlePusherEvents)
	h("POST /apps/{id}/batch_events", s.handlePusherBatch)
	h("GET /apps/{id}/channels", s.handlePusherChannels)
	h("GET /apps/{id}/channels/{channel}", s.handlePusherChannel)
	h("GET /apps/{id}/channels/{channel}/users", s.handlePusherUsers)
	h("POST /apps/{id}/users/{user}/terminate_connections", s.handlePusherTerminate)
}

func pusherText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// pusherAuth finds the app, reads the body and checks the signature.
func (s *Server) pusherAuth(w http.ResponseWriter, r *http.Request) (*pusherApp, []byte, bool) {
	app, ok := s.appForPusherID(r.PathValue("id"))
	if !ok {
		pusherText(w, http.StatusNotFound, fmt.Sprintf("unknown app id %q", r.PathValue("id")))
		return nil, nil, false
	}
	limit := int64(s.cfg.MaxMessageBytes)*int64(max(s.cfg.MaxBatch, 10)) + 64<<10
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		pusherText(w, http.StatusBadRequest, "could not read the body")
		return nil, nil, false
	}
	if int64(len(body)) > limit {
		pusherText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over %d bytes", limit))
		return nil, nil, false
	}
	creds := func(key string) (string, bool) {
		if key != app.Key {
			return "", false
		}
		return app.Secret, true
	}
	if _, err := pusher.VerifyRequest(r.Method, r.URL.Path, r.URL.Query(), body, time.Now(), creds); err != nil {
		s.metrics.errorsFor(protocol.CodeUnauthorized).Inc()
		pusherText(w, http.StatusUnauthorized, "401 Unauthorized: "+err.Error())
		return nil, nil, false
	}
	return app, body, true
}

// pusherEvent is one event of POST /events or of a batch.
type pusherEvent struct {
	Name     string   `json:"name"`
	Data     *string  `json:"data"`
	Channels []string `json:"channels"`
	Channel  string   `json:"channel"`
	SocketID string   `json:"socket_id"`
	Info     string   `json:"info"`
}

// check returns the event's channels, or what is wrong with it.
func (e *pusherEvent) check() ([]string, error) {
	channels := e.Channels
	if e.Channel != "" {
		if len(channels) > 0 {
			return nil, fmt.Errorf("give channel or channels, not both")
		}
		channels = []string{e.Channel}
	}
	switch {
	case e.Name == "":
		return nil, fmt.Errorf("name is missing")
	case len(e.Name) > maxPusherEventName:
		return nil, fmt.Errorf("name is %d characters; the limit is %d", len(e.Name), maxPusherEventName)
	case strings.HasPrefix(e.Name, "pusher:") || strings.HasPrefix(e.Name, "pusher_internal:"):
		return nil, fmt.Errorf("event names starting with pusher: are reserved")
	case e.Data == nil:
		return nil, fmt.Errorf("data is missing (a string)")
	case len(channels) == 0:
		return nil, fmt.Errorf("channels is missing")
	case len(channels) > protocol.MaxPublishChannels:
		return nil, fmt.Errorf("at most %d channels per event, got %d", protocol.MaxPublishChannels, len(channels))
	}
	for _, ch := range channels {
		if err := pusher.ValidateChannel(ch); err != nil {
			return nil, err
		}
	}
	return channels, nil
}

// trigger publishes e through the publish path (functions included).
func (s *Server) pusherTrigger(ctx context.Context, a *appState, e *pusherEvent, channels []string) error {
	_, err := s.publish(ctx, publishRequest{
		channels: channels, event: e.Name, data: mustJSON(*e.Data),
		source: "api", exclude: e.SocketID, app: a,
	})
	return err
}

// pusherPublishError answers a refused publish with a 4xx (5xx for the
// server's own faults) and the message.
func (s *Server) pusherPublishError(w http.ResponseWriter, err error) {
	pe := s.clientError("pusher publish", err)
	pusherText(w, apierror.Status(pe.Code), pe.Code+": "+pe.Message)
}

func (s *Server) handlePusherEvents(w http.ResponseWriter, r *http.Request, app *pusherApp, body []byte) {
	var e pusherEvent
	if err := json.Unmarshal(body, &e); err != nil {
		pusherText(w, http.StatusBadRequest, "body must be a JSON object: "+err.Error())
		return
	}
	channels, err := e.check()
	if err != nil {
		pusherText(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.pusherTrigger(r.Context(), app.state, &e, channels); err != nil {
		s.pusherPublishError(w, err)
		return
	}
	out := map[string]any{}
	if e.Info != "" {
		info := map[string]any{}
		counts := s.pusherTriggerCounts(r.Context(), w, app.state, e.Info, channels)
		for _, ch := range channels {
			info[ch] = s.pusherChannelInfo(r.Context(), app.state, ch, e.Info, counts)
		}
		out["channels"] = info
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handlePusherBatch(w http.ResponseWriter, r *http.Request, app *pusherApp, body []byte) {
	var req struct {
		Batch []pusherEvent `json:"batch"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		pusherText(w, http.StatusBadRequest, "body must be {\"batch\":[...]}: "+err.Error())
		return
	}
	if len(req.Batch) > s.cfg.MaxBatch {
		pusherText(w, http.StatusBadRequest, fmt.Sprintf("at most %d events per batch (max_batch), got %d", s.cfg.MaxBatch, len(req.Batch)))
		return
	}
	all := make([][]string, len(req.Batch))
	for i := range req.Batch {
		channels, err := req.Batch[i].check()
		if err != nil {
			pusherText(w, http.StatusBadRequest, fmt.Sprintf("batch[%d]: %v", i, err))
			return
		}
		if len(channels) != 1 {
			pusherText(w, http.StatusBadRequest, fmt.Sprintf("batch[%d]: one channel per batch event", i))
			return
		}
		all[i] = channels
	}
	results := make([]map[string]any, len(req.Batch))
	var counted []string // the channels whose info asks for subscription_count
	for i := range req.Batch {
		if wantsSubscriptionCount(req.Batch[i].Info) {
			counted = append(counted, all[i][0])
		}
	}
	for i := range req.Batch {
		if err := s.pusherTrigger(r.Context(), app.state, &req.Batch[i], all[i]); err != nil {
			s.pusherPublishError(w, fmt.Errorf("batch[%d]: %w", i, err))
			return
		}
	}
	counts := s.pusherTriggerCounts(r.Context(), w, app.state, "subscription_count", counted)
	for i := range req.Batch {
		results[i] = map[string]any{}
		if req.Batch[i].Info != "" {
			results[i] = s.pusherChannelInfo(r.Context(), app.state, all[i][0], req.Batch[i].Info, counts)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"batch": results})
}

// pusherUsers lists the user ids present in a presence channel, once each.
func (s *Server) pusherUsers(ctx context.Context, a *appState, channel string) ([]string, error) {
	if a.presence == nil {
		return nil, nil
	}
	members, err := a.presence.Members(ctx, channel)
	if err != nil {
		return nil, fmt.Errorf("presence of %q: %w", channel, err)
	}
	return presenceView(members).Presence.IDs, nil
}

// pusherChannelInfo answers the info attributes asked for (comma list).
// subscription_count is the channel's entry in subs: the subscribers of
// both protocols on every node that answered (pusher_cluster.go).
func (s *Server) pusherChannelInfo(ctx context.Context, a *appState, channel, attrs string, subs map[string]int) map[string]any {
	out := map[string]any{}
	for _, attr := range strings.Split(attrs, ",") {
		switch strings.TrimSpace(attr) {
		case "user_count":
			if pusher.KindOf(channel).Presence {
				users, err := s.pusherUsers(ctx, a, channel)
				if err != nil {
					s.log.Warn("pusher user_count", "err", err)
				}
				out["user_count"] = len(users)
			}
		case "subscription_count":
			out["subscription_count"] = subs[channel]
		}
	}
	return out
}

// pusherSubscriptionCount is the channel's subscriptions on this node: its
// Eddy subscribers plus its Pusher ones (their fan-out is one hub subscriber).
func (s *Server) pusherSubscriptionCount(a *appState, channel string) int {
	n := a.hub.Subscribers(channel)
	a.pusher.mu.Lock()
	pc := a.pusher.m[channel]
	a.pusher.mu.Unlock()
	if pc != nil {
		n += len(*pc.subs.Load()) - 1
	}
	return max(n, 0)
}

func (s *Server) handlePusherChannels(w http.ResponseWriter, r *http.Request, app *pusherApp, _ []byte) {
	prefix := r.URL.Query().Get("filter_by_prefix")
	info := r.URL.Query().Get("info")
	if strings.Contains(info, "user_count") && !strings.HasPrefix(prefix, pusher.PrefixPresence) {
		pusherText(w, http.StatusBadRequest, "info=user_count needs filter_by_prefix=presence-")
		return
	}
	counts, err := s.pusherListChannels(r.Context(), app.state, prefix)
	if err != nil {
		s.pusherPublishError(w, fmt.Errorf("ask the other nodes: %w", err))
		return
	}
	counts.mark(w)
	channels := map[string]any{}
	for name := range counts.subs {
		if info != "" {
			channels[name] = s.pusherChannelInfo(r.Context(), app.state, name, info, counts.subs)
		} else {
			channels[name] = map[string]any{}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": channels})
}

func (s *Server) handlePusherChannel(w http.ResponseWriter, r *http.Request, app *pusherApp, _ []byte) {
	channel := r.PathValue("channel")
	if err := pusher.ValidateChannel(channel); err != nil {
		pusherText(w, http.StatusBadRequest, err.Error())
		return
	}
	info := r.URL.Query().Get("info")
	if strings.Contains(info, "user_count") && !pusher.KindOf(channel).Presence {
		pusherText(w, http.StatusBadRequest, "info=user_count is for presence- channels only")
		return
	}
	counts, err := s.pusherCountChannels(r.Context(), app.state, []string{channel})
	if err != nil {
		s.pusherPublishError(w, fmt.Errorf("ask the other nodes: %w", err))
		return
	}
	counts.mark(w)
	out := s.pusherChannelInfo(r.Context(), app.state, channel, info, counts.subs)
	occupied := counts.subs[channel] > 0
	if !occupied && pusher.KindOf(channel).Presence {
		users, _ := s.pusherUsers(r.Context(), app.state, channel)
		occupied = len(users) > 0
	}
	out["occupied"] = occupied
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handlePusherUsers(w http.ResponseWriter, r *http.Request, app *pusherApp, _ []byte) {
	channel := r.PathValue("channel")
	if !pusher.KindOf(channel).Presence {
		pusherText(w, http.StatusBadRequest, "users are listed for presence- channels only")
		return
	}
	ids, err := s.pusherUsers(r.Context(), app.state, channel)
	if err != nil {
		s.pusherPublishError(w, err)
		return
	}
	users := make([]map[string]string, len(ids))
	for i, id := range ids {
		users[i] = map[string]string{"id": id}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
}

func (s *Server) handlePusherTerminate(w http.ResponseWriter, r *http.Request, app *pusherApp, _ []byte) {
	user := r.PathValue("user")
	if user == "" {
		pusherText(w, http.StatusBadRequest, "user id is missing")
		return
	}
	if err := s.pusherTerminate(r.Context(), app.state, user); err != nil {
		s.pusherPublishError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}
