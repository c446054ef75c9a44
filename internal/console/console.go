// Package console serves the web admin console's pages (/admin): static
// HTML, CSS and JavaScript embedded in the binary, so the console works
// offline and needs no CDN. The page signs in with the admin key, keeps it
// in the browser session only, and does everything through the admin HTTP
// API (docs/console.md); nothing here checks a key or holds data.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the console under /admin/.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/admin/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The page handles a key: no framing by other sites, no scripts
		// but its own, no referrer leaking the admin path.
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
