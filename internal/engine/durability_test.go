package engine_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
)

// killDirEnv tells the test binary, started again by TestKillNine, to act
// as the process that gets killed.
const killDirEnv = "HERALD_ENGINE_KILL_DIR"

// TestKillNine checks the package's durability promise for the default
// Sync "interval": every append acknowledged before kill -9 of the
// process is there when the data directory is opened again.
func TestKillNine(t *testing.T) {
	if dir := os.Getenv(killDirEnv); dir != "" {
		appendUntilKilled(dir)
		return
	}
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestKillNine$")
	child.Env = append(os.Environ(), killDirEnv+"="+dir)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]bool{}
	lines := bufio.NewScanner(out)
	for len(acked) < 500 && lines.Scan() {
		id, err := strconv.ParseUint(lines.Text(), 10, 64)
		if err != nil {
			continue // the test binary's own output
		}
		acked[id] = true
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if len(acked) < 500 {
		t.Fatalf("the child acknowledged only %d appends", len(acked))
	}

	e := open(t, engine.Config{DataDir: dir})
	stored := map[uint64]bool{}
	if _, err := e.Replay(t.Context(), "org-a", 0, 0, func(event *herald.Event) error {
		stored[event.ID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged event %d is gone after kill -9 (%d of %d acknowledged are stored)", id, len(stored), len(acked))
		}
	}
}

// appendUntilKilled appends singles and batches, printing each id once
// Append returned it, until the parent kills the process.
func appendUntilKilled(dir string) {
	e, err := engine.Open(context.Background(), engine.Config{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		records := []herald.Record{tagged("org-a", 0, i, 0, "")}
		if i%2 == 1 {
			records = append(records, tagged("org-a", 0, i, 1, ""), tagged("org-a", 0, i, 2, ""))
		}
		ids, err := e.Append(context.Background(), records)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, id := range ids {
			fmt.Println(id)
		}
	}
}
