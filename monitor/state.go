package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// stateFile holds the cursor when no SQL sink does: a small JSON file,
// replaced atomically (written beside, synced, renamed, the directory
// synced), so that a crash leaves the old cursor or the new one.
type stateFile struct {
	path string
}

type stateJSON struct {
	EventID string `json:"eventId"`
}

func (s *stateFile) load() (uint64, bool, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("state file: %w", err)
	}
	var st stateJSON
	if err := json.Unmarshal(data, &st); err != nil {
		return 0, false, fmt.Errorf("state file %s is not herald monitor's: %v", s.path, err)
	}
	id, err := strconv.ParseUint(st.EventID, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("state file %s holds no event id", s.path)
	}
	return id, true, nil
}

func (s *stateFile) store(id uint64) error {
	data, _ := json.Marshal(stateJSON{EventID: strconv.FormatUint(id, 10)})
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(s.path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}
