package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-gw/herald/client"
)

// localCluster runs scripts/local-cluster.sh on the tests' binaries, free
// ports and a temporary state directory.
type localCluster struct {
	t      *testing.T
	dir    string
	herald []int // the herald nodes' ports
	env    []string
}

func newLocalCluster(t *testing.T) *localCluster {
	t.Helper()
	ports := freePorts(t, 11)
	list := func(ps []int) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = strconv.Itoa(p)
		}
		return strings.Join(s, " ")
	}
	c := &localCluster{t: t, dir: t.TempDir(), herald: ports[:2]}
	c.env = append(os.Environ(),
		"LOCAL_CLUSTER_DIR="+c.dir,
		"LOCAL_CLUSTER_HERALD_PORTS="+list(ports[:2]),
		"LOCAL_CLUSTER_NATS_PORTS="+list(ports[2:5]),
		"LOCAL_CLUSTER_ROUTE_PORTS="+list(ports[5:8]),
		"LOCAL_CLUSTER_MONITOR_PORTS="+list(ports[8:11]),
		"HERALD_BIN="+heraldBinary(t),
		"NATS_SERVER_BIN="+natsServer.build(t))
	return c
}

// run runs the script with arg and returns its output and exit code.
func (c *localCluster) run(arg string) (string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../scripts/local-cluster.sh", arg)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The nodes it starts must not hold its output open: with them
	// detached, the output ends when the script does.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrWaitDelay):
		c.t.Fatalf("local-cluster.sh %s: its output stayed open after it exited (a node kept it):\n%s", arg, out.String())
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	case err != nil:
		c.t.Fatalf("local-cluster.sh %s: %v\n%s", arg, err, out.String())
	}
	return out.String(), 0
}

// pids reads the nodes' pid files.
func (c *localCluster) pids() map[string]int {
	c.t.Helper()
	pids := map[string]int{}
	for _, n := range []string{"nats-1", "nats-2", "nats-3", "herald-1", "herald-2"} {
		b, err := os.ReadFile(filepath.Join(c.dir, n+".pid"))
		if err != nil {
			c.t.Fatalf("%s: %v", n, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			c.t.Fatalf("%s.pid: %v", n, err)
		}
		pids[n] = pid
	}
	return pids
}

// logs is the end of every node's log, for a failed test.
func (c *localCluster) logs() string {
	var b strings.Builder
	for _, n := range []string{"nats-1", "nats-2", "nats-3", "herald-1", "herald-2"} {
		data, _ := os.ReadFile(filepath.Join(c.dir, n+".log"))
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s.log (end):\n%s\n", n, data)
	}
	return b.String()
}

// gone reports whether pid has exited (a zombie has).
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(stat)
	return strings.HasPrefix(s[strings.LastIndex(s, ")")+1:], " Z")
}

var apiKeyLine = regexp.MustCompile(`API key\s+(hk_\S+)`)

// TestLocalClusterScript runs scripts/local-cluster.sh as the docs do:
// start, status, start again, an event posted to herald-1 read on
// herald-2, stop, status. The nodes are stopped whatever happens.
func TestLocalClusterScript(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, tool := range []string{"bash", "curl", "setsid"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the script needs %s: %v", tool, err)
		}
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc to tell a stopped process")
	}
	c := newLocalCluster(t)
	t.Cleanup(func() {
		if out, code := c.run("stop"); code != 0 {
			t.Errorf("cleanup: stop exited %d:\n%s", code, out)
		}
		if t.Failed() {
			t.Log(c.logs())
		}
	})

	out, code := c.run("start")
	if code != 0 {
		t.Fatalf("start exited %d:\n%s", code, out)
	}
	m := apiKeyLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("start printed no API key:\n%s", out)
	}
	key := m[1]
	for _, want := range []string{"http://127.0.0.1:" + strconv.Itoa(c.herald[0]), "http://127.0.0.1:" + strconv.Itoa(c.herald[1]), "nats://127.0.0.1:", "stop"} {
		if !strings.Contains(out, want) {
			t.Errorf("start's output lacks %q:\n%s", want, out)
		}
	}

	out, code = c.run("status")
	if code != 0 || strings.Count(out, " running ") != 5 {
		t.Fatalf("status after start: exit %d, want 0 and five running nodes:\n%s", code, out)
	}
	pids := c.pids()

	out, code = c.run("start")
	if code != 0 || !strings.Contains(out, "already running") || !strings.Contains(out, key) {
		t.Fatalf("second start: exit %d, want 0, \"already running\" and the key:\n%s", code, out)
	}
	if again := c.pids(); fmt.Sprint(again) != fmt.Sprint(pids) {
		t.Fatalf("second start changed the processes: %v, then %v", pids, again)
	}

	// What herald-1 acknowledges, herald-2 delivers.
	node1 := "http://127.0.0.1:" + strconv.Itoa(c.herald[0])
	req, _ := http.NewRequest("POST", node1+"/api/events", strings.NewReader(
		`{"entity":"POLICY_ALERT","type":"CREATE","entityUuid":"local-cluster-1","deviceUuid":"camera-1"}`))
	req.Header.Set("x-auth-apikey", key)
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var posted struct{ IDs []string }
	decodeJSON(resp, &posted)
	if resp.StatusCode != 200 || len(posted.IDs) != 1 {
		t.Fatalf("POST /api/events on herald-1: %d %v", resp.StatusCode, posted.IDs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := client.Dial(ctx, "ws://127.0.0.1:"+strconv.Itoa(c.herald[1]), client.WithAPIKey(key), client.After(0))
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Next(ctx)
	s.Close()
	if err != nil {
		t.Fatalf("herald-2: %v", err)
	}
	if strconv.FormatUint(e.ID, 10) != posted.IDs[0] || e.EntityUUID != "local-cluster-1" {
		t.Fatalf("herald-2 delivered id %d %q, want id %s local-cluster-1", e.ID, e.EntityUUID, posted.IDs[0])
	}

	out, code = c.run("stop")
	if code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: exit %d:\n%s", code, out)
	}
	// stop returns once every process has exited.
	for n, pid := range pids {
		if !gone(pid) {
			t.Errorf("%s (pid %d) still runs after stop", n, pid)
		}
	}
	if out, code = c.run("status"); code != 3 || strings.Contains(out, " running ") {
		t.Fatalf("status after stop: exit %d, want 3 and nothing running:\n%s", code, out)
	}
	if out, code = c.run("stop"); code != 0 || !strings.Contains(out, "not running") {
		t.Fatalf("second stop: exit %d, want 0 and \"not running\":\n%s", code, out)
	}
}
