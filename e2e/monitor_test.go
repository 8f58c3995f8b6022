package e2e

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-gw/herald/internal/server"
)

// monitorConfig is testConfig with a user, for the password grant.
func monitorConfig(t *testing.T) *testServer {
	cfg := testConfig(t.TempDir())
	cfg.Orgs[0].Users = append(cfg.Orgs[0].Users, monitorUser)
	return startServer(t, cfg)
}

// monitorUser is the user of the password grant in these tests.
var monitorUser = server.UserConfig{Name: "alice", Password: "alice-pw"}

// monitorCredentials are each dialect's flags in these tests.
var monitorCredentials = map[string][]string{
	"stomp":    {"--api-key", keyA},
	"channels": {"--user", "alice", "--password", "alice-pw"},
	"ess":      {"--api-key", keyA},
	"streams":  {"--user", "alice", "--password", "alice-pw", "--company", "acme"},
}

// TestMonitorDialects: herald monitor in every dialect prints the events
// herald publish posted, with the filters applied, as JSON lines; in
// text, as the seed's printer does, with the camera's name.
func TestMonitorDialects(t *testing.T) {
	const other = "9d1e0f7a-1111-4c2b-8a3e-00000000000f"
	events := strings.Join([]string{
		`{"entity":"POLICY_ALERT","type":"CREATE","entityUuid":"a1","deviceUuid":"` + camA + `","severity":"critical","policyAlertTriggers":["MOTION_HUMAN"],"textDescription":"Person detected near entrance"}`,
		`{"entity":"POLICY_ALERT","type":"CREATE","entityUuid":"a2","deviceUuid":"` + other + `","policyAlertTriggers":["MOTION_HUMAN"]}`,
		`{"entity":"DEVICE_STATUS","deviceUuid":"` + camA + `","status":"offline"}`,
		`{"entity":"POLICY_ALERT","type":"CREATE","entityUuid":"a3","deviceUuid":"` + camA + `","policyAlertTriggers":["LINE_CROSSING"]}`,
		`{"entity":"POLICY_ALERT","type":"UPDATE","entityUuid":"a1","deviceUuid":"` + camA + `","policyAlertTriggers":["MOTION_HUMAN","LOITERING"]}`,
	}, "\n") + "\n"
	for _, dialect := range []string{"stomp", "channels", "ess", "streams"} {
		t.Run(dialect, func(t *testing.T) {
			ts := monitorConfig(t)
			ids := heraldPublish(t, ts.base, events, "-")
			if len(ids) != 5 {
				t.Fatalf("herald publish printed %v", ids)
			}
			args := append([]string{"--url", "ws://" + ts.srv.Addr(), "--dialect", dialect, "--format", "json",
				"--device", camA, "--trigger", "MOTION_HUMAN", "--after", "0"}, monitorCredentials[dialect]...)
			m := startMonitor(t, t.TempDir(), args...)
			m.waitLines(2)
			sentinel := heraldPublish(t, ts.base, "", "--device", camA, "--trigger", "MOTION_HUMAN", "--description", "sentinel")
			want := []string{ids[0], ids[4], sentinel[0]}
			if got := jsonIDs(t, m.waitLines(3)); !slices.Equal(got, want) {
				t.Fatalf("printed %v, want %v", got, want)
			}
			text := startMonitor(t, t.TempDir(), append(slices.Clone(args[:4]), append([]string{"--device", camA,
				"--trigger", "MOTION_HUMAN", "--after", "0"}, monitorCredentials[dialect]...)...)...)
			waitFor(t, patience, "three blocks of text", func() bool { return strings.Count(text.stdout.String(), "\n\n") == 3 })
			blocks := strings.Split(strings.TrimSuffix(text.stdout.String(), "\n\n"), "\n\n")
			for i, block := range blocks {
				if !strings.HasSuffix(block, "  id: "+want[i]) || !strings.Contains(block, " camera=Lobby Camera\n") {
					t.Fatalf("text block %d:\n%s\nwant camera=Lobby Camera and id %s", i, block, want[i])
				}
			}
			if dialect == "channels" {
				return // its lines are the dialect's pushes
			}
			var first map[string]any
			json.Unmarshal([]byte(m.lines()[0]), &first)
			if first["deviceName"] != "Lobby Camera" || first["textDescription"] != "Person detected near entrance" || first["entity"] != "POLICY_ALERT" {
				t.Fatalf("first line %v", first)
			}
		})
	}

	t.Run("text", func(t *testing.T) {
		ts := monitorConfig(t)
		ids := heraldPublish(t, ts.base, events, "-")
		m := startMonitor(t, t.TempDir(), "--url", "ws://"+ts.srv.Addr(), "--api-key", keyA, "--after", "0")
		// Alerts only by default: four of the five; each ends with a blank line.
		waitFor(t, patience, "four alerts", func() bool { return strings.Count(m.stdout.String(), "\n\n") == 4 })
		out := m.stdout.String()
		want := "] CREATE POLICY_ALERT camera=Lobby Camera\n  triggers: MOTION_HUMAN\n  severity: critical\n" +
			"  Person detected near entrance\n  uuid: a1  id: " + ids[0] + "\n\n"
		if !strings.Contains(out, want) || strings.Contains(out, "DEVICE_STATUS") ||
			!strings.Contains(out, "] CREATE POLICY_ALERT device="+other+"\n") {
			t.Fatalf("text output:\n%s\nwant a block ending %q, no DEVICE_STATUS", out, want)
		}
	})
}

