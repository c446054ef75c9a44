// Package jsclient embeds the browser bundle of the JavaScript client, so
// the server can serve it at /eddy.js without Node at build time.
package jsclient

import (
	_ "embed"
	"net/http"
	"strconv"
)

//go:embed dist/eddy.min.js
var bundle []byte

// Handler serves the minified browser bundle (it defines the global Eddy).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Length", strconv.Itoa(len(bundle)))
		_, _ = w.Write(bundle)
	})
}
