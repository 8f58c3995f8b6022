package engine_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
)

// A damage case breaks one part of a closed engine's data directory and
// states what Open must then do (docs/operations.md, "Damaged data").
type damageCase struct {
	name string
	// asset is the stream whose directory damage is given
	// (jetstream/$G/streams/<asset>), or "" for the data directory.
	asset  string
	damage func(t *testing.T, dir string)
	// refused: Open refuses the damaged log, and with AcceptDataLoss
	// moves past every acknowledged id. Otherwise Open serves.
	refused bool
	// warning holds the substrings of one warning or error that Open
	// must log (the server's report of what it found); none when the
	// server repairs the damage without loss and says nothing.
	warning []string
	// served checks a served engine further; it may be nil.
	served func(t *testing.T, e *engine.Engine, acked uint64)
}

// A fixture is a closed engine's data directory, filled once per test
// and copied for each case.
type fixture struct {
	dir   string
	acked uint64
}

// smallFixture holds 3,000 events in one block file per stream, an org,
// an API key and a setting, with STATE caught up.
func smallFixture(t *testing.T) fixture {
	t.Helper()
	return newFixture(t, func(t *testing.T, e *engine.Engine) {
		append3000(t, e)
	})
}

// largeFixture holds 40 events of 500 KB: three EVENTS block files, since
// nats-server cuts a stream without MaxBytes into 8 MiB blocks
// (filestore.go, dynBlkSize).
func largeFixture(t *testing.T) fixture {
	t.Helper()
	pad := bytes.Repeat([]byte("x"), 500<<10)
	f := newFixture(t, func(t *testing.T, e *engine.Engine) {
		for i := range 40 {
			r := tagged("org-a", 0, 0, i, "")
			r.Data = fmt.Appendf(nil, `{"org":"org-a","channel":"alerts","entity":"POLICY_ALERT","deviceUuid":"dev-%d","pad":%q}`, i%7, pad)
			if _, err := e.Append(t.Context(), []herald.Record{r}); err != nil {
				t.Fatal(err)
			}
		}
	})
	if blks := blocks(t, f.dir, "EVENTS"); len(blks) != 3 {
		t.Fatalf("want three EVENTS block files, found %q", blks)
	}
	return f
}

