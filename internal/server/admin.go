package server

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/eddyrt/eddy/internal/protocol"
)

// codeAdminDisabled answers the admin API when no admin_key is set.
const codeAdminDisabled = "admin_disabled"

// adminDisabledMessage says how to turn the admin API on; fixed, so clients can show it.
const adminDisabledMessage = "admin API is off: set admin_key (in eddy.yaml, EDDY_ADMIN_KEY or --admin-key) and restart to deploy functions and associations"

// adminRoute guards the admin API (functions, associations). Deploying a
// function runs code inside the server, so it takes its own key: the API
// key that backends use to publish never does. Without an admin_key the
// admin API is off rather than falling back to the API key.
func (s *Server) adminRoute(h http.Handler) http.Handler {
	def := s.defaultAdminRoute(h)
	// Another app's admin key opens that app's own functions (apps.go).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && key != "" {
			if a, found := s.appForAdminKey(key); found && a.admin != nil {
				a.admin.ServeHTTP(w, r)
				return
			}
		}
		def.ServeHTTP(w, r)
	})
}

// defaultAdminRoute guards the default app's admin API; it is off when
// neither an admin_key nor an operator_key is set.
func (s *Server) defaultAdminRoute(h http.Handler) http.Handler {
	if s.app.AdminKey == "" && s.cfg.OperatorKey == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			s.metrics.errors.WithLabelValues(codeAdminDisabled).Inc()
			writeAPIError(w, http.StatusForbidden, codeAdminDisabled, adminDisabledMessage)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.adminAuthorized(r) {
			msg := "missing admin key: send Authorization: Bearer <admin key>"
			if r.Header.Get("Authorization") != "" {
				msg = "wrong admin key (the API key does not open the admin API)"
			}
			s.metrics.errors.WithLabelValues(protocol.CodeUnauthorized).Inc()
			writeAPIError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// adminAuthorized reports whether r carries the admin key or the operator
// key: the one place they are checked, for the admin API and the console's
// routes. The operator key opens them too because it already reads every
// app's keys (the apps API), so the console needs one key, not two.
// Both are compared, whichever matches, so the time taken does not say
// which key was close.
func (s *Server) adminAuthorized(r *http.Request) bool {
	got := []byte(r.Header.Get("Authorization"))
	admin := s.app.AdminKey != "" && subtle.ConstantTimeCompare(got, []byte("Bearer "+s.app.AdminKey)) == 1
	operator := s.cfg.OperatorKey != "" && subtle.ConstantTimeCompare(got, []byte("Bearer "+s.cfg.OperatorKey)) == 1
	return admin || operator
}
