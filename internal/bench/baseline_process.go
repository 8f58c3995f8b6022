package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// BaselineReadyPrefix starts the line `herald bench serve-baseline` prints
// on stdout once it listens, followed by the address.
const BaselineReadyPrefix = "baseline listening on "

// BaselineProcess is a baseline server running as a child process, so that
// its RSS and CPU are measured from /proc like herald's.
type BaselineProcess struct {
	Addr  string // host:port
	PID   int
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// StartBaselineProcess runs `exe bench serve-baseline` of a dialect on a
// random loopback port and waits until it listens. The child exits when its stdin closes,
// so it cannot outlive this process by more than a moment.
func StartBaselineProcess(ctx context.Context, exe, org, key, dialect string) (*BaselineProcess, error) {
	cmd := exec.Command(exe, "bench", "serve-baseline", "--listen", "127.0.0.1:0", "--org", org, "--key", key,
		"--dialect", cmpOr(dialect, "stomp"), "--exit-on-stdin-eof")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the baseline server: %w", err)
	}
	p := &BaselineProcess{PID: cmd.Process.Pid, cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		text := ""
		if s.Scan() {
			text = s.Text()
		}
		line <- text
		io.Copy(io.Discard, stdout)
	}()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case text := <-line:
		addr, ok := strings.CutPrefix(text, BaselineReadyPrefix)
		if ok {
			p.Addr = strings.TrimSpace(addr)
			return p, nil
		}
		p.Stop()
		return nil, fmt.Errorf("the baseline server did not start: %q %s", text, strings.TrimSpace(stderr.String()))
	case <-timer.C:
		p.Stop()
		return nil, errors.New("the baseline server did not start within 10s")
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// Stop ends the child (closing its stdin, then killing it after 5s) and
// waits for it.
func (p *BaselineProcess) Stop() error {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		return <-done
	}
}
