package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// goBinary is a program the tests build once per run.
type goBinary struct {
	name, pkg string
	once      sync.Once
	path      string
	err       error
}

var (
	heraldServe = &goBinary{name: "herald", pkg: "../cmd/herald"}
	natsServer  = &goBinary{name: "nats-server", pkg: "github.com/nats-io/nats-server/v2"} // from the module cache: no download
)

func (b *goBinary) build(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "herald-e2e-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, b.name)
		if out, err := exec.Command("go", "build", "-o", b.path, b.pkg).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// heraldBinary builds cmd/herald once per test run.
func heraldBinary(t *testing.T) string { return heraldServe.build(t) }

// listening matches the banner line that names herald's address.
var listening = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

// waitListening waits until the output read returns names the address
// herald listens on. herald is started on port 0 and picks a free port
// itself: a port found free beforehand may be taken by another test
// before herald binds it.
func waitListening(t *testing.T, read func() string) string {
	t.Helper()
	var addr string
	waitFor(t, time.Minute, "herald to print its address", func() bool {
		if m := listening.FindStringSubmatch(read()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	return addr
}

// syncBuffer is a buffer a process writes while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const binaryConfig = `
orgs:
  - uuid: ` + orgA + `
    name: acme
    api_keys:
      - key: "` + keyA + `"
        scopes: [subscribe, publish]
`

// startBinary runs `herald serve` on a port of its choosing, waits for
// /healthz and returns the address.
func startBinary(t *testing.T, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	return startBinaryOn(t, dataDir, "127.0.0.1:0")
}

// startBinaryOn is startBinary listening on listen, as a restarted
// server on its old address.
func startBinaryOn(t *testing.T, dataDir, listen string) (*exec.Cmd, string) {
	t.Helper()
	return startBinaryWith(t, dataDir, listen, binaryConfig)
}

// startBinaryWith is startBinaryOn with config.
func startBinaryWith(t *testing.T, dataDir, listen, config string) (*exec.Cmd, string) {
	t.Helper()
	cfgPath := filepath.Join(dataDir, "..", "herald.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(heraldBinary(t), "serve", "--config", cfgPath, "--data", dataDir, "--listen", listen)
	logs := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("herald output:\n%s", logs.String())
		}
	})
	addr := waitListening(t, logs.String)
	waitHealthy(t, "http://"+addr)
	return cmd, addr
}

// TestKill9KeepsAcknowledgedEvents: kill -9 during a stream of posts;
// every event acknowledged before the kill is served after a restart.
func TestKill9KeepsAcknowledgedEvents(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cmd, addr := startBinary(t, dataDir)
	ts := &testServer{t: t, base: "http://" + addr}

	var mu sync.Mutex
	acked := map[string]string{} // id → entityUuid
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A request that fails ends its worker (the server died), so
			// one slowed down by a loaded machine must not time out.
			client := &http.Client{Timeout: time.Minute}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				uuid := fmt.Sprintf("w%d-%d", w, i)
				body := `[` + fmt.Sprintf(`{"entity":"POLICY_ALERT","entityUuid":"%s-a"},{"entity":"POLICY_ALERT","entityUuid":"%s-b"}`, uuid, uuid) + `]`
				req, _ := http.NewRequest("POST", ts.base+"/api/events", strings.NewReader(body))
				req.Header.Set("x-auth-apikey", keyA)
				resp, err := client.Do(req)
				if err != nil {
					return // the server died
				}
				var out struct{ IDs []string }
				decodeJSON(resp, &out)
				if resp.StatusCode == 200 && len(out.IDs) == 2 {
					mu.Lock()
					acked[out.IDs[0]], acked[out.IDs[1]] = uuid+"-a", uuid+"-b"
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, time.Minute, "a few hundred acknowledged events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 600
	})
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	close(stop)
	wg.Wait()
	t.Logf("%d events acknowledged before kill -9", len(acked))

	_, addr = startBinary(t, dataDir)
	ts.base = "http://" + addr
	c := dialRaw(t, ts.wsURL(), keyA)
	c.connect()
	c.send("SUBSCRIBE\nid:all\ndestination:/topic/change/" + orgA + "\nx-herald-after:0\n\n\x00")
	found := 0
	for found < len(acked) {
		msg, err := c.next(patience)
		if err != nil {
			t.Fatalf("after restart: %d of %d acknowledged events served, then %v", found, len(acked), err)
		}
		id := frameHeader(msg, "message-id")
		if uuid, ok := acked[id]; ok {
			if !strings.Contains(frameBody(msg), `"entityUuid":"`+uuid+`"`) {
				t.Fatalf("event %s: body %s, want entityUuid %s", id, frameBody(msg), uuid)
			}
			found++
		}
	}
}

func decodeJSON(resp *http.Response, out any) {
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(out)
}
