package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/eddyrt/eddy/internal/functions/fnlog"
	"github.com/eddyrt/eddy/internal/protocol"
)

// logsKeepAlive is how often a quiet follow stream gets an SSE comment, so
// proxies and load balancers do not close it as idle.
const logsKeepAlive = 15 * time.Second

// logsWriteTimeout bounds one write to a follower: one that stops reading
// is cut instead of holding its handler forever.
const logsWriteTimeout = 10 * time.Second

// mountFunctionLogs serves GET /api/v1/functions/{name}/logs behind the
// admin key when the node keeps function logs. The pattern is more
// specific than the admin API's /api/v1/functions/, so it wins.
func (s *Server) mountFunctionLogs(mux *http.ServeMux) {
	if s.opts.FunctionLogs == nil {
		return
	}
	const route = "GET /api/v1/functions/{name}/logs"
	mux.Handle(route, s.adminRoute(http.HandlerFunc(s.handleFunctionLogs)))
	s.apiRoutes = append(s.apiRoutes, route)
}

// functionLogsResponse answers GET /api/v1/functions/{name}/logs.
type functionLogsResponse struct {
	Function string       `json:"function"`
	Lines    []fnlog.Line `json:"lines"`
}

// validFunctionName is functions.ValidName's rule (1-64 characters of
// [A-Za-z0-9_.-], not starting with '.' or '-'), checked here so the
// server need not import the functions engine.
func validFunctionName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '.' || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// handleFunctionLogs returns a function's recent lines (every node's, in
// time order), or with follow=1 streams them as server-sent events: the
// kept lines first, then each new one, one JSON line per data field.
func (s *Server) handleFunctionLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !validFunctionName(name) {
		writeAPIError(w, http.StatusBadRequest, protocol.CodeBadRequest, fmt.Sprintf("function name %q: want 1-64 characters of A-Z a-z 0-9 _ . - not starting with . or -", name))
		return
	}
	logs := s.opts.FunctionLogs
	switch f := r.URL.Query().Get("follow"); f {
	case "", "0", "false":
		writeJSON(w, http.StatusOK, functionLogsResponse{Function: name, Lines: logs.Recent(name)})
		return
	case "1", "true":
	default:
		writeAPIError(w, http.StatusBadRequest, protocol.CodeBadRequest, fmt.Sprintf("follow=%q: want 1 or 0", f))
		return
	}
	recent, follower, stop, ok := logs.Follow(name)
	if !ok {
		writeAPIError(w, http.StatusTooManyRequests, protocol.CodeRateLimited, fmt.Sprintf("%d function log streams are open on this node already; close one first", fnlog.MaxFollowers))
		return
	}
	defer stop()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(logsWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	event := func(l fnlog.Line) []byte {
		b, _ := json.Marshal(l) // strings only; cannot fail
		return append(append([]byte("data: "), b...), '\n', '\n')
	}
	var batch []byte
	for _, l := range recent {
		batch = append(batch, event(l)...)
	}
	if !write(append(batch, ": following\n\n"...)) {
		return
	}
	t := time.NewTicker(logsKeepAlive)
	defer t.Stop()
	for {
		select {
		case l := <-follower.C:
			if !write(event(l)) {
				return
			}
		case <-t.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.stop:
			// Shutdown waits for handlers; a stream would hold it up.
			return
		}
	}
}
