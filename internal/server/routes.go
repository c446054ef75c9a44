package server

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"sort"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/protocol"
)

// AdminRoutes lists the routes the admin handler serves ("METHOD /path",
// path templates in {braces}), for APIRoutes. adminapi.Routes is the list.
type AdminRoutes interface{ Routes() []string }

// mountAPI puts the HTTP API on mux and records each route, so the tests can
// hold the OpenAPI description (api/openapi.json) to what is really served.
func (s *Server) mountAPI(mux *http.ServeMux) {
	s.apiRoutes = nil
	keyed := func(method, path string, h http.HandlerFunc) {
		mux.Handle(path, onlyMethod(method, s.apiAuth(s.app.APIKeys, h)))
		s.apiRoutes = append(s.apiRoutes, method+" "+path)
	}
	keyed(http.MethodPost, "/api/v1/publish", s.handlePublish)
	keyed(http.MethodPost, "/api/v1/batch", s.handleBatch)
	keyed(http.MethodGet, "/api/v1/history", s.handleHistory)
	keyed(http.MethodGet, "/api/v1/presence", s.handlePresence)
	keyed(http.MethodGet, "/api/v1/info", s.handleInfo)
	// Metrics name functions, channels' costs and the process: they are
	// for the operator, so they take the API key like the rest of the API.
	keyed(http.MethodGet, "/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}).ServeHTTP)
	mux.Handle("/api/v1/openapi.json", onlyMethod(http.MethodGet, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(api.OpenAPI)
	})))
	s.apiRoutes = append(s.apiRoutes, "GET /api/v1/openapi.json")
	if s.opts.AdminHandler != nil {
		admin := s.adminRoute(s.opts.AdminHandler)
		mux.Handle("/api/v1/functions", admin)
		mux.Handle("/api/v1/functions/", admin)
		mux.Handle("/api/v1/associations", admin)
		mux.Handle("/api/v1/webhooks", admin)
		mux.Handle("/api/v1/webhooks/", admin)
		mux.Handle("/api/v1/secrets", admin)
		mux.Handle("/api/v1/secrets/", admin)
		if r, ok := s.opts.AdminHandler.(AdminRoutes); ok {
			s.apiRoutes = append(s.apiRoutes, r.Routes()...)
		}
	}
	s.mountFunctionLogs(mux)
	s.mountConsole(mux)
	s.mountApps(mux) // apps.go, appsapi.go
	mux.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, protocol.CodeNotFound, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	}))
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
}

// APIRoutes lists the HTTP API's routes as "METHOD /path" (templates in
// {braces}), health and readiness included, sorted.
func (s *Server) APIRoutes() []string {
	out := append([]string{"GET /healthz", "GET /readyz"}, s.apiRoutes...)
	sort.Strings(out)
	return out
}
