// Package adminapi serves the functions admin HTTP API:
//
//	GET    /api/v1/functions                 list (secrets masked)
//	GET    /api/v1/functions/{name}          one function (secret masked)
//	PUT    /api/v1/functions/{name}          deploy: {"runtime":"js","source":"...","timeout_ms":100,"env":{"K":"V"}}
//	                                         or {"runtime":"http","url":"...","secret":"...","timeout_ms":500}
//	                                         or {"runtime":"wasm","module":"<base64 of the .wasm>","max_memory_mb":64}
//	DELETE /api/v1/functions/{name}
//	POST   /api/v1/functions/{name}/invoke   dry run: {"channel":..,"event":..,"data":..,"user":..,"info":..}
//	GET    /api/v1/associations              in run order
//	PUT    /api/v1/associations              {"pattern":"chat:*","functions":["a","b"],"on_error":"pass"}
//	DELETE /api/v1/associations?pattern=...
//	GET    /api/v1/secrets                   {"secrets":["NAME",...]}: names only, never values
//	PUT    /api/v1/secrets/{name}            {"value":"..."}: stored encrypted (needs secrets_key)
//	DELETE /api/v1/secrets/{name}
//
// Errors are {"error":{"code":"bad_request|not_found|internal","message":"..."}}
// with status 400, 404 or 500. Authentication is the caller's job: mount the
// handler behind the server's admin auth.
package adminapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/eddyrt/eddy/internal/apierror"
	"github.com/eddyrt/eddy/internal/functions"
	"github.com/eddyrt/eddy/internal/functions/wasmrt"
	"github.com/eddyrt/eddy/internal/protocol"
)

// MaxBodyBytes bounds request bodies (a function's source is at most 256 KiB).
const MaxBodyBytes = 1 << 20

// MaxDeployBytes bounds the body of a deploy, which may carry a
// WebAssembly module (base64 in JSON: 4 bytes for every 3).
const MaxDeployBytes = wasmrt.MaxModuleBytes/3*4 + MaxBodyBytes

// SecretMask replaces secrets in responses.
const SecretMask = "********"

type handler struct {
	e   *functions.Engine
	log *slog.Logger
}

// Handler is the admin API; Routes lists what it serves.
type Handler struct {
	mux    *http.ServeMux
	routes []string
}

// NewHandler returns the admin API for e, serving the full /api/v1/...
// paths; log receives the causes of internal errors (nil: slog.Default()).
func NewHandler(e *functions.Engine, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{e: e, log: log}
	a := &Handler{mux: http.NewServeMux()}
	for _, r := range []struct {
		pattern string
		fn      http.HandlerFunc
	}{
		{"GET /api/v1/functions", h.listFunctions},
		{"GET /api/v1/functions/{name}", h.getFunction},
		{"PUT /api/v1/functions/{name}", h.putFunction},
		{"DELETE /api/v1/functions/{name}", h.deleteFunction},
		{"POST /api/v1/functions/{name}/invoke", h.invoke},
		{"GET /api/v1/associations", h.listAssociations},
		{"PUT /api/v1/associations", h.putAssociation},
		{"DELETE /api/v1/associations", h.deleteAssociation},
		{"GET /api/v1/secrets", h.listSecrets},
		{"PUT /api/v1/secrets/{name}", h.putSecret},
		{"DELETE /api/v1/secrets/{name}", h.deleteSecret},
	} {
		a.mux.HandleFunc(r.pattern, r.fn)
		a.routes = append(a.routes, r.pattern)
	}
	return a
}

