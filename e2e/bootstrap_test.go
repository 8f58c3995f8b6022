package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runZeroConfig starts `herald serve` with no config in dir and returns
// what it printed on stdout. herald prints its banner before it serves, so
// once /healthz answers the banner is complete in the file.
func runZeroConfig(t *testing.T, dir string) (string, string, func()) {
	t.Helper()
	stdout, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd := exec.Command(heraldBinary(t), "serve", "--listen", "127.0.0.1:0")
	cmd.Dir = dir // the default data directory is ./herald-data
	cmd.Stdout, cmd.Stderr = stdout, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(time.Minute):
			t.Error("herald did not stop on SIGINT")
			cmd.Process.Kill()
			<-exited
		}
	}
	addr := waitListening(t, func() string {
		out, _ := os.ReadFile(stdout.Name())
		return string(out)
	})
	waitHealthy(t, "http://"+addr)
	out, err := os.ReadFile(stdout.Name())
	if err != nil {
		stop()
		t.Fatal(err)
	}
	return string(out), addr, stop
}

// TestFirstStartBootstrap: zero config creates a default org and an API
// key, prints them once with a working curl line; a restart reuses them
// and prints no key.
func TestFirstStartBootstrap(t *testing.T) {
	dir := t.TempDir()
	first, addr, stop := runZeroConfig(t, dir)
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

	second, addr, stop := runZeroConfig(t, dir)
	defer stop()
	ts.base = "http://" + addr
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
