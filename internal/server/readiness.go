package server

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Readiness: /readyz answers 200 only while the node serves (Run follows
// the log, shutdown has not begun), its engine answered within
// readiness.engine_grace and its follower is at most readiness.max_lag
// events behind the log. A watch asks the engine every second (more often for a short grace), so that
// a probe costs a lock and never an engine round trip.

type readinessCheck struct {
	engineUp bool      // the last question was answered
	answered time.Time // when the engine last answered
	lag      uint64    // events the follower was behind at that answer
}

type readinessWatch struct {
	mu    sync.Mutex
	check readinessCheck // guarded by mu
}

func (w *readinessWatch) last() readinessCheck {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.check
}

// checkReadiness asks the engine for the log's head once.
func (s *Server) checkReadiness(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Readiness.EngineGrace)
	defer cancel()
	last, err := s.engine.LastID(ctx)
	head := s.hub.Head()
	s.readiness.mu.Lock()
	defer s.readiness.mu.Unlock()
	s.readiness.check.engineUp = err == nil
	if err == nil {
		s.readiness.check.answered = time.Now()
		s.readiness.check.lag = 0
		if last > head {
			s.readiness.check.lag = last - head
		}
	}
}

// watchReadiness checks until ctx is done: every second, or four times
// per engine_grace if that is shorter, so that a healthy engine is never
// late by the check's own period.
func (s *Server) watchReadiness(ctx context.Context) {
	tick := time.NewTicker(min(time.Second, max(s.cfg.Readiness.EngineGrace/4, 10*time.Millisecond)))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.checkReadiness(ctx)
		}
	}
}

// readyToServe is /readyz's answer, with the reason when it is no.
func (s *Server) readyToServe() (bool, string) {
	if !s.ready.Load() {
		return false, ""
	}
	if s.draining.Load() {
		return false, "the node is stopping (readiness.drain_delay)"
	}
	c := s.readiness.last()
	if since := time.Since(c.answered); since > s.cfg.Readiness.EngineGrace {
		return false, fmt.Sprintf("the engine has not answered for %v", since.Round(time.Second))
	}
	if c.lag > s.cfg.Readiness.MaxLag {
		return false, fmt.Sprintf("the node is %d events behind the log (readiness.max_lag is %d)", c.lag, s.cfg.Readiness.MaxLag)
	}
	return true, ""
}
