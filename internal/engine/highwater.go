package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// The high-water mark is the highest event id this engine has
// acknowledged, kept in a file of the data directory beside, not inside,
// the JetStream store: damage to the store (a zeroed or truncated block
// file, which nats-server recovers from by dropping what it cannot read)
// must not take the record of what was lost with it. At Open, a log that
// ends below the mark has lost acknowledged events, and appending to it
// would hand their ids out again (docs/decisions.md, issue 9); see
// checkMark for the other loss it finds.
//
// The mark is written every markInterval and at Close, not per append, so
// a crash can leave up to markInterval of acknowledged ids unrecorded;
// Open then cannot tell their loss from their never having existed.
const (
	markFile     = "herald-acked-id"
	markInterval = time.Second
)

// DataLoss reports whether Open found the log damaged (see checkMark)
// and, as Config.AcceptDataLoss allowed, emptied it and moved its next id
// past every one acknowledged: the node runs, but events were lost.
func (e *Engine) DataLoss() bool { return e.dataLoss }

// checkMark refuses a log that lost acknowledged events, unless
// Config.AcceptDataLoss, and starts recording the mark. It finds two kinds
// of loss, both seen with nats-server v2.15.2 after damage to the last
// block file: the log ends below the mark (the server cut the block at a
// record it could not read, and the next append would reuse ids), or the
// log's last event is gone although retention would keep it (the server
// kept the end but not the events). Embedded mode only: a cluster's store
// is replicated and no node's directory is the whole truth.
func (e *Engine) checkMark(ctx context.Context) error {
	path := filepath.Join(e.cfg.DataDir, markFile)
	m, err := readMark(path)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	state, lastStored, err := e.verifiedEnd(ctx)
	if err != nil {
		return err
	}
	last := state.LastSeq
	var lost string
	switch {
	case last < m.acked:
		lost = fmt.Sprintf("the event log ends at id %d but ids up to %d were acknowledged", last, m.acked)
	case last > 0 && !lastStored && last != m.emptied && !e.retentionMayEmpty(state):
		lost = fmt.Sprintf("the event log holds %d of its events up to id %d and not the last one, which retention keeps", state.Msgs, last)
	}
	if lost != "" {
		next := max(last, m.acked) + 1
		if !e.cfg.AcceptDataLoss {
			return herald.Errorf(herald.EINTERNAL, "engine: %s (%s): the data directory is damaged. Restore a backup, or "+
				"start once with AcceptDataLoss (herald serve --accept-data-loss) to empty the damaged log and continue "+
				"with id %d, so that no id is reused; see docs/operations.md, \"Damaged data\"", lost, path, next)
		}
		// A purge up to a sequence past the end empties the stream and
		// makes that sequence the next one. STATE keeps its copy of each
		// entity's latest event.
		if err := e.events.Purge(ctx, jetstream.WithPurgeSequence(next)); err != nil {
			return engineError("move the log past lost events", err)
		}
		e.log.Error("DATA LOSS: "+lost+"; the log was emptied and continues after the last acknowledged id (AcceptDataLoss)",
			"next", next, "markFile", path)
		e.dataLoss = true
		last = next - 1
		m.emptied = last
	}
	// The server repairs what it can without telling what it lost; its
	// warnings name only streams and files. Say in herald's words what
	// they mean and where to read on (issue 9, a clear log line).
	if n := e.serverLog.problems.Load(); n > 0 {
		e.log.Warn("the data directory was damaged and nats-server repaired it at start (see its warnings above): "+
			"what it could not read is lost, event ids stay unique; restore a backup if that matters, "+
			"see docs/operations.md, \"Damaged data\"", "warnings", n, "dir", filepath.Join(e.cfg.DataDir, "jetstream"))
	}
	m.acked = max(m.acked, last)
	if err := writeMark(path, m); err != nil {
		return err
	}
	e.noteAcked([]uint64{last})
	e.marked = m
	e.markStop, e.markDone = make(chan struct{}), make(chan struct{})
	go e.recordMarks(path)
	return nil
}