// TestMonitorLoss: herald monitor with SQLite and PostgreSQL sinks while
// 10,000 events are posted; the monitor is killed with -9 twice and the
// server restarted; afterwards each database holds each acknowledged
// event exactly once, in id order.
func TestMonitorLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	pg := startPostgres(t)
	work := t.TempDir()
	dataDir := filepath.Join(work, "data")
	server, addr := startBinary(t, dataDir)
	base := "http://" + addr
	sqlitePath := filepath.Join(work, "events.db")
	args := []string{"--url", "ws://" + addr, "--api-key", keyA, "--all-events", "--format", "none",
		"--sqlite", sqlitePath, "--postgres", pg}
	m := startMonitor(t, work, append(args, "--after", "0")...)

	const total = 10_000
	var mu sync.Mutex
	var acked []string
	published := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	stored := func() int { return rowCount("sqlite", "file:"+sqlitePath) }
	var storedNow atomic.Int64 // stored(), sampled for the publisher
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: time.Minute}
		for batch := 0; batch < total/100; {
			// Keep the stream going through the kills and the restart:
			// at most 2,000 events ahead of the monitor, for a bounded time.
			for ahead := time.Now(); published()-int(storedNow.Load()) > 2000 && time.Since(ahead) < time.Minute; {
				time.Sleep(10 * time.Millisecond)
			}
			var b strings.Builder
			for i := range 100 {
				n := batch*100 + i
				b.WriteString(`{"entity":"TELEMETRY","deviceUuid":"` + camA + `","key":"k` + strconv.Itoa(n) + `","telemetry":{"n":{"value":` + strconv.Itoa(n) + `}}}` + "\n")
			}
			req, _ := http.NewRequest("POST", base+"/api/events", strings.NewReader(b.String()))
			req.Header.Set("x-auth-apikey", keyA)
			resp, err := client.Do(req)
			if err != nil {
				time.Sleep(50 * time.Millisecond) // the server restarts: the same keys again
				continue
			}
			var out struct{ IDs []string }
			decodeJSON(resp, &out)
			if resp.StatusCode != 200 || len(out.IDs) != 100 {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			mu.Lock()
			acked = append(acked, out.IDs...)
			mu.Unlock()
			batch++
		}
	}()
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
				storedNow.Store(int64(stored()))
			}
		}
	}()

	waitFor(t, 2*time.Minute, "2,000 events in SQLite", func() bool { return stored() >= 2000 })
	t.Logf("first kill -9 at %d stored, %d published", stored(), published())
	m.kill()
	m = startMonitor(t, work, args...)
	waitFor(t, 2*time.Minute, "5,000 events published", func() bool { return published() >= 5000 })
	t.Logf("server restart at %d stored, %d published", stored(), published())
	server.Process.Signal(os.Interrupt)
	server.Wait()
	startBinaryOn(t, dataDir, addr) // stopped by the test's cleanup
	waitFor(t, 2*time.Minute, "7,000 events in SQLite", func() bool { return stored() >= 7000 })
	t.Logf("second kill -9 at %d stored, %d published", stored(), published())
	m.kill()
	startMonitor(t, work, args...) // stopped by the test's cleanup
	<-done
	<-sampling

	mu.Lock()
	want := slices.Clone(acked)
	mu.Unlock()
	if !sortedNumerically(want) {
		t.Fatalf("the publisher's ids are not increasing")
	}
	for _, db := range []struct{ driver, dsn, order string }{{"sqlite", "file:" + sqlitePath, "rowid"}, {"pgx", pg, "ctid"}} {
		waitFor(t, 2*time.Minute, db.driver+" to hold every event", func() bool {
			return len(eventIDsIn(t, db.driver, db.dsn, db.order)) >= len(want)
		})
		if got := eventIDsIn(t, db.driver, db.dsn, db.order); !slices.Equal(got, want) {
			t.Fatalf("%s holds %d rows, want the %d acknowledged events once each, in id order", db.driver, len(got), len(want))
		}
	}
	t.Logf("%d events, 2 kill -9 of the monitor, 1 restart of the server: each database holds each once, in order", len(want))
}

