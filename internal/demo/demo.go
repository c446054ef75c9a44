// Package demo serves the chat demo of `eddy serve --demo`: the page at
// /demo/, a development-only token endpoint, a history endpoint for the page,
// and the profanity function attached to chat:*.
//
// Never enable it in production: POST /demo/token signs a token for any name
// anyone asks for, without authentication.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	examplefns "github.com/eddyrt/eddy/examples/functions"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eddyrt/eddy/api"
	chatdemo "github.com/eddyrt/eddy/examples/chat"
	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions"
)

// Settings of the demo.
const (
	TokenTTL      = time.Hour
	FunctionName  = "profanity"
	ChatPattern   = "chat:*"
	maxNameRunes  = 32
	historyLimit  = 100
	maxTokenBody  = 1 << 10
	historyBudget = 5 * time.Second
)

var roomRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Handlers returns the demo's routes (ServeMux patterns) for the client
// listener, logs a warning that demo mode is on, and deploys the profanity
// function on chat:* through engine when no function of that name exists
// (engine may be nil: nothing is deployed).
func Handlers(cfg config.Config, log *slog.Logger, engine *functions.Engine) map[string]http.Handler {
	log = log.With("component", "demo")
	log.Warn("DEMO MODE: POST /demo/token signs a client token for any name without authentication; never enable --demo in production")
	if engine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := DeployProfanity(ctx, engine, log); err != nil {
			log.Error("deploy the demo's profanity function", "err", err)
		}
	}
	h := &handler{cfg: cfg, log: log}
	return map[string]http.Handler{
		"GET /demo/":        http.StripPrefix("/demo/", http.FileServerFS(chatdemo.Static())),
		"POST /demo/token":  http.HandlerFunc(h.token),
		"GET /demo/history": http.HandlerFunc(h.history),
	}
}

// DeployProfanity deploys examples/functions/profanity.js as function
// "profanity" and associates it with chat:* (unless an association for
// chat:* exists). It does nothing when a function named "profanity" exists,
// so a redeployed or changed one is kept.
func DeployProfanity(ctx context.Context, engine *functions.Engine, log *slog.Logger) error {
	if _, err := engine.GetFunction(ctx, FunctionName); err == nil {
		return nil
	} else if !errors.Is(err, functions.ErrNotFound) {
		return err
	}
	fn := functions.Function{Name: FunctionName, Runtime: functions.RuntimeJS, Source: examplefns.Profanity}
	if err := engine.PutFunction(ctx, fn); err != nil {
		return err
	}
	assocs, err := engine.ListAssociations(ctx)
	if err != nil {
		return err
	}
	for _, a := range assocs {
		if a.Pattern == ChatPattern {
			log.Info("deployed function; chat:* already has an association, left as it is", "function", FunctionName, "functions", a.Functions)
			return nil
		}
	}
	if err := engine.PutAssociation(ctx, functions.Association{Pattern: ChatPattern, Functions: []string{FunctionName}}); err != nil {
		return err
	}
	log.Info("deployed function and associated it", "function", FunctionName, "pattern", ChatPattern)
	return nil
}

type handler struct {
	cfg config.Config
	log *slog.Logger
}

// TokenRequest is the body of POST /demo/token.
type TokenRequest struct {
	Name string `json:"name"`
}

// TokenResponse answers POST /demo/token.
type TokenResponse struct {
	Token     string `json:"token"`
	ExpiresIn int    `json:"expires_in"` // seconds
}

// ValidName trims name and checks it is 1-32 printable characters.
func ValidName(name string) (string, bool) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n == 0 || n > maxNameRunes || !utf8.ValidString(name) {
		return "", false
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", false
		}
	}
	return name, true
}

func (h *handler) token(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxTokenBody))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", `send {"name":"..."} as JSON`)
		return
	}
	name, ok := ValidName(req.Name)
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_request", "a name is 1-32 printable characters")
		return
	}
	info, _ := json.Marshal(map[string]string{"name": name})
	tok, err := auth.Mint([]byte(h.cfg.Secret), auth.TokenSpec{
		Subject:  name,
		TTL:      TokenTTL,
		Channels: []string{ChatPattern},
		Publish:  []string{ChatPattern},
		Info:     info,
	})
	if err != nil {
		h.log.Error("mint demo token", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not sign a token")
		return
	}
	writeJSON(w, http.StatusOK, TokenResponse{Token: tok, ExpiresIn: int(TokenTTL / time.Second)})
}

// history returns up to 100 kept messages of chat:<room> by asking this
// server's own HTTP API (the page must not hold the API key).
func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	room := r.URL.Query().Get("room")
	if !roomRE.MatchString(room) {
		writeError(w, http.StatusBadRequest, "bad_request", "room is 1-64 letters, digits, _ or -")
		return
	}
	base := h.apiBase(r)
	if base == "" {
		writeError(w, http.StatusInternalServerError, "internal", "cannot tell the API address")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), historyBudget)
	defer cancel()
	res, err := api.NewClient(base, h.cfg.APIKey).History(ctx, "chat:"+room, 0, historyLimit)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			writeError(w, ae.Status, ae.Code, ae.Message)
			return
		}
		h.log.Warn("demo history", "err", err)
		writeError(w, http.StatusBadGateway, "unavailable", "history is unavailable")
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// apiBase is the URL of the HTTP API: the listener this request came in on
// when the API shares it, else api_listen (an empty host meaning loopback).
func (h *handler) apiBase(r *http.Request) string {
	addr := h.cfg.APIListen
	if addr == "" {
		la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ok {
			return ""
		}
		addr = la.String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}
