// Package examplefns embeds the example functions, so the demo can deploy
// them from the binary.
package examplefns

import _ "embed"

// Profanity is profanity.js: it replaces listed words with ***.
//
//go:embed profanity.js
var Profanity string