func (a *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Routes lists the routes as "METHOD /path".
func (a *Handler) Routes() []string { return append([]string(nil), a.routes...) }

func mask(fn functions.Function) functions.Function {
	if fn.Secret != "" {
		fn.Secret = SecretMask
	}
	return fn
}

func (h *handler) listFunctions(w http.ResponseWriter, r *http.Request) {
	fns, err := h.e.ListFunctions(r.Context())
	if err != nil {
		h.writeError(w, err)
		return
	}
	for i := range fns {
		fns[i] = mask(fns[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"functions": fns})
}

func (h *handler) getFunction(w http.ResponseWriter, r *http.Request) {
	fn, err := h.e.GetFunction(r.Context(), r.PathValue("name"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, mask(fn))
}

func (h *handler) putFunction(w http.ResponseWriter, r *http.Request) {
	var fn functions.Function
	if !h.readJSONMax(w, r, &fn, MaxDeployBytes) {
		return
	}
	name := r.PathValue("name")
	if fn.Name != "" && fn.Name != name {
		h.writeError(w, &functions.BadRequestError{Message: "name in the body differs from the path"})
		return
	}
	fn.Name = name
	if fn.Secret == SecretMask {
		// A masked secret sent back unchanged (GET, edit, PUT) keeps the stored one.
		old, err := h.e.GetFunction(r.Context(), name)
		if err != nil {
			h.writeError(w, &functions.BadRequestError{Message: "secret is the mask but no function to keep it from"})
			return
		}
		fn.Secret = old.Secret
	}
	if err := h.e.PutFunction(r.Context(), fn); err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, mask(fn))
}

func (h *handler) deleteFunction(w http.ResponseWriter, r *http.Request) {
	if err := h.e.DeleteFunction(r.Context(), r.PathValue("name")); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// invokeRequest is a Message plus the info claim, which Message keeps out
// of JSON.
type invokeRequest struct {
	functions.Message
	Info json.RawMessage `json:"info"`
}

func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	var req invokeRequest
	if !h.readJSON(w, r, &req) {
		return
	}
	msg := req.Message
	msg.Info = req.Info
	if msg.Channel == "" {
		h.writeError(w, &functions.BadRequestError{Message: "channel is required"})
		return
	}
	res, err := h.e.Invoke(r.Context(), r.PathValue("name"), msg)
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) listAssociations(w http.ResponseWriter, r *http.Request) {
	as, err := h.e.ListAssociations(r.Context())
	if err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"associations": as})
}

func (h *handler) putAssociation(w http.ResponseWriter, r *http.Request) {
	var a functions.Association
	if !h.readJSON(w, r, &a) {
		return
	}
	if err := h.e.PutAssociation(r.Context(), a); err != nil {
		h.writeError(w, err)
		return
	}
	if a.OnError == "" {
		a.OnError = functions.OnErrorPass
	}
	writeJSON(w, http.StatusOK, a)
}

func (h *handler) deleteAssociation(w http.ResponseWriter, r *http.Request) {
	pattern := r.URL.Query().Get("pattern")
	if pattern == "" {
		h.writeError(w, &functions.BadRequestError{Message: "query parameter pattern is required"})
		return
	}
	if err := h.e.DeleteAssociation(r.Context(), pattern); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return h.readJSONMax(w, r, v, MaxBodyBytes)
}

func (h *handler) readJSONMax(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		h.writeError(w, &functions.BadRequestError{Message: "invalid JSON body: " + err.Error()})
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		h.writeError(w, &functions.BadRequestError{Message: "invalid JSON body: trailing data"})
		return false
	}
	return true
}

// writeError answers with err in the API's error vocabulary:
// *BadRequestError is bad_request (400), ErrNotFound not_found (404), and
// anything else the fixed internal error (500), its cause logged.
func (h *handler) writeError(w http.ResponseWriter, err error) {
	var bre *functions.BadRequestError
	switch {
	case errors.As(err, &bre):
		apierror.Write(w, &protocol.Error{Code: protocol.CodeBadRequest, Message: bre.Error()})
	case errors.Is(err, functions.ErrNotFound):
		apierror.Write(w, &protocol.Error{Code: protocol.CodeNotFound, Message: err.Error()})
	default:
		h.log.Error("functions admin API", "err", err)
		apierror.Write(w, protocol.ErrInternal)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) { apierror.WriteJSON(w, status, v) }

func (h *handler) listSecrets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"secrets": h.e.SecretNames()})
}

// putSecret stores a secret; the answer names it and never echoes the value.
func (h *handler) putSecret(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Value string `json:"value"`
	}
	if !h.readJSON(w, r, &body) {
		return
	}
	name := r.PathValue("name")
	if err := h.e.SetSecret(r.Context(), name, body.Value); err != nil {
		h.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name})
}

func (h *handler) deleteSecret(w http.ResponseWriter, r *http.Request) {
	if err := h.e.DeleteSecret(r.Context(), r.PathValue("name")); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