func newFixture(t *testing.T, fill func(t *testing.T, e *engine.Engine)) fixture {
	t.Helper()
	dir := t.TempDir()
	e, err := engine.Open(t.Context(), engine.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fill(t, e)
	ctx := t.Context()
	if err := e.PutOrg(ctx, herald.Org{UUID: "org-a", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := e.PutAPIKey(ctx, herald.APIKey{Hash: herald.HashAPIKey("hk_test"), Org: "org-a", Name: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := e.PutSetting(ctx, "bootstrap", "org-a"); err != nil {
		t.Fatal(err)
	}
	waitStateCaughtUp(t, e)
	acked := e.Acked()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return fixture{dir: dir, acked: acked}
}

// run copies the fixture, damages the copy and checks the outcome.
func (f fixture) run(t *testing.T, tc damageCase) {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, f.dir, dir)
	target := dir
	if tc.asset != "" {
		target = streamDir(t, dir, tc.asset)
	}
	tc.damage(t, target)

	logs := &logBuffer{}
	cfg := engine.Config{DataDir: dir, Logger: logs.logger()}
	e, err := engine.Open(t.Context(), cfg)
	if tc.warning != nil {
		logs.mustHave(t, tc.warning...)
	}
	if !tc.refused {
		if err != nil {
			t.Fatalf("Open: %v, want it to serve", err)
		}
		defer e.Close()
		if tc.warning != nil {
			// herald's own line: what it means and where to read on.
			logs.mustHave(t, "data directory", "repaired", "Damaged data")
		}
		if e.DataLoss() {
			t.Error("DataLoss() is true on an engine that emptied nothing")
		}
		if tc.served != nil {
			tc.served(t, e, f.acked)
		}
		assertNextAfter(t, e, f.acked)
		return
	}
	if err == nil {
		e.Close()
		t.Fatal("Open served a damaged log")
	}
	mustRefuse(t, err, dir, f.acked)
	// A supervisor restarts a node that failed to start: the refusal
	// must hold on every start, not only the first.
	if _, err := engine.Open(t.Context(), engine.Config{DataDir: dir}); err == nil {
		t.Fatal("Open served a damaged log on the second start")
	} else {
		mustRefuse(t, err, dir, f.acked)
	}

	logs = &logBuffer{}
	cfg = engine.Config{DataDir: dir, Logger: logs.logger(), AcceptDataLoss: true}
	e = open(t, cfg)
	if !e.DataLoss() {
		t.Error("DataLoss() is false on an engine that moved past lost events")
	}
	logs.mustHave(t, "DATA LOSS", "next="+strconv.FormatUint(f.acked+1, 10))
	ids := assertNextAfter(t, e, f.acked)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Accepted once, the emptied log is no sign of damage.
	e = open(t, engine.Config{DataDir: dir})
	if e.DataLoss() {
		t.Error("DataLoss() is true on a later clean start")
	}
	assertNextAfter(t, e, ids[0])
}

// mustRefuse fails unless err names the highest acknowledged id, the
// mark file and the way out.
func mustRefuse(t *testing.T, err error, dir string, acked uint64) {
	t.Helper()
	for _, want := range []string{strconv.FormatUint(acked, 10), filepath.Join(dir, "herald-acked-id"), "AcceptDataLoss", "Damaged data"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Open refused with %q, want it to name %q", err, want)
		}
	}
}

// assertEvents fails unless the log replays exactly want events of org-a.
func assertEvents(t *testing.T, e *engine.Engine, want int) {
	t.Helper()
	n := 0
	if _, err := e.Replay(t.Context(), "org-a", 0, 0, func(*herald.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("the log replays %d events, want %d", n, want)
	}
}

// waitStateCaughtUp polls, with a bound, until STATE has copied the log.
func waitStateCaughtUp(t *testing.T, e *engine.Engine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lag, err := e.StateLag(t.Context())
		if err == nil && lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("STATE still %d events behind the log: %v", lag, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func streamDir(t *testing.T, dataDir, stream string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(dataDir, "jetstream", "*", "streams", stream))
	if len(dirs) != 1 {
		t.Fatalf("want one directory of stream %s, found %q", stream, dirs)
	}
	return dirs[0]
}

// blocks lists a stream's block files in order.
func blocks(t *testing.T, dataDir, stream string) []string {
	t.Helper()
	blks, _ := filepath.Glob(filepath.Join(streamDir(t, dataDir, stream), "msgs", "*.blk"))
	// n.blk: order by number, not by name (10.blk sorts before 2.blk).
	number := func(p string) int {
		n, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(p), ".blk"))
		return n
	}
	for i := 1; i < len(blks); i++ {
		for j := i; j > 0 && number(blks[j]) < number(blks[j-1]); j-- {
			blks[j], blks[j-1] = blks[j-1], blks[j]
		}
	}
	return blks
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Damages.

func remove(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func removeAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
}

// garbage replaces a file with bytes no writer of it produces.
func garbage(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("not what was written\x00\xff\xfe"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func truncateHalf(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, info.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
}

// overwriteTail replaces the last n bytes of a file with b repeated: a
// torn write of the last record.
func overwriteTail(t *testing.T, path string, n int, b byte) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	overwrite(t, path, info.Size()-int64(n), n, b)
}

// overwrite replaces n bytes of a file at off with b repeated.
func overwrite(t *testing.T, path string, off int64, n int, b byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{b}, n), off); err != nil {
		t.Fatal(err)
	}
}

// append3000 appends 3,000 events of org-a in three appends of 1,000
// (tagged 0, append, position): ids 1 to 3000.
func append3000(t *testing.T, e *engine.Engine) {
	t.Helper()
	for b := range 3 {
		records := make([]herald.Record, 1000)
		for i := range records {
			records[i] = tagged("org-a", 0, b, i, "")
		}
		if _, err := e.Append(t.Context(), records); err != nil {
			t.Fatal(err)
		}
	}
}

// logBuffer captures an engine's log as text, for tests to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// mustHave fails unless one warning or error line holds every substring.
func (l *logBuffer) mustHave(t *testing.T, substrings ...string) {
	t.Helper()
	l.mu.Lock()
	text := l.buf.String()
	l.mu.Unlock()
	for line := range strings.Lines(text) {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		found := true
		for _, s := range substrings {
			found = found && strings.Contains(line, s)
		}
		if found {
			return
		}
	}
	t.Fatalf("no warning or error in the log holds all of %q; the log:\n%s", substrings, text)
}
