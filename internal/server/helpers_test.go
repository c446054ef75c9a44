package server_test

import (
	"errors"

	"github.com/eddyrt/eddy/api"
	"net/http"
	"strings"
)

// newUpgradeRequest returns a function that attempts a WebSocket handshake
// with the given Origin and reports the HTTP status.
func newUpgradeRequest(wsURL, origin string) (func() (int, error), error) {
	url := "http://" + strings.TrimPrefix(wsURL, "ws://")
	return func() (int, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, nil
}

func isStatus(err error, code int) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == code
}
