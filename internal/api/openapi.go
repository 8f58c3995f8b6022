package api

import (
	_ "embed"
	"net/http"
)

// openAPI describes the admin API (OpenAPI 3.1). TestOpenAPI validates
// it and checks that it names exactly the routes Register mounts.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI is GET /api/openapi.json: no credential needed.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
