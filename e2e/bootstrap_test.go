package e2e

import (
	"io"
	"net/http"
	"net/url"
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
	if strings.Contains(second, "API key: ") || !strings.Contains(second, org[1]) {
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

// TestZeroConfigTokens: with no config, herald generates a JWT secret at
// its first start, so the token dialects work out of the box: a token
// from the token endpoint (the printed API key as the password) and one
// from `herald token` (which reads the generated secret from the data
// dir) both open an ess session and a channels connection; after a
// restart the secret is the same and the tokens still work.
func TestZeroConfigTokens(t *testing.T) {
	dir := t.TempDir()
	first, addr, stop := runZeroConfig(t, dir)
	key := regexp.MustCompile(`API key: (hk_\S+)`).FindStringSubmatch(first)
	org := regexp.MustCompile(`Org: +default \(([0-9a-f-]{36})\)`).FindStringSubmatch(first)
	if key == nil || org == nil || !strings.Contains(first, "/api/ws/events/v1") || !strings.Contains(first, "/API/IDP/connect/token") {
		t.Fatalf("first start printed:\n%s", first)
	}
	resp, err := http.PostForm("http://"+addr+"/API/IDP/connect/token",
		url.Values{"grant_type": {"password"}, "username": {"integrator"}, "password": {key[1]}, "client_id": {"GrantValidatorClient"}})
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	decodeJSON(resp, &answer)
	if resp.StatusCode != 200 || answer.AccessToken == "" || answer.TokenType != "Bearer" {
		t.Fatalf("token endpoint: %d %+v", resp.StatusCode, answer)
	}
	cmd := exec.Command(heraldBinary(t), "token", "--org", org[1], "--user", "alice")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("herald token: %v", err)
	}
	signed := strings.TrimSpace(string(out))

	use := func(addr string) {
		t.Helper()
		ts := &testServer{t: t, base: "http://" + addr}
		for _, tok := range []string{answer.AccessToken, signed} {
			e := dialESS(t, ts.essURL(), tok)
			if r := e.startSession("", ""); r["status"] != float64(201) {
				t.Fatalf("ess startSession: %v", r)
			}
			e.c.CloseNow()
			ch := dialChannels(t, ts, "/ws")
			ch.login(tok)
			ch.c.CloseNow()
		}
	}
	use(addr)
	stop()
	_, addr, stop = runZeroConfig(t, dir)
	defer stop()
	use(addr)
}
