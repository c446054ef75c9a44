package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/eddyrt/eddy/internal/apps"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
)

// codeAppsDisabled answers the apps API when no operator_key is set.
const codeAppsDisabled = "apps_disabled"

const appsDisabledMessage = "apps API is off: set operator_key (in eddy.yaml, EDDY_OPERATOR_KEY or --operator-key) and restart to manage apps"

// codeAppExists answers the creation of an id already taken.
const codeAppExists = "already_exists"

// maxAppBody bounds an apps API request body.
const maxAppBody = 64 << 10

// mountApps puts the apps API (docs/apps.md) on mux, behind the operator
// key: it is server-wide and separate from every app's keys, because it
// makes and reads every app's keys.
func (s *Server) mountApps(mux *http.ServeMux) {
	route := func(method, path string, h http.HandlerFunc) {
		mux.Handle(method+" "+path, s.operatorAuth(h))
		s.apiRoutes = append(s.apiRoutes, method+" "+path)
	}
	route(http.MethodPost, "/api/v1/apps", s.handleCreateApp)
	route(http.MethodGet, "/api/v1/apps", s.handleListApps)
	route(http.MethodGet, "/api/v1/apps/{id}", s.handleGetApp)
	route(http.MethodPatch, "/api/v1/apps/{id}", s.handlePatchApp)
	route(http.MethodDelete, "/api/v1/apps/{id}", s.handleDeleteApp)
	route(http.MethodGet, "/api/v1/apps/{id}/keys", s.handleAppKeys)
	route(http.MethodPost, "/api/v1/apps/{id}/keys", s.handleAddAppKey)
	route(http.MethodDelete, "/api/v1/apps/{id}/keys/{key_id}", s.handleRetireAppKey)
}

func (s *Server) operatorAuth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.OperatorKey == "" {
			s.metrics.errorsFor(codeAppsDisabled).Inc()
			writeAPIError(w, http.StatusForbidden, codeAppsDisabled, appsDisabledMessage)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, []byte("Bearer "+s.cfg.OperatorKey)) != 1 {
			msg := "missing operator key: send Authorization: Bearer <operator key>"
			if len(got) > 0 {
				msg = "wrong operator key (API and admin keys do not open the apps API)"
			}
			s.metrics.errorsFor(protocol.CodeUnauthorized).Inc()
			writeAPIError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, msg)
			return
		}
		h(w, r)
	})
}

// appView is an app as the apps API shows it. admin_key is the app's first
// admin key; admin_keys lists them all.
type appView struct {
	ID              string                         `json:"id"`
	Name            string                         `json:"name"`
	JWTKeys         []apps.JWTKey                  `json:"jwt_keys"`
	APIKeys         []apps.Key                     `json:"api_keys"`
	AdminKey        string                         `json:"admin_key"`
	AdminKeys       []apps.Key                     `json:"admin_keys"`
	AllowedOrigins  []string                       `json:"allowed_origins"`
	Namespaces      map[string]apps.ChannelOptions `json:"namespaces"`
	ChannelDefaults apps.ChannelOptions            `json:"channel_defaults"`
	Limits          apps.Limits                    `json:"limits"`
	Pusher          apps.Pusher                    `json:"pusher"`
	Created         time.Time                      `json:"created"`
	Webhooks        []config.Webhook               `json:"webhooks"`
	// PusherClientEvents: the app's Pusher clients may send client-* events.
	PusherClientEvents bool `json:"pusher_client_events"`
}

func viewOf(a *apps.App) appView {
	v := appView{ID: a.ID, Name: a.Name, JWTKeys: a.JWTKeys, APIKeys: a.APIKeys, AdminKeys: a.AdminKeys,
		AllowedOrigins: a.AllowedOrigins, Namespaces: a.Namespaces, ChannelDefaults: a.ChannelDefaults,
		Limits: a.Limits, Pusher: a.Pusher, Created: a.Created, Webhooks: a.Webhooks,
		PusherClientEvents: a.PusherClientEvents}
	if v.Webhooks == nil {
		v.Webhooks = []config.Webhook{}
	}
	if len(a.AdminKeys) > 0 {
		v.AdminKey = a.AdminKeys[0].Key
	}
	if v.AllowedOrigins == nil {
		v.AllowedOrigins = []string{}
	}
	if v.Namespaces == nil {
		v.Namespaces = map[string]apps.ChannelOptions{}
	}
	return v
}

