package server

import (
	"strings"
	"testing"
	"time"
)

// TestReadyToServe: ready only while serving, with an engine that
// answered within the grace and a follower within max_lag.
func TestReadyToServe(t *testing.T) {
	s := &Server{cfg: Config{Readiness: ReadinessConfig{MaxLag: 10, EngineGrace: time.Minute}}}
	set := func(answered time.Time, lag uint64) {
		s.readiness.check = readinessCheck{engineUp: true, answered: answered, lag: lag}
	}
	set(time.Now(), 0)
	if ok, _ := s.readyToServe(); ok {
		t.Fatal("ready before Run serves")
	}
	s.ready.Store(true)
	for _, c := range []struct {
		answered time.Time
		lag      uint64
		ok       bool
		reason   string
	}{
		{time.Now(), 10, true, ""},
		{time.Now(), 11, false, "11 events behind the log"},
		{time.Now().Add(-2 * time.Minute), 0, false, "the engine has not answered for 2m"},
	} {
		set(c.answered, c.lag)
		if ok, reason := s.readyToServe(); ok != c.ok || !strings.Contains(reason, c.reason) {
			t.Errorf("answered %v ago, lag %d: %v %q, want %v %q", time.Since(c.answered).Round(time.Second), c.lag, ok, reason, c.ok, c.reason)
		}
	}
}
