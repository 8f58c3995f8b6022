package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// chromiumPath is Debian's Chromium, installed by scripts/test-deps.sh.
const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium driven over the DevTools protocol, one
// page.
type browser struct {
	t      *testing.T
	page   *websocket.Conn
	mu     sync.Mutex
	nextID int
}

// startChromium starts headless Chromium with a fresh profile, with the
// flags this machine's closed network needs, and attaches to its page.
// Without Chromium the test is skipped, unless CI is set: there it fails.
func startChromium(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: scripts/test-deps.sh installs it (Debian package chromium)", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install chromium, or run scripts/test-deps.sh)", chromiumPath)
	}
	profile := t.TempDir()
	cmd := exec.Command(chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // Chromium and every process it started
		cmd.Wait()
	})
	var port string
	waitFor(t, 30*time.Second, "Chromium's DevTools port", func() bool {
		b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err != nil {
			return false
		}
		port, _, _ = strings.Cut(string(b), "\n")
		return port != ""
	})
	var wsURL string
	waitFor(t, patience, "Chromium's page target", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var targets []struct{ Type, WebSocketDebuggerURL string }
		if json.NewDecoder(resp.Body).Decode(&targets) != nil {
			return false
		}
		for _, tg := range targets {
			if tg.Type == "page" {
				wsURL = tg.WebSocketDebuggerURL
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	page, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("attach to the page: %v; chromium stderr:\n%s", err, stderr.String())
	}
	page.SetReadLimit(64 << 20)
	t.Cleanup(func() { page.CloseNow() })
	return &browser{t: t, page: page}
}

// call sends one DevTools command and returns its result.
func (b *browser) call(method string, params map[string]any) map[string]any {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	id := b.nextID
	raw, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := b.page.Write(ctx, websocket.MessageText, raw); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	for {
		_, data, err := b.page.Read(ctx)
		if err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
		var m struct {
			ID     int            `json:"id"`
			Result map[string]any `json:"result"`
			Error  map[string]any `json:"error"`
		}
		if json.Unmarshal(data, &m) != nil || m.ID != id {
			continue // an event, or another command's answer
		}
		if m.Error != nil {
			b.t.Fatalf("%s: %v", method, m.Error)
		}
		return m.Result
	}
}

func (b *browser) navigate(url string) { b.call("Page.navigate", map[string]any{"url": url}) }

// text evaluates a JavaScript expression that yields a string.
func (b *browser) text(expression string) string {
	b.t.Helper()
	r := b.call("Runtime.evaluate", map[string]any{"expression": expression, "returnByValue": true})
	v, _ := r["result"].(map[string]any)["value"].(string)
	return v
}

// waitText waits until the page's element id holds text containing want.
func (b *browser) waitText(id, want string) string {
	b.t.Helper()
	var got string
	deadline := time.Now().Add(patience)
	for {
		got = b.text("(document.getElementById(" + strconv.Quote(id) + ")||{}).innerText||(document.getElementById(" + strconv.Quote(id) + ")||{}).value||''")
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("#%s never showed %q: %q; the page's log: %q", id, want, got, b.text("document.getElementById('log').innerText"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
