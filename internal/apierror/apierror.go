// Package apierror writes the errors of Eddy's HTTP APIs (the client API
// and the functions admin API) in one shape, {"error":{"code":..,"message":..}},
// with the HTTP status of the error's protocol code.
package apierror

import (
	"encoding/json"
	"net/http"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/protocol"
)

// Status maps a protocol error code to its HTTP status.
func Status(code string) int {
	switch code {
	case protocol.CodeBadRequest:
		return http.StatusBadRequest
	case protocol.CodeUnauthorized:
		return http.StatusUnauthorized
	case protocol.CodeForbidden:
		return http.StatusForbidden
	case protocol.CodeNotFound:
		return http.StatusNotFound
	case protocol.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case protocol.CodeRateLimited:
		return http.StatusTooManyRequests
	case protocol.CodeRejected:
		return http.StatusUnprocessableEntity
	case protocol.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Write answers with e and the status of its code. e must be meant for
// clients (a *protocol.Error built for them, or one of protocol's fixed
// errors), never an internal error's text.
func Write(w http.ResponseWriter, e *protocol.Error) {
	WriteStatus(w, Status(e.Code), e)
}

// WriteStatus is Write with a status of the caller's choosing (405, say).
func WriteStatus(w http.ResponseWriter, status int, e *protocol.Error) {
	WriteJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: e.Code, Message: e.Message}})
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
