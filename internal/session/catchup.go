package session

import (
	"context"
	"errors"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/wsconn"
)

func (s *Session) startCatchUpLocked() {
	s.live = false
	if s.catchingUp || s.closed || !s.started || s.paused {
		return
	}
	s.catchingUp = true
	if s.ctx == nil {
		// Made on the first catch-up: most sessions never need one.
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	s.wg.Add(1)
	go s.catchUp()
}

var (
	errRestart = errors.New("position moved")
	errPaused  = errors.New("delivery paused")
)

// The pauses between catch-up attempts that failed.
// After retryAttempts failures in a row (about 11s) the session ends as
// it did before retries: the client is told and resumes by itself.
const (
	retryMin      = 100 * time.Millisecond
	retryMax      = 5 * time.Second
	retryAttempts = 7
)

// pause waits d, or until the session or its connection ends (false).
func (s *Session) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	case <-s.conn.Done():
		return false
	}
}

// endIfPaused ends the catch-up if Snapshot has paused delivery: the
// resume starts a new one.
func (s *Session) endIfPaused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		s.catchingUp = false
	}
	return s.paused
}

// catchUp replays the org's events from pos up to the hub's head, then
// rejoins the live path if the head has not moved meanwhile, or replays
// again up to the new head.
//
// The replay is bounded by the head taken before it, and once it is done
// every event of the org up to that head has been handled, whether or not
// the org had any: pos moves to the head itself, not to the org's last
// event. (Comparing the org's last event with the node's head, which
// counts every org, never rejoins while the org is quiet and other orgs
// are not: the goroutine would replay nothing, forever.)
//
// A replay that fails for a reason that may pass (the engine unavailable:
// a cluster electing a leader, a node lost) is tried again, after a pause
// that grows to retryMax, for retryAttempts tries; events that are gone
// (ECONFLICT: past retention) end the session as lost at once. The client meanwhile waits, as
// every live subscriber does while the engine is away.
func (s *Session) catchUp() {
	defer s.wg.Done()
	retry, attempts := time.Duration(0), 0
	maxAttempts := retryAttempts
	if s.node.catchUpAttempts > 0 {
		maxAttempts = s.node.catchUpAttempts
	}
	for {
		if s.endIfPaused() {
			return
		}
		s.mu.Lock()
		from, gen := s.pos, s.gen
		s.mu.Unlock()
		target := s.node.Hub.Head()
		var err error
		if target > from {
			_, err = s.node.Log.Replay(s.ctx, s.org, from, target, func(e *herald.Event) error {
				return s.replayOne(e, gen)
			})
		}
		switch {
		case s.ctx.Err() != nil || isClosed(s.conn.Done()):
			s.endCatchUp()
			return
		case errors.Is(err, errRestart):
			continue
		case errors.Is(err, errPaused):
			if s.endIfPaused() {
				return
			}
			continue
		case err != nil && herald.ErrorCode(err) != herald.ECONFLICT && attempts < maxAttempts:
			attempts++
			retry = min(max(2*retry, retryMin), retryMax)
			if retry == retryMin {
				s.node.Logger.Warn("session cannot catch up yet; retrying", "org", s.org, "after", from, "err", err)
			}
			if !s.pause(retry) {
				s.endCatchUp()
				return
			}
			continue
		case err != nil:
			s.endCatchUp()
			s.node.Logger.Warn("session cannot catch up", "org", s.org, "after", from, "err", err)
			if s.h != nil {
				s.h.Lost(err)
			}
			return
		}
		retry, attempts = 0, 0
		rejoined := false
		s.node.Hub.WithHead(func(head uint64) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.gen != gen || s.paused {
				return // replay again, or end at the top of the loop
			}
			s.pos = max(s.pos, target)
			s.passLocked()
			if s.pos >= head {
				s.live, s.catchingUp, rejoined = true, false, true
			}
		})
		if rejoined {
			return
		}
	}
}

func (s *Session) endCatchUp() {
	s.mu.Lock()
	s.catchingUp = false
	s.mu.Unlock()
}

// replayOne queues e for the subscriptions that want it, waiting for
// room in the connection's queue as long as it takes.
func (s *Session) replayOne(e *herald.Event, gen uint64) error {
	var buf [4]wsconn.Message
	for {
		s.mu.Lock()
		if s.gen != gen {
			s.mu.Unlock()
			return errRestart
		}
		if s.paused {
			s.mu.Unlock()
			return errPaused
		}
		if e.ID <= s.pos {
			s.mu.Unlock()
			return nil
		}
		if s.barrier != nil && e.ID > s.barrier.at {
			s.pos = max(s.pos, s.barrier.at) // every event up to it is handled
			s.passLocked()
		}
		msgs := s.matchLocked(e, buf[:0])
		if len(msgs) == 0 || s.conn.EnqueueAll(msgs) {
			s.pos = e.ID
			s.passLocked()
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-s.conn.Room():
		case <-s.conn.Done():
			return context.Canceled
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}

func isClosed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}
