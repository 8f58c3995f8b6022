package monitor

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-gw/herald/client"
)

func event(id uint64, entity, device string) enriched {
	body, _ := json.Marshal(map[string]any{"id": itoa(id), "entity": entity, "deviceUuid": device,
		"policyAlertTriggers": []string{"MOTION_HUMAN"}, "textDescription": "Person detected"})
	return enriched{Event: client.Event{ID: id, Entity: entity, Channel: "alerts", DeviceUUID: device,
		Triggers: []string{"MOTION_HUMAN"}, Description: "Person detected", Body: body}}
}

func itoa(id uint64) string { return strconv.FormatUint(id, 10) }

func testCfg(t *testing.T) Config {
	return Config{Retries: 3, Backoff: time.Millisecond, DeadLetter: filepath.Join(t.TempDir(), "dead.jsonl"),
		SlackEvery: time.Millisecond}.withDefaults()
}

// receiver is a local HTTP endpoint that fails the first attempts at each
// event, or all of them.
type receiver struct {
	mu       sync.Mutex
	failFor  int // attempts per event answered 503
	attempts map[string]int
	bodies   map[string]string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("X-Herald-Event-Id")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[id]++
	if r.failFor < 0 || r.attempts[id] <= r.failFor {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	r.bodies[id] = string(body)
}

func startReceiver(t *testing.T, failFor int) (*receiver, string) {
	r := &receiver{failFor: failFor, attempts: map[string]int{}, bodies: map[string]string{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

// TestWebhookRetries: a receiver that fails twice gets each event on the
// third attempt, with the event's JSON and its id in a header.
func TestWebhookRetries(t *testing.T) {
	r, url := startReceiver(t, 2)
	cfg := testCfg(t)
	p := newPoster("webhook", url, cfg, webhookBody, nil)
	batch := []enriched{event(1, "POLICY_ALERT", "cam-1"), event(2, "POLICY_ALERT", "cam-2")}
	batch[1].DeviceName = "Lobby Camera"
	if err := p.write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if r.attempts["1"] != 3 || r.attempts["2"] != 3 {
		t.Fatalf("attempts %v, want 3 each", r.attempts)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.bodies["2"]), &got); err != nil || got["deviceName"] != "Lobby Camera" || got["id"] != "2" {
		t.Fatalf("body %s (%v)", r.bodies["2"], err)
	}
	if _, err := os.Stat(cfg.DeadLetter); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a dead-letter file for delivered events: %v", err)
	}
}

// TestWebhookDeadLetter: a receiver that always fails gets Retries
// attempts per event; the events go to the dead-letter file, and the
// sink takes the next batch.
func TestWebhookDeadLetter(t *testing.T) {
	r, url := startReceiver(t, -1)
	cfg := testCfg(t)
	var failures atomic.Int32
	p := newPoster("webhook", url, cfg, webhookBody, nil)
	p.onFailure = func(error) { failures.Add(1) }
	for _, batch := range [][]enriched{{event(1, "POLICY_ALERT", "c")}, {event(2, "POLICY_ALERT", "c"), event(3, "POLICY_ALERT", "c")}} {
		if err := p.write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	if r.attempts["1"] != 3 || r.attempts["3"] != 3 || failures.Load() != 3 {
		t.Fatalf("attempts %v, failures %d", r.attempts, failures.Load())
	}
	f, err := os.Open(cfg.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	for s := bufio.NewScanner(f); s.Scan(); {
		var line struct {
			EventID  string          `json:"eventId"`
			Attempts int             `json:"attempts"`
			Error    string          `json:"error"`
			Event    json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(s.Bytes(), &line); err != nil || line.Attempts != 3 || !strings.Contains(line.Error, "503") || len(line.Event) == 0 {
			t.Fatalf("dead-letter line %s (%v)", s.Bytes(), err)
		}
		ids = append(ids, line.EventID)
	}
	if !slices.Equal(ids, []string{"1", "2", "3"}) {
		t.Fatalf("dead-lettered %v", ids)
	}
}

// TestWebhookManyRetries: the backoff doubles up to its cap, never past
// it into an overflow, however many attempts are allowed.
func TestWebhookManyRetries(t *testing.T) {
	r, url := startReceiver(t, -1)
	cfg := testCfg(t)
	cfg.Retries, cfg.Backoff = 80, time.Nanosecond
	if err := newPoster("webhook", url, cfg, webhookBody, nil).write(context.Background(), []enriched{event(1, "X", "")}); err != nil {
		t.Fatal(err)
	}
	if r.attempts["1"] != 80 {
		t.Fatalf("%d attempts, want 80", r.attempts["1"])
	}
}

// TestWebhookRefusedIsNotRetried: a 4xx answer other than 408 and 429 is
// dead-lettered at once.
func TestWebhookRefusedIsNotRetried(t *testing.T) {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		http.Error(w, "no such hook", http.StatusNotFound)
	}))
	defer srv.Close()
	cfg := testCfg(t)
	if err := newPoster("webhook", srv.URL, cfg, webhookBody, nil).write(context.Background(), []enriched{event(1, "X", "")}); err != nil {
		t.Fatal(err)
	}
	if attempts.Load() != 1 {
		t.Fatalf("%d attempts at a 404", attempts.Load())
	}
}

// TestSlack: alerts only, in the seed's message format with the camera's
// name, at most one message per SlackEvery.
func TestSlack(t *testing.T) {
	r, url := startReceiver(t, 0)
	cfg := testCfg(t)
	cfg.SlackEvery = 100 * time.Millisecond
	p := newPoster("slack", url, cfg, slackBody, isSlackAlert)
	alert := event(1, "POLICY_ALERT", "cam-1")
	alert.DeviceName, alert.DeviceKind = "Lobby Camera", "camera"
	status := event(2, "DEVICE_STATUS", "cam-1")
	status.Channel = "devices"
	bare := event(3, "POLICY_ALERT", "cam-2")
	bare.Description = ""
	start := time.Now()
	if err := p.write(context.Background(), []enriched{alert, status, bare}); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < cfg.SlackEvery {
		t.Fatalf("two messages %v apart, limit one per %v", elapsed, cfg.SlackEvery)
	}
	want := map[string]string{
		"1": ":rotating_light: *Security Alert*\nTriggers: MOTION_HUMAN\nPerson detected\nCamera: Lobby Camera",
		"3": ":rotating_light: *Security Alert*\nTriggers: MOTION_HUMAN\nNo description",
	}
	if len(r.bodies) != 2 {
		t.Fatalf("Slack got %v, want the two alerts", r.bodies)
	}
	for id, text := range want {
		var msg map[string]string
		if err := json.Unmarshal([]byte(r.bodies[id]), &msg); err != nil || msg["text"] != text {
			t.Fatalf("message for %s: %s, want text %q", id, r.bodies[id], text)
		}
	}
}

// TestSQLite: the seed's table, with event_id unique; the cursor moves in
// the rows' transaction; a replayed batch stores nothing twice; a table
// the seed's code made (no event_id) gets the column.
func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	seed, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seed.Exec(`CREATE TABLE events (entity TEXT, entity_uuid TEXT, change_type TEXT, device_uuid TEXT, timestamp_ms INTEGER, payload TEXT)`); err != nil {
		t.Fatal(err)
	}
	seed.Exec(`INSERT INTO events (entity) VALUES ('OLD')`)
	seed.Close()

	ctx := context.Background()
	s, err := openSQL(ctx, "sqlite", path, "default")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if _, ok, err := s.cursor(ctx); ok || err != nil {
		t.Fatalf("cursor of a new database: %v %v", ok, err)
	}
	batch := []enriched{event(5, "POLICY_ALERT", "c"), event(6, "DEVICE_STATUS", "c")}
	for range 2 {
		if err := s.write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if id, ok, err := s.cursor(ctx); id != 6 || !ok || err != nil {
		t.Fatalf("cursor %d %v %v, want 6", id, ok, err)
	}
	rows, err := s.db.Query(`SELECT event_id, entity, payload FROM events WHERE event_id IS NOT NULL ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id int64
		var entity, payload string
		rows.Scan(&id, &entity, &payload)
		if !json.Valid([]byte(payload)) {
			t.Fatalf("payload %q", payload)
		}
		got = append(got, itoa(uint64(id))+" "+entity)
	}
	if !slices.Equal(got, []string{"5 POLICY_ALERT", "6 DEVICE_STATUS"}) {
		t.Fatalf("rows %v", got)
	}
}

// TestStateFile: the cursor survives, and a file that is not the
// monitor's is an error, not a silent start from the beginning.
func TestStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.state")
	s := &stateFile{path: path}
	if _, ok, err := s.load(); ok || err != nil {
		t.Fatalf("no file: %v %v", ok, err)
	}
	for _, id := range []uint64{3, 42} {
		if err := s.store(id); err != nil {
			t.Fatal(err)
		}
	}
	if id, ok, err := s.load(); id != 42 || !ok || err != nil {
		t.Fatalf("load: %d %v %v", id, ok, err)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, _, err := s.load(); err == nil {
		t.Fatal("a garbage state file loaded")
	}
}

// TestNames: one lookup per device per TTL, however many events it
// sends; a failed lookup or an unregistered device gives no name and is
// not asked again at once; a batch waits for the lookups it started
// together, once, at most names.wait, and not at all for lookups already
// in flight; at most maxLookups are in flight.
func TestNames(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	release := make(chan struct{})
	lookup := func(ctx context.Context, uuid string) (client.Device, error) {
		mu.Lock()
		calls[uuid]++
		mu.Unlock()
		switch {
		case uuid == "broken":
			return client.Device{}, errors.New("connection refused")
		case uuid == "unknown":
			return client.Device{}, &client.Error{Status: 404, Message: "no device"}
		case strings.HasPrefix(uuid, "slow"):
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return client.Device{UUID: uuid, Name: "name of " + uuid, Kind: "camera"}, nil
	}
	called := func() map[string]int { mu.Lock(); defer mu.Unlock(); return maps.Clone(calls) }
	batchOf := func(devices ...string) []enriched {
		b := make([]enriched, len(devices))
		for i, d := range devices {
			b[i] = event(uint64(i+1), "X", d)
		}
		return b
	}
	n := newNames(lookup, 200*time.Millisecond)
	n.wait = time.Minute // the lookups that answer are waited for
	ctx := context.Background()
	for range 10 {
		b := batchOf("cam-1", "broken", "unknown", "cam-1", "")
		n.resolve(ctx, b)
		if b[0].DeviceName != "name of cam-1" || b[0].DeviceKind != "camera" || b[3].DeviceName != "name of cam-1" ||
			b[1].DeviceName != "" || b[2].DeviceName != "" || b[4].DeviceName != "" {
			t.Fatalf("resolved %+v", b)
		}
	}
	if got := called(); got["cam-1"] != 1 || got["broken"] != 1 || got["unknown"] != 1 || len(got) != 3 {
		t.Fatalf("lookups %v, want one each within the TTL", got)
	}
	if n.waits != 1 {
		t.Fatalf("%d batches waited, want the first only", n.waits)
	}
	looked := time.Now()
	waitFor(t, func() bool { return time.Since(looked) > 250*time.Millisecond }) // past the TTL
	n.resolve(ctx, batchOf("cam-1"))
	if got := called(); got["cam-1"] != 2 {
		t.Fatalf("lookups of cam-1 after the TTL: %d, want 2", got["cam-1"])
	}

	// Hanging lookups: a batch of many new devices waits once, for at
	// most n.wait, starting at most maxLookups; the next batch does not
	// wait for those in flight.
	n.wait, n.waits = time.Millisecond, 0
	var slow []string
	for i := range 3 * maxLookups {
		slow = append(slow, "slow-"+strconv.Itoa(i))
	}
	for range 3 {
		b := batchOf(slow...)
		n.resolve(ctx, b)
		for _, e := range b {
			if e.DeviceName != "" {
				t.Fatalf("a hanging lookup gave %q", e.DeviceName)
			}
		}
	}
	if started := len(called()) - 3; n.waits != 1 || started != maxLookups {
		t.Fatalf("%d batches waited and %d lookups started, want 1 and %d", n.waits, started, maxLookups)
	}
	close(release)
	waitFor(t, func() bool {
		b := batchOf(slow...)
		n.resolve(ctx, b)
		return b[len(b)-1].DeviceName == "name of "+slow[len(slow)-1]
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestRunRefusesBadSinkURLs: a webhook or Slack URL that cannot work is
// an error at the start, not a dead letter per event.
func TestRunRefusesBadSinkURLs(t *testing.T) {
	for _, cfg := range []Config{{Webhook: "not-a-url"}, {Slack: "ftp://hooks.example"}, {Webhook: "http://"}} {
		cfg.URL, cfg.Format = "ws://127.0.0.1:1", "none"
		err := Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), " URL ") {
			t.Fatalf("%+v: %v, want a refused URL", cfg, err)
		}
	}
}
