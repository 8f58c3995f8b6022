package engine

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// records is a slog handler that keeps every record it is given.
type records struct {
	mu  sync.Mutex
	all []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.all = append(h.all, r)
	return nil
}

func (h *records) level(substr string) (slog.Level, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.all {
		if strings.Contains(r.Message, substr) {
			return r.Level, true
		}
	}
	return 0, false
}

// TestServerWarningsReachTheLog checks that the embedded server's
// warnings and errors are logged at their level (issue 9: a damaged
// block file was reported only at debug level, so nobody saw it).
func TestServerWarningsReachTheLog(t *testing.T) {
	h := &records{}
	e, err := Open(t.Context(), Config{DataDir: t.TempDir(), Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.server.Warnf("test warning %d", 1)
	e.server.Errorf("test error %d", 2)
	e.server.Noticef("test notice %d", 3)
	for msg, want := range map[string]slog.Level{
		"test warning 1": slog.LevelWarn,
		"test error 2":   slog.LevelError,
		"test notice 3":  slog.LevelDebug,
	} {
		if got, ok := h.level(msg); !ok || got != want {
			t.Errorf("%q logged at %v (found %v), want %v", msg, got, ok, want)
		}
	}
}
