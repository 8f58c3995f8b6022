package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runZeroConfig starts `herald serve` with no config in dir and returns
// what it printed on stdout up to the first blank line after its banner
// (the whole banner, and on a first start the key and the curl line).
func runZeroConfig(t *testing.T, dir, addr string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, heraldBinary(t), "serve", "--listen", addr)
	cmd.Dir = dir // the default data directory is ./herald-data
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
		}
	}()
	waitFor(t, 20*time.Second, "herald serve to be healthy", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("herald did not stop on SIGINT")
		}
		cmd.Wait()
		cancel()
	}
	time.Sleep(200 * time.Millisecond) // let the banner flush
	return out.String(), stop
}

// TestFirstStartBootstrap: zero config creates a default org and an API
// key, prints them once with a working curl line; a restart reuses them
// and prints no key.
func TestFirstStartBootstrap(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	first, stop := runZeroConfig(t, dir, addr)
	key := regexp.MustCompile(`API key: (hk_\S+)`).FindStringSubmatch(first)
	org := regexp.MustCompile(`Org: +default \(([0-9a-f-]{36})\)`).FindStringSubmatch(first)
	if key == nil || org == nil || !strings.Contains(first, "curl -s -X POST http://"+addr+"/api/events") {
		t.Fatalf("first start printed:\n%s", first)
	}
	ts := &testServer{t: t, base: "http://" + addr}
	var got struct{ Org struct{ UUID string } }
	if status := ts.do("POST", "/api/org/getOrgV2", key[1], map[string]any{}, &got); status != 200 || got.Org.UUID != org[1] {
		t.Fatalf("getOrgV2 with the printed key: %d %+v", status, got)
	}
	id := ts.publish(key[1], alert("first", "cam"))[0]
	stop()

	second, stop := runZeroConfig(t, dir, addr)
	defer stop()
	if strings.Contains(second, "API key") || !strings.Contains(second, org[1]) {
		t.Fatalf("second start printed:\n%s", second)
	}
	c := dialRaw(t, ts.wsURL(), key[1])
	c.connect()
	c.send("SUBSCRIBE\nid:s\ndestination:/topic/change/" + org[1] + "\nx-herald-after:0\n\n\x00")
	if got := frameHeader(c.expect("MESSAGE\n"), "message-id"); got != id {
		t.Fatalf("after restart: event %s, want %s", got, id)
	}
	if _, err := os.Stat(filepath.Join(dir, "herald-data", "jetstream")); err != nil {
		t.Fatalf("zero config did not keep its data in ./herald-data: %v", err)
	}
}
