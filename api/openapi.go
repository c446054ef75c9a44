package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 description of the HTTP API, served by every
// server at GET /api/v1/openapi.json. The server's tests check it against
// the real routes: every documented route answers, every route is documented.
//
//go:embed openapi.json
var OpenAPI []byte