// appSettings are what an operator may set at creation or change later;
// a field left out is left as it is.
type appSettings struct {
	Name            *string                         `json:"name"`
	AllowedOrigins  *[]string                       `json:"allowed_origins"`
	Namespaces      *map[string]apps.ChannelOptions `json:"namespaces"`
	ChannelDefaults *apps.ChannelOptions            `json:"channel_defaults"`
	Limits          *apps.Limits                    `json:"limits"`
	Webhooks        *[]config.Webhook               `json:"webhooks"`
	// PusherClientEvents turns the app's Pusher client events on or off.
	PusherClientEvents *bool `json:"pusher_client_events"`
}

func (p appSettings) apply(a *apps.App) {
	if p.Name != nil {
		a.Name = *p.Name
	}
	if p.AllowedOrigins != nil {
		a.AllowedOrigins = *p.AllowedOrigins
	}
	if p.Namespaces != nil {
		a.Namespaces = *p.Namespaces
	}
	if p.ChannelDefaults != nil {
		a.ChannelDefaults = *p.ChannelDefaults
	}
	if p.Limits != nil {
		a.Limits = *p.Limits
	}
	if p.Webhooks != nil {
		a.SetWebhooks(*p.Webhooks)
	}
	if p.PusherClientEvents != nil {
		a.PusherClientEvents = *p.PusherClientEvents
	}
}

// readAppJSON decodes a bounded body into v, naming what was wrong.
func (s *Server) readAppJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := readBody(r, maxAppBody)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			err = protocol.Errorf(protocol.CodeTooLarge, "body over %d bytes", maxAppBody)
		}
		s.writeError(w, err)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "body: %v", err))
		return false
	}
	return true
}

func (s *Server) handleCreateApp(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
		appSettings
	}
	if !s.readAppJSON(w, r, &req) {
		return
	}
	if req.ID == apps.DefaultID {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "app id %q is the default app, which eddy.yaml describes", apps.DefaultID))
		return
	}
	name := req.ID
	if req.Name != nil && *req.Name != "" {
		name = *req.Name
	}
	a, err := apps.New(req.ID, name, time.Now())
	if err == nil {
		req.Name = nil
		req.apply(a)
		err = a.Validate()
	}
	if err == nil {
		err = s.apps.reg.Conflict(a)
	}
	if err != nil {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "%v", err))
		return
	}
	s.apps.changes.Lock()
	err = s.apps.store.Create(r.Context(), a)
	s.apps.changes.Unlock()
	if errors.Is(err, apps.ErrExists) {
		writeAPIError(w, http.StatusConflict, codeAppExists, fmt.Sprintf("app %q already exists", a.ID))
		return
	}
	if !s.appChanged(w, r.Context(), err) {
		return
	}
	s.log.Info("app created", "app", a.ID)
	writeJSON(w, http.StatusCreated, viewOf(a))
}

// appChanged finishes a change: err from the store is answered, else this
// node reloads at once (the others on the store's notice).
func (s *Server) appChanged(w http.ResponseWriter, ctx context.Context, err error) bool {
	if err != nil {
		s.log.Warn("apps store", "err", err)
		s.writeError(w, protocol.ErrUnavailable)
		return false
	}
	if err := s.syncApps(ctx); err != nil {
		s.log.Warn("reload apps", "err", err)
	}
	return true
}

func (s *Server) handleListApps(w http.ResponseWriter, r *http.Request) {
	list, err := s.apps.store.Load(r.Context())
	if err != nil && list == nil {
		s.log.Warn("apps store", "err", err)
		s.writeError(w, protocol.ErrUnavailable)
		return
	}
	out := struct {
		Apps []appView `json:"apps"`
	}{Apps: make([]appView, 0, len(list))}
	for _, a := range list {
		out.Apps = append(out.Apps, viewOf(a.Masked()))
	}
	writeJSON(w, http.StatusOK, out)
}

// loadApp reads one app from the store (not the registry, which may be a
// notice behind), answering a missing one.
func (s *Server) loadApp(w http.ResponseWriter, r *http.Request) (*apps.App, bool) {
	id := r.PathValue("id")
	list, err := s.apps.store.Load(r.Context())
	if err != nil && list == nil {
		s.log.Warn("apps store", "err", err)
		s.writeError(w, protocol.ErrUnavailable)
		return nil, false
	}
	for _, a := range list {
		if a.ID == id {
			return a.Clone(), true
		}
	}
	s.writeError(w, protocol.Errorf(protocol.CodeNotFound, "no app %q", truncateName(id)))
	return nil, false
}

func (s *Server) handleGetApp(w http.ResponseWriter, r *http.Request) {
	if a, ok := s.loadApp(w, r); ok {
		writeJSON(w, http.StatusOK, viewOf(a.Masked()))
	}
}

