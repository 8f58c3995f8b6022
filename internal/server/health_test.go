package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

// getHealth polls /healthz, with key as x-auth-apikey unless empty, until
// it answers 200, and returns its JSON.
func getHealth(t *testing.T, srv *Server, key string) map[string]any {
	t.Helper()
	var health map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "http://"+srv.Addr()+"/healthz", nil)
		if key != "" {
			req.Header.Set("x-auth-apikey", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			health = nil
			err = json.NewDecoder(resp.Body).Decode(&health)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && err == nil {
				return health
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200: %v %v", err, health)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe sends GET path straight to the server's handler, as a request
// that reached it would be served whatever the listener's state.
func probe(srv *Server, path string) (int, map[string]any) {
	rec := httptest.NewRecorder()
	srv.http.Handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// TestReadiness checks /readyz and /healthz through a node's life: 503
// before Run follows the log, 200 while it serves, 503 again once
// shutdown has begun; with no figures in either body.
func TestReadiness(t *testing.T) {
	srv, err := New(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, wantCode int, wantReady, wantHealth string) {
		t.Helper()
		if code, body := probe(srv, "/readyz"); code != wantCode || len(body) != 1 || body["status"] != wantReady {
			t.Errorf("/readyz %s: %d %v, want %d and only status %q", when, code, body, wantCode, wantReady)
		}
		if code, body := probe(srv, "/healthz"); code != wantCode || len(body) != 1 || body["status"] != wantHealth {
			t.Errorf("/healthz %s: %d %v, want %d and only status %q", when, code, body, wantCode, wantHealth)
		}
	}
	check("before Run", http.StatusServiceUnavailable, "unavailable", "unavailable")

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	getHealth(t, srv, "") // polls until the node serves
	check("while serving", http.StatusOK, "ready", "ok")

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	check("after shutdown", http.StatusServiceUnavailable, "unavailable", "unavailable")
}

// TestSystemStatusViews checks what the channels system channel reports
// to an admin (the node's connections and usages) and to anyone else
// (their org's connections on this node, and no usage).
func TestSystemStatusViews(t *testing.T) {
	srv, err := New(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.engine.Close()
	defer srv.listener.Close()
	srv.gauges.Connections.Store(7) // other orgs' connections, and unauthenticated ones

	admin := srv.systemStatus(herald.Principal{Org: "org-a", Scopes: []string{herald.ScopeAdmin}})
	if !admin.NodeWide || admin.ActiveConnections != 7 || admin.DiskUsage <= 0 || admin.MemoryUsage <= 0 {
		t.Errorf("admin's system status: %+v, want the node's 7 connections and its usages", admin)
	}
	tenant := srv.systemStatus(herald.Principal{Org: "org-b", Scopes: []string{herald.ScopeSubscribe}})
	if tenant.NodeWide || tenant.ActiveConnections != 0 || tenant.CPUUsage != 0 || tenant.MemoryUsage != 0 || tenant.DiskUsage != 0 {
		t.Errorf("a tenant's system status: %+v, want only its org's 0 connections", tenant)
	}
}

// TestDrainDelay: asked to stop, a node with readiness.drain_delay
// answers /readyz with 503 on its listener at once, while /healthz and
// everything else are served as before, and stops once the delay passed.
func TestDrainDelay(t *testing.T) {
	srv, err := New(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Readiness: ReadinessConfig{DrainDelay: 4 * time.Second}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	getHealth(t, srv, "")
	get := func(path string) int {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz while serving: %d", code)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for get("/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not turn 503 once asked to stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the node stopped before the drain delay: %v", err)
	default:
	}
	if code := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while draining: %d, want 200 (the node is alive)", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not stop after the drain delay")
	}
}
