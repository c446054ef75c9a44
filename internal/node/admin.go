package node

import (
	"net/http"

	"github.com/eddyrt/eddy/internal/server"
)

// routedHandler is an admin API part that lists its routes.
type routedHandler interface {
	http.Handler
	server.AdminRoutes
}

// adminAPI is the admin API: the functions part and the webhooks part
// behind one handler, as the server mounts one.
type adminAPI struct {
	mux    *http.ServeMux
	routes []string
}

// newAdminAPI serves webhooks' paths with webhooks and the rest with functions.
func newAdminAPI(functions, webhooks routedHandler) *adminAPI {
	a := &adminAPI{mux: http.NewServeMux()}
	a.mux.Handle("/", functions)
	a.mux.Handle("/api/v1/webhooks", webhooks)
	a.mux.Handle("/api/v1/webhooks/", webhooks)
	a.routes = append(functions.Routes(), webhooks.Routes()...)
	return a
}

func (a *adminAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Routes implements server.AdminRoutes.
func (a *adminAPI) Routes() []string { return append([]string(nil), a.routes...) }
