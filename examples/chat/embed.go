// Package chatdemo embeds the chat demo page (served by `eddy serve --demo`
// at /demo/).
package chatdemo

import (
	"embed"
	"io/fs"
)

//go:embed index.html app.js style.css
var static embed.FS

// Static holds the page's files at its root: index.html, app.js, style.css.
func Static() fs.FS { return static }
