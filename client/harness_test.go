package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald/internal/server"
)

const (
	org    = "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30"
	key    = "acme-key-1"
	camera = "9d1e0f7a-1111-4c2b-8a3e-000000000001"
)

// patience bounds every wait: CI runs on a loaded 2-core machine with the
// race detector.
const patience = 20 * time.Second

func testConfig(dataDir string) server.Config {
	return server.Config{
		Listen:  "127.0.0.1:0",
		DataDir: dataDir,
		Orgs: []server.OrgConfig{{UUID: org, Name: "acme",
			APIKeys: []server.APIKeyConfig{{Key: key, Scopes: []string{"subscribe", "publish"}}},
			Users:   []server.UserConfig{{Name: "alice", Password: "alice-pw"}},
			Devices: []server.DeviceConfig{{UUID: camera, Name: "Lobby Camera", Kind: "camera", Number: 1}}}},
	}
}

// node is a herald server that a test can stop and start again on the
// same address and data.
type node struct {
	t      testing.TB
	cfg    server.Config
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startNode(t testing.TB, cfg server.Config) *node {
	n := &node{t: t, cfg: cfg}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *node) start() {
	n.t.Helper()
	if n.addr != "" {
		n.cfg.Listen = n.addr
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("HERALD_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var srv *server.Server
	var err error
	// The address was free a moment ago; another test may hold it briefly.
	waitFor(n.t, "the server to start", func() bool {
		srv, err = server.New(ctx, n.cfg, logger)
		return err == nil
	})
	n.addr, n.cancel, n.done = srv.Addr(), cancel, make(chan error, 1)
	go func() { n.done <- srv.Run(ctx) }()
	waitFor(n.t, "the server to be healthy", func() bool {
		resp, err := http.Get(n.base() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
}

func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	if err := <-n.done; err != nil {
		n.t.Errorf("server.Run: %v", err)
	}
	n.cancel = nil
}

func (n *node) restart() {
	n.stop()
	n.start()
}

func (n *node) base() string { return "http://" + n.addr }

// publish posts events and returns their ids. Each carries a key, so a
// retry after a failure never stores one twice.
func (n *node) publish(events ...map[string]any) ([]string, error) {
	body, _ := json.Marshal(events)
	req, _ := http.NewRequest("POST", n.base()+"/api/events", bytes.NewReader(body))
	req.Header.Set("x-auth-apikey", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		IDs []string `json:"ids"`
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("publish: %d %s", resp.StatusCode, b)
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out.IDs, err
}

func (n *node) mustPublish(events ...map[string]any) []string {
	n.t.Helper()
	ids, err := n.publish(events...)
	if err != nil {
		n.t.Fatal(err)
	}
	return ids
}

func alert(key string) map[string]any {
	return map[string]any{"entity": "POLICY_ALERT", "type": "CREATE", "entityUuid": "alert-" + key, "key": key,
		"deviceUuid": camera, "severity": "critical", "policyAlertTriggers": []string{"MOTION_HUMAN"}, "textDescription": "Person " + key}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxy forwards loopback TCP connections to a node, and can cut every
// connection it carries: a network drop the server does not cause.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cuts   int
	down   bool // new connections are closed at once
}

func startProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) url() string { return "ws://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

// cut closes every connection the proxy carries.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.cuts++
}

// setDown makes the proxy refuse new connections (a network that is
// down), or carry them again.
func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func itoa(i int) string { return strconv.Itoa(i) }
