// Package home serves the landing page at GET /: what this server is, its
// version, and links to what it serves (the demo, the browser client, the
// docs), so a newcomer who opens the server's address finds their way.
package home

import (
	"html/template"
	"net/http"
)

// Page is what the landing page shows.
type Page struct {
	Version string
	Demo    bool // the --demo chat page is served at /demo/
	Console bool // the admin console is served at /admin
}

const docsBase = "https://github.com/eddyrt/eddy/blob/main/docs/"

var page = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Eddy</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1d2433;line-height:1.5}
h1{margin-bottom:.2rem}.v{color:#667;margin-top:0}code{background:#f1f3f7;padding:.1rem .3rem;border-radius:4px}
a{color:#2456d6}li{margin:.3rem 0}
</style></head><body>
<h1>Eddy</h1>
<p class="v">real-time messaging server · {{.Version}}</p>
<p>Browsers connect to <code>/ws</code> with a token your backend signed; backends publish with <code>POST /api/v1/publish</code>.</p>
<ul>
{{if .Demo}}<li><a href="/demo/">Chat demo</a> (development mode)</li>{{end}}
{{if .Console}}<li><a href="/admin">Admin console</a></li>{{end}}
<li><a href="/eddy.js">Browser client</a> (<code>&lt;script src="/eddy.js"&gt;</code>)</li>
<li><a href="{{.Docs}}protocol.md">WebSocket protocol</a></li>
<li><a href="{{.Docs}}http-api.md">HTTP API</a></li>
<li><a href="{{.Docs}}functions.md">Functions</a></li>
<li><a href="/healthz">Health</a> · <a href="/readyz">Readiness</a></li>
</ul>
</body></html>
`))

// Handler serves p at exactly "/" (mount it as "GET /{$}").
func Handler(p Page) http.Handler {
	data := struct {
		Page
		Docs string
	}{p, docsBase}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_ = page.Execute(w, data)
	})
}