// handleAppKeys shows an app's keys in full, for the CLI to sign tokens
// and call the API as the app (eddy --app ID).
func (s *Server) handleAppKeys(w http.ResponseWriter, r *http.Request) {
	if a, ok := s.loadApp(w, r); ok {
		v := viewOf(a)
		writeJSON(w, http.StatusOK, struct {
			JWTKeys   []apps.JWTKey `json:"jwt_keys"`
			APIKeys   []apps.Key    `json:"api_keys"`
			AdminKeys []apps.Key    `json:"admin_keys"`
		}{v.JWTKeys, v.APIKeys, v.AdminKeys})
	}
}

// update changes app id with f and saves it, under the node's change lock.
func (s *Server) updateApp(w http.ResponseWriter, r *http.Request, f func(a *apps.App) error) (*apps.App, bool) {
	s.apps.changes.Lock()
	defer s.apps.changes.Unlock()
	a, ok := s.loadApp(w, r)
	if !ok {
		return nil, false
	}
	if err := f(a); err != nil {
		s.writeError(w, err)
		return nil, false
	}
	if err := a.Validate(); err != nil {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "%v", err))
		return nil, false
	}
	if err := s.apps.reg.Conflict(a); err != nil {
		s.writeError(w, protocol.Errorf(protocol.CodeBadRequest, "%v", err))
		return nil, false
	}
	err := s.apps.store.Update(r.Context(), a)
	if errors.Is(err, apps.ErrNotFound) {
		s.writeError(w, protocol.Errorf(protocol.CodeNotFound, "no app %q", a.ID))
		return nil, false
	}
	return a, s.appChanged(w, r.Context(), err)
}

func (s *Server) handlePatchApp(w http.ResponseWriter, r *http.Request) {
	var p appSettings
	if !s.readAppJSON(w, r, &p) {
		return
	}
	if a, ok := s.updateApp(w, r, func(a *apps.App) error { p.apply(a); return nil }); ok {
		writeJSON(w, http.StatusOK, viewOf(a.Masked()))
	}
}

func (s *Server) handleAddAppKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Kind string `json:"kind"`
	}
	if !s.readAppJSON(w, r, &req) {
		return
	}
	var id string
	a, ok := s.updateApp(w, r, func(a *apps.App) error {
		var err error
		if id, err = a.AddKey(req.Kind); err != nil {
			return protocol.Errorf(protocol.CodeBadRequest, "%v", err)
		}
		return nil
	})
	if !ok {
		return
	}
	out := map[string]string{"id": id, "kind": req.Kind}
	for _, k := range a.JWTKeys {
		if k.ID == id {
			out["alg"], out["secret"] = k.Alg, k.Secret
		}
	}
	for _, k := range append(append([]apps.Key(nil), a.APIKeys...), a.AdminKeys...) {
		if k.ID == id {
			out["key"] = k.Key
		}
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handleRetireAppKey(w http.ResponseWriter, r *http.Request) {
	keyID := r.PathValue("key_id")
	_, ok := s.updateApp(w, r, func(a *apps.App) error {
		switch err := a.RetireKey(keyID); {
		case errors.Is(err, apps.ErrNoKey):
			return protocol.Errorf(protocol.CodeNotFound, "app %q has no key %q", a.ID, truncateName(keyID))
		case err != nil:
			return protocol.Errorf(protocol.CodeBadRequest, "key %q: %v", keyID, err)
		}
		return nil
	})
	if ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) handleDeleteApp(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.apps.changes.Lock()
	err := s.apps.store.Delete(r.Context(), id)
	s.apps.changes.Unlock()
	if errors.Is(err, apps.ErrNotFound) {
		s.writeError(w, protocol.Errorf(protocol.CodeNotFound, "no app %q", truncateName(id)))
		return
	}
	if !s.appChanged(w, r.Context(), err) {
		return
	}
	// The app is gone from every node's registry (this one now, the others
	// on the notice): what it stored can go.
	if err := s.purgeApp(r.Context(), id); err != nil {
		s.log.Warn("app deleted, but removing its stored channels failed", "app", id, "err", err)
		s.writeError(w, protocol.Errorf(protocol.CodeUnavailable, "app %q is deleted, but its stored channels could not all be removed; the server log says why", id))
		return
	}
	s.log.Info("app deleted", "app", id)
	w.WriteHeader(http.StatusNoContent)
}

// prefixPurger is a broker that can delete every channel whose name
// starts with a prefix (history, numbering, presence).
type prefixPurger interface {
	PurgePrefix(ctx context.Context, prefix string) error
}

// purgeApp removes a deleted app's stored channels from the broker.
func (s *Server) purgeApp(ctx context.Context, id string) error {
	p, ok := s.broker.(prefixPurger)
	if !ok {
		return nil
	}
	return p.PurgePrefix(ctx, id+apps.Separator)
}