func sortedNumerically(ids []string) bool {
	for i := 1; i < len(ids); i++ {
		if len(ids[i]) < len(ids[i-1]) || (len(ids[i]) == len(ids[i-1]) && ids[i] <= ids[i-1]) {
			return false
		}
	}
	return true
}

// receiver is a local HTTP endpoint for the webhook and Slack sinks: it
// answers 503 to the first failFor attempts at each event (all of them if
// failFor < 0).
type receiver struct {
	mu       sync.Mutex
	failFor  int
	attempts map[string]int
	bodies   []string
}

func startReceiver(t *testing.T, failFor int) (*receiver, string) {
	r := &receiver{failFor: failFor, attempts: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get("X-Herald-Event-Id")
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts[id]++
		if r.failFor < 0 || r.attempts[id] <= r.failFor {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		r.bodies = append(r.bodies, string(body))
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *receiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

// TestMonitorRelays: a webhook that fails the first two attempts gets
// every alert on the third; Slack gets the seed's message; a webhook that
// always fails fills the dead-letter file while the monitor goes on; the
// state file holds the cursor; SIGINT exits cleanly.
func TestMonitorRelays(t *testing.T) {
	ts := monitorConfig(t)
	flaky, flakyURL := startReceiver(t, 2)
	slack, slackURL := startReceiver(t, 0)
	_, deadURL := startReceiver(t, -1)
	work := t.TempDir()
	common := []string{"--url", "ws://" + ts.srv.Addr(), "--api-key", keyA, "--after", "0", "--format", "none", "--retry-backoff", "10ms"}
	relay := startMonitor(t, work, append(common, "--webhook", flakyURL, "--slack", slackURL, "--slack-interval", "10ms", "--state", "relay.state")...)
	dead := startMonitor(t, work, append(common, "--webhook", deadURL, "--retries", "2", "--dead-letter", "dead.jsonl", "--state", "dead.state")...)

	ids := heraldPublish(t, ts.base, "", "--device", camA, "--trigger", "MOTION_HUMAN", "--description", "Person detected near entrance")
	ids = append(ids, heraldPublish(t, ts.base, "", "--entity", "DEVICE_STATUS", "--device", camA, "--status", "offline")...)
	ids = append(ids, heraldPublish(t, ts.base, "", "--device", "dev-x", "--trigger", "LINE_CROSSING,AREA_INTRUSION")...)

	waitFor(t, patience, "two alerts at the webhook", func() bool { return len(flaky.received()) == 2 })
	for i, body := range flaky.received() {
		var e map[string]any
		json.Unmarshal([]byte(body), &e)
		if want := ids[i*2]; e["id"] != want || e["entity"] != "POLICY_ALERT" {
			t.Fatalf("webhook body %d: %s, want event %s", i, body, want)
		}
	}
	flaky.mu.Lock()
	if flaky.attempts[ids[0]] != 3 || flaky.attempts[ids[2]] != 3 {
		t.Fatalf("webhook attempts %v, want 3 per alert", flaky.attempts)
	}
	flaky.mu.Unlock()
	waitFor(t, patience, "two Slack messages", func() bool { return len(slack.received()) == 2 })
	wantText := []string{
		":rotating_light: *Security Alert*\nTriggers: MOTION_HUMAN\nPerson detected near entrance\nCamera: Lobby Camera",
		":rotating_light: *Security Alert*\nTriggers: LINE_CROSSING, AREA_INTRUSION\nNo description",
	}
	for i, body := range slack.received() {
		var msg map[string]string
		if json.Unmarshal([]byte(body), &msg) != nil || msg["text"] != wantText[i] {
			t.Fatalf("Slack message %d: %s, want text %q", i, body, wantText[i])
		}
	}

	waitFor(t, patience, "two dead letters", func() bool { return len(readLines(filepath.Join(work, "dead.jsonl"))) == 2 })
	more := heraldPublish(t, ts.base, "", "--device", camA, "--trigger", "MOTION_HUMAN")
	waitFor(t, patience, "the monitor to go on after dead letters", func() bool {
		return len(readLines(filepath.Join(work, "dead.jsonl"))) == 3 && stateOf(work, "dead.state") == more[0]
	})
	var letter struct {
		EventID  string          `json:"eventId"`
		Attempts int             `json:"attempts"`
		Error    string          `json:"error"`
		Event    json.RawMessage `json:"event"`
	}
	json.Unmarshal([]byte(readLines(filepath.Join(work, "dead.jsonl"))[0]), &letter)
	if letter.EventID != ids[0] || letter.Attempts != 2 || !strings.Contains(letter.Error, "503") || !strings.Contains(string(letter.Event), `"id":"`+ids[0]+`"`) {
		t.Fatalf("dead letter %+v", letter)
	}

	waitFor(t, patience, "the relay's cursor", func() bool { return stateOf(work, "relay.state") == more[0] })
	for _, m := range []*monitorProc{relay, dead} {
		if err := m.interrupt(); err != nil {
			t.Fatalf("herald monitor after SIGINT: %v\n%s", err, m.stderr.String())
		}
	}
}

func stateOf(dir, name string) string {
	data, _ := os.ReadFile(filepath.Join(dir, name))
	var st struct {
		EventID string `json:"eventId"`
	}
	json.Unmarshal(data, &st)
	return st.EventID
}

// TestMonitorNames: device names come from the REST API, one request per
// device per TTL however many events it sends, counted at a proxy in
// front of the server.
func TestMonitorNames(t *testing.T) {
	ts := monitorConfig(t)
	target, _ := url.Parse(ts.base)
	var mu sync.Mutex
	lookups := map[string]int{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if device, ok := strings.CutPrefix(r.URL.Path, "/api/devices/"); ok {
			mu.Lock()
			lookups[device]++
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	counts := func() map[string]int { mu.Lock(); defer mu.Unlock(); return maps.Clone(lookups) }

	m := startMonitor(t, t.TempDir(), "--url", strings.Replace(front.URL, "http", "ws", 1), "--api-key", keyA,
		"--after", "0", "--all-events", "--names-ttl", "1s")
	var events strings.Builder
	for range 10 {
		events.WriteString(`{"entity":"MOTION_STARTED","deviceUuid":"` + camA + `"}` + "\n" + `{"entity":"MOTION_STARTED","deviceUuid":"dev-x"}` + "\n")
	}
	heraldPublish(t, ts.base, events.String(), "-")
	waitFor(t, patience, "20 events printed", func() bool { return strings.Count(m.stdout.String(), "\n\n") == 20 })
	if got := counts(); got[camA] != 1 || got["dev-x"] != 1 || len(got) != 2 {
		t.Fatalf("lookups %v, want one per device", got)
	}
	out := m.stdout.String()
	if strings.Count(out, "camera=Lobby Camera") != 10 || strings.Count(out, "device=dev-x") != 10 {
		t.Fatalf("names in the output:\n%s", out)
	}
	looked := time.Now()
	waitFor(t, patience, "the names' TTL to pass", func() bool { return time.Since(looked) > 1100*time.Millisecond })
	heraldPublish(t, ts.base, events.String(), "-")
	waitFor(t, patience, "40 events printed", func() bool { return strings.Count(m.stdout.String(), "\n\n") == 40 })
	if got := counts(); got[camA] != 2 || got["dev-x"] != 2 {
		t.Fatalf("lookups %v after the TTL, want two per device", got)
	}
}
