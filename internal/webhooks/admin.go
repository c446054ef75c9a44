package webhooks

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/eddyrt/eddy/internal/apierror"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/protocol"
)

// SecretMask replaces secrets in the admin API's answers.
const SecretMask = "********"

// maxAdminBody bounds an admin request's body.
const maxAdminBody = 64 << 10

// Listed is a receiver as the admin API lists it: secret masked, and where
// it comes from ("config": eddy.yaml, "api": added through the API).
type Listed struct {
	config.Webhook
	Source string `json:"source"`
}

// AdminHandler serves the webhooks admin API; mount it behind the admin
// key, like the functions admin API:
//
//	GET    /api/v1/webhooks       the receivers in force: {"webhooks":[...]}
//	POST   /api/v1/webhooks       add one: {"url","secret","events":[..],"format","key"} → 201 with its id
//	DELETE /api/v1/webhooks/{id}  remove one added through the API → 204
type AdminHandler struct {
	s   *System
	mux *http.ServeMux
}

// Admin returns the admin API of s.
func (s *System) Admin() *AdminHandler {
	a := &AdminHandler{s: s, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /api/v1/webhooks", a.list)
	a.mux.HandleFunc("POST /api/v1/webhooks", a.add)
	a.mux.HandleFunc("DELETE /api/v1/webhooks/{id}", a.remove)
	return a
}

func (a *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Routes lists the routes as "METHOD /path".
func (a *AdminHandler) Routes() []string {
	return []string{"GET /api/v1/webhooks", "POST /api/v1/webhooks", "DELETE /api/v1/webhooks/{id}"}
}

func masked(w config.Webhook, source string) Listed {
	w.Secret = SecretMask
	return Listed{Webhook: w, Source: source}
}

func (a *AdminHandler) list(w http.ResponseWriter, _ *http.Request) {
	out := []Listed{}
	for _, h := range a.s.Dispatcher.Hooks() {
		src := "api"
		if a.s.isStatic(h.ID) {
			src = "config"
		}
		out = append(out, masked(h, src))
	}
	apierror.WriteJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

func (a *AdminHandler) add(w http.ResponseWriter, r *http.Request) {
	if a.s.store == nil {
		badRequest(w, "this node keeps no webhooks of its own; add them to webhooks in eddy.yaml")
		return
	}
	var h config.Webhook
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		badRequest(w, "invalid JSON body: "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		badRequest(w, "invalid JSON body: trailing data")
		return
	}
	if h.ID != "" {
		badRequest(w, "id: chosen by the server; leave it out")
		return
	}
	if h.Secret == SecretMask {
		badRequest(w, "secret: is the mask; send the real secret")
		return
	}
	if err := h.Validate(); err != nil {
		badRequest(w, err.Error())
		return
	}
	if n := len(a.s.Dispatcher.Hooks()); n >= config.MaxWebhooks {
		badRequest(w, "there are already "+itoa(n)+" webhooks; delete one first")
		return
	}
	h.ID = "wh_" + NewEventID()[:16]
	if err := a.s.store.Put(r.Context(), h); err != nil {
		a.s.log.Error("webhooks admin API: save", "err", err)
		apierror.Write(w, protocol.ErrInternal)
		return
	}
	if err := a.s.Reload(r.Context()); err != nil {
		a.s.log.Warn("webhooks: reload after add", "err", err)
	}
	apierror.WriteJSON(w, http.StatusCreated, masked(h, "api"))
}

func (a *AdminHandler) remove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if a.s.isStatic(id) {
		badRequest(w, "webhook "+id+" is defined in eddy.yaml (webhooks); remove it there")
		return
	}
	if a.s.store == nil {
		apierror.Write(w, &protocol.Error{Code: protocol.CodeNotFound, Message: "no webhook " + quote(id)})
		return
	}
	if err := a.s.store.Delete(r.Context(), id); err != nil {
		if errors.Is(err, ErrNotFound) {
			apierror.Write(w, &protocol.Error{Code: protocol.CodeNotFound, Message: "no webhook " + quote(id)})
			return
		}
		a.s.log.Error("webhooks admin API: delete", "err", err)
		apierror.Write(w, protocol.ErrInternal)
		return
	}
	if err := a.s.Reload(r.Context()); err != nil {
		a.s.log.Warn("webhooks: reload after delete", "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

func badRequest(w http.ResponseWriter, msg string) {
	apierror.Write(w, &protocol.Error{Code: protocol.CodeBadRequest, Message: msg})
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return strings.TrimSpace(string(b))
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
