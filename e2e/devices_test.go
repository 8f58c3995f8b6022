package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDevicesEndpoint: GET /api/devices/{id} answers a registered device
// of the caller's org by uuid or by number (the channels dialect's device
// id), with an API key or a bearer token; another org's device answers
// like an unknown one, and no credential is a 401.
func TestDevicesEndpoint(t *testing.T) {
	ts := startServer(t, testConfig(t.TempDir()))
	get := func(id string, header ...string) (int, string) {
		req, _ := http.NewRequest("GET", ts.base+"/api/devices/"+id, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	lobby := `{"kind":"camera","name":"Lobby Camera","number":1,"uuid":"` + camA + `"}`
	for _, c := range []struct {
		id     string
		header []string
		status int
		body   string
	}{
		{camA, []string{"x-auth-apikey", keyA}, 200, lobby},
		{camA, []string{"Authorization", "Bearer " + keyA}, 200, lobby},
		{"1", []string{"x-auth-apikey", keyA}, 200, lobby},
		{"2", []string{"x-auth-apikey", keyA}, 404, `{"error":{"code":"not_found","message":"no device with this uuid"}}`},
		{camB, []string{"x-auth-apikey", keyA}, 404, `{"error":{"code":"not_found","message":"no device with this uuid"}}`},
		{"nope", []string{"x-auth-apikey", keyA}, 404, `{"error":{"code":"not_found","message":"no device with this uuid"}}`},
		{camB, []string{"x-auth-apikey", keyB}, 200, `{"kind":"camera","name":"Dock Camera","number":0,"uuid":"` + camB + `"}`},
		{camA, nil, 401, ""},
	} {
		var status int
		var body string
		// The node's device directory fills from the registry's watch.
		waitFor(t, patience, "GET /api/devices/"+c.id, func() bool {
			status, body = get(c.id, c.header...)
			return status == c.status
		})
		if c.body != "" && body != c.body {
			t.Fatalf("GET /api/devices/%s with %v: %s, want %s", c.id, c.header, body, c.body)
		}
	}
}
