package monitor

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// status counts what the monitor does, for the live status line on a
// terminal: events/s, each sink's lag and failures, reconnects.
type status struct {
	mu        sync.Mutex
	total     int
	sinks     []sinkCount
	connects  int
	up        bool
	last      uint64
	rate      float64 // events/s over the last second
	prevTotal int
	line      bool // a status line is on the terminal
}

type sinkCount struct {
	name     string
	accepted int
	failures int
}

func newStatus() *status { return &status{} }

func (s *status) received(n int) {
	s.mu.Lock()
	s.total += n
	s.mu.Unlock()
}

func (s *status) accepted(i int, name string, n int) {
	s.mu.Lock()
	for len(s.sinks) <= i {
		s.sinks = append(s.sinks, sinkCount{})
	}
	s.sinks[i].name = name
	s.sinks[i].accepted += n
	s.mu.Unlock()
}

func (s *status) failed(i int, name string) {
	s.mu.Lock()
	for len(s.sinks) <= i {
		s.sinks = append(s.sinks, sinkCount{})
	}
	s.sinks[i].name = name
	s.sinks[i].failures++
	s.mu.Unlock()
}

func (s *status) cursor(id uint64) {
	s.mu.Lock()
	s.last = id
	s.mu.Unlock()
}

func (s *status) connected() {
	s.mu.Lock()
	s.connects++
	s.up = true
	s.mu.Unlock()
}

func (s *status) everConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects > 0
}

func (s *status) disconnected() {
	s.mu.Lock()
	s.up = false
	s.mu.Unlock()
}

// show draws the status line every second while the monitor runs, if
// cfg.Live; it returns the function that stops it.
func (s *status) show(cfg Config) (stop func()) {
	if !cfg.Live {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.mu.Lock()
				s.rate = float64(s.total - s.prevTotal)
				s.prevTotal = s.total
				fmt.Fprint(cfg.Log, "\r\x1b[K"+s.lineLocked())
				s.line = true
				s.mu.Unlock()
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (s *status) lineLocked() string {
	var b strings.Builder
	state := "connected"
	switch {
	case !s.up && s.connects == 0:
		state = "connecting"
	case !s.up:
		state = "reconnecting"
	}
	fmt.Fprintf(&b, "%s · %d events (%.0f/s) · cursor %d · %d reconnects", state, s.total, s.rate, s.last, max(s.connects-1, 0))
	for _, c := range s.sinks {
		if c.name == "" || c.name == "printer" {
			continue
		}
		fmt.Fprintf(&b, " · %s lag %d", c.name, s.total-c.accepted)
		if c.failures > 0 {
			fmt.Fprintf(&b, " failed %d", c.failures)
		}
	}
	return b.String()
}

// notice prints a line on the log, above the status line.
func (s *status) notice(cfg Config, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := ""
	if s.line {
		prefix = "\r\x1b[K"
	}
	fmt.Fprintf(cfg.Log, "%sherald monitor: %s\n", prefix, text)
	s.line = false
}

// clear removes the status line.
func (s *status) clear(cfg Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line {
		fmt.Fprint(cfg.Log, "\r\x1b[K")
		s.line = false
	}
}