// retentionMayEmpty reports whether the configured retention could have
// removed the log's last event itself: MaxBytes may, and MaxAge once the
// last event is older than it.
func (e *Engine) retentionMayEmpty(state jetstream.StreamState) bool {
	return e.cfg.MaxBytes > 0 || e.cfg.MaxAge > 0 && time.Since(state.LastTime) >= e.cfg.MaxAge
}

// verifiedEnd returns the log's state, and whether its last event is
// stored, after making the server read the block that holds it.
// nats-server reports a stream's state from its index at start and checks
// a block only when it loads it; a damaged block is then cut back to what
// it can read, and the state with it. Reading the last event loads the
// last block, the only one whose damage can take the log's end.
func (e *Engine) verifiedEnd(ctx context.Context) (jetstream.StreamState, bool, error) {
	info, err := e.events.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, false, engineError("stream info", err)
	}
	if info.State.LastSeq == 0 {
		return info.State, false, nil
	}
	_, err = e.events.GetMsg(ctx, info.State.LastSeq)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return jetstream.StreamState{}, false, engineError("read the log's last event", err)
	}
	stored := err == nil
	if info, err = e.events.Info(ctx); err != nil {
		return jetstream.StreamState{}, false, engineError("stream info", err)
	}
	return info.State, stored, nil
}

// recordMarks writes the mark every markInterval while it rises.
func (e *Engine) recordMarks(path string) {
	defer close(e.markDone)
	tick := time.NewTicker(markInterval)
	defer tick.Stop()
	for {
		select {
		case <-e.markStop:
			return
		case <-tick.C:
			e.recordMark(path)
		}
	}
}

// recordMark writes Acked to the mark file if it rose. Failures are
// logged: the mark only guards against reuse after damage, and losing one
// update widens that guard's blind window, nothing more.
func (e *Engine) recordMark(path string) {
	m := e.marked
	if m.acked = e.acked.Load(); m.acked <= e.marked.acked {
		return
	}
	if err := writeMark(path, m); err != nil {
		e.log.Warn("cannot record the last acknowledged event id", "err", err)
		return
	}
	e.marked = m
}

// stopMarks stops the recorder and records the final mark; call it once
// every append has been acknowledged.
func (e *Engine) stopMarks() {
	if e.markStop == nil {
		return
	}
	close(e.markStop)
	<-e.markDone
	e.recordMark(filepath.Join(e.cfg.DataDir, markFile))
}

// mark is the content of the mark file: the highest id acknowledged and,
// once AcceptDataLoss emptied the log, the id it was emptied after (an
// empty log ending there is then no sign of damage).
type mark struct {
	acked, emptied uint64
}

// readMark reads "<acked>" or "<acked> <emptied>"; a missing file is a new
// data directory, or one from before issue 9.
func readMark(path string) (mark, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return mark{}, nil
	}
	if err != nil {
		return mark{}, herald.Errorf(herald.EINTERNAL, "engine: read the last acknowledged id: %v", err)
	}
	var m mark
	fields := strings.Fields(string(b))
	if len(fields) == 1 || len(fields) == 2 {
		m.acked, err = strconv.ParseUint(fields[0], 10, 64)
		if err == nil && len(fields) == 2 {
			m.emptied, err = strconv.ParseUint(fields[1], 10, 64)
		}
	}
	if err != nil || len(fields) < 1 || len(fields) > 2 {
		return mark{}, herald.Errorf(herald.EINTERNAL, "engine: %s is damaged (%s): it must hold the last acknowledged event id. Restore it from a backup, "+
			"or write into it the highest event id clients may have seen (echo ID > %s); see docs/operations.md, \"Damaged data\"",
			path, herald.QuoteStart(string(b)), path)
	}
	return m, nil
}

// writeMark replaces the file atomically (a synced temporary file renamed
// over it), so a crash leaves the old mark or the new one, never a torn one.
func writeMark(path string, m mark) error {
	tmp := path + ".tmp"
	err := func() error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if m.emptied == 0 {
			_, err = fmt.Fprintf(f, "%d\n", m.acked)
		} else {
			_, err = fmt.Fprintf(f, "%d %d\n", m.acked, m.emptied)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		return err
	}()
	if err != nil {
		return herald.Errorf(herald.EINTERNAL, "engine: record the last acknowledged id: %v", err)
	}
	return nil
}
