package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", pure Go
)

// sqlSink writes events to the seed's events table, with a unique
// event_id column, and stores the monitor's cursor in the same
// transaction: after any crash the table and the cursor agree, and a
// replayed event is not stored twice.
type sqlSink struct {
	flavor         string // "sqlite" or "postgres"
	db             *sql.DB
	cursorName     string
	insert, upsert string
	onError        func(error)
}

const (
	createEvents = `CREATE TABLE IF NOT EXISTS events (
	event_id BIGINT NOT NULL,
	entity TEXT,
	entity_uuid TEXT,
	change_type TEXT,
	device_uuid TEXT,
	timestamp_ms BIGINT,
	payload TEXT)`
	createCursor = `CREATE TABLE IF NOT EXISTS herald_cursor (name TEXT PRIMARY KEY, event_id BIGINT NOT NULL)`
)

func openSQL(ctx context.Context, flavor, dsn, cursorName string) (*sqlSink, error) {
	driver := "pgx"
	if flavor == "sqlite" {
		driver = "sqlite"
		if !strings.HasPrefix(dsn, "file:") {
			dsn = "file:" + dsn
		}
		if !strings.Contains(dsn, "?") {
			dsn += "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flavor, err)
	}
	if flavor == "sqlite" {
		db.SetMaxOpenConns(1) // one writer; no "database is locked"
	}
	s := &sqlSink{flavor: flavor, db: db, cursorName: cursorName, onError: func(error) {}}
	s.insert = s.rebind(`INSERT INTO events (event_id, entity, entity_uuid, change_type, device_uuid, timestamp_ms, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`)
	s.upsert = s.rebind(`INSERT INTO herald_cursor (name, event_id) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id`)
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", flavor, err)
	}
	return s, nil
}

// migrate creates the tables if missing, and adds event_id to an events
// table made by the seed's code, which has none.
func (s *sqlSink) migrate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, createEvents); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `SELECT event_id FROM events WHERE 1 = 0`); err != nil {
		if _, err := s.db.ExecContext(ctx, `ALTER TABLE events ADD COLUMN event_id BIGINT`); err != nil {
			return fmt.Errorf("adding event_id to the events table: %w", err)
		}
	}
	for _, stmt := range []string{`CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id)`, createCursor} {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// rebind turns ? placeholders into PostgreSQL's $n.
func (s *sqlSink) rebind(q string) string {
	if s.flavor != "postgres" {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s *sqlSink) name() string { return s.flavor }
func (s *sqlSink) close() error { return s.db.Close() }

func (s *sqlSink) cursor(ctx context.Context) (uint64, bool, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT event_id FROM herald_cursor WHERE name = ?`), s.cursorName).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return uint64(id), true, nil
}

// write stores the batch and the cursor in one transaction, trying again
// with backoff while the database fails: an event is never dropped.
func (s *sqlSink) write(ctx context.Context, batch []enriched) error {
	delay := 100 * time.Millisecond
	for {
		err := s.tx(ctx, batch)
		if err == nil || ctx.Err() != nil {
			return err
		}
		s.onError(err)
		t := time.NewTimer(jitter(delay))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func (s *sqlSink) tx(ctx context.Context, batch []enriched) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insert, err := tx.PrepareContext(ctx, s.insert)
	if err != nil {
		return err
	}
	defer insert.Close()
	for i := range batch {
		e := &batch[i]
		if _, err := insert.ExecContext(ctx, int64(e.ID), e.Entity, e.EntityUUID, e.Type, e.DeviceUUID, e.TimestampMs, string(e.Body)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.upsert, s.cursorName, int64(batch[len(batch)-1].ID)); err != nil {
		return err
	}
	return tx.Commit()
}
