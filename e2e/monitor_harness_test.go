package e2e

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// monitorProc is a running `herald monitor`.
type monitorProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's, once done is closed
}

func startMonitor(t *testing.T, dir string, args ...string) *monitorProc {
	t.Helper()
	cmd := exec.Command(heraldBinary(t), append([]string{"monitor"}, args...)...)
	cmd.Dir = dir
	m := &monitorProc{t: t, cmd: cmd, stdout: new(syncBuffer), stderr: new(syncBuffer), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = m.stdout, m.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.err = cmd.Wait(); close(m.done) }()
	t.Cleanup(func() {
		m.kill()
		if t.Failed() {
			t.Logf("herald monitor %v\nstdout:\n%s\nstderr:\n%s", args, m.stdout.String(), m.stderr.String())
		}
	})
	return m
}

// kill is kill -9.
func (m *monitorProc) kill() {
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

// interrupt sends SIGINT and returns how the process exited.
func (m *monitorProc) interrupt() error {
	m.t.Helper()
	m.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-m.done:
		return m.err
	case <-time.After(patience):
		m.t.Fatal("herald monitor did not exit after SIGINT")
		return nil
	}
}

// lines returns stdout's complete lines.
func (m *monitorProc) lines() []string {
	out := m.stdout.String()
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		return strings.Split(out[:i], "\n")
	}
	return nil
}

// waitLines waits until stdout holds at least n lines.
func (m *monitorProc) waitLines(n int) []string {
	m.t.Helper()
	waitFor(m.t, patience, fmt.Sprintf("%d lines of herald monitor", n), func() bool { return len(m.lines()) >= n })
	return m.lines()
}

// jsonIDs are the ids of the JSON lines.
func jsonIDs(t *testing.T, lines []string) []string {
	t.Helper()
	var ids []string
	for _, l := range lines {
		var e struct {
			ID      string `json:"id"`
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("a line that is not JSON: %q", l)
		}
		ids = append(ids, e.ID+e.EventID)
	}
	return ids
}

// heraldPublish runs `herald publish` and returns the ids it prints.
func heraldPublish(t *testing.T, base string, stdin string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(heraldBinary(t), append([]string{"publish", "--url", base, "--key", keyA}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("herald publish %v: %v %s", args, err, exitStderr(err))
	}
	return strings.Fields(string(out))
}

func exitStderr(err error) string {
	if e, ok := err.(*exec.ExitError); ok {
		return string(e.Stderr)
	}
	return ""
}

// startPostgres runs a PostgreSQL server from the Debian package in a
// temporary directory, as the unprivileged user postgres when the tests
// run as root, and returns its DSN. It skips the test when PostgreSQL is
// not installed.
func startPostgres(t *testing.T) string {
	t.Helper()
	bin := ""
	if matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(matches) > 0 {
		bin = filepath.Dir(matches[len(matches)-1])
	} else if p, err := exec.LookPath("initdb"); err == nil {
		bin = filepath.Dir(p)
	} else {
		t.Skip("PostgreSQL is not installed (scripts/test-deps.sh installs Debian's postgresql): skipping the PostgreSQL sink")
	}
	dir, err := os.MkdirTemp("", "herald-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := func(name string, args ...string) *exec.Cmd { return exec.Command(filepath.Join(bin, name), args...) }
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run PostgreSQL as: " + err.Error())
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		run = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	opts := "-p " + port + " -k " + dir + " -c listen_addresses=127.0.0.1 -c fsync=off"
	if out, err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() { run("pg_ctl", "-D", data, "-m", "immediate", "stop").Run() })
	return "postgres://postgres@127.0.0.1:" + port + "/postgres?sslmode=disable"
}

// eventIDsIn returns the event ids of a database's events table in the
// order the rows were stored (order is rowid or ctid).
func eventIDsIn(t *testing.T, driver, dsn, order string) []string {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT event_id FROM events ORDER BY " + order)
	if err != nil {
		return nil // not created yet
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	return ids
}

// rowCount counts the events table's rows, 0 when it cannot; safe to
// call from any goroutine.
func rowCount(driver, dsn string) int {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return 0
	}
	defer db.Close()
	var n int
	db.QueryRow("SELECT count(*) FROM events").Scan(&n)
	return n
}

// readLines reads a file's lines; none if it does not exist.
func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	for s := bufio.NewScanner(f); s.Scan(); {
		out = append(out, s.Text())
	}
	return out
}
