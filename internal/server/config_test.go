package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Flags beat the environment, which beats the file.
func TestLoadConfigPrecedence(t *testing.T) {
	path := writeConfig(t, "listen: 127.0.0.1:1111\ndata_dir: /from/file\nsync: always\nlimits:\n  heart_beat: 3s\n")
	cfg, err := LoadConfig(path, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:1111" || cfg.DataDir != "/from/file" || cfg.Sync != "always" || cfg.Limits.HeartBeat != 3*time.Second {
		t.Fatalf("file values: %+v", cfg)
	}

	t.Setenv("HERALD_LISTEN", "127.0.0.1:2222")
	t.Setenv("HERALD_DATA_DIR", "/from/env")
	t.Setenv("HERALD_NATS", "nats://a:4222,nats://b:4222")
	t.Setenv("HERALD_UNRELATED", "ignored")
	cfg, err = LoadConfig(path, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:2222" || cfg.DataDir != "/from/env" || strings.Join(cfg.NATS, " ") != "nats://a:4222 nats://b:4222" {
		t.Fatalf("env over file: %+v", cfg)
	}

	cfg, err = LoadConfig(path, Overrides{Listen: "127.0.0.1:3333", DataDir: "/from/flag", NATS: "nats://c:4222"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:3333" || cfg.DataDir != "/from/flag" || strings.Join(cfg.NATS, " ") != "nats://c:4222" {
		t.Fatalf("flags over env: %+v", cfg)
	}
	if cfg.Sync != "always" {
		t.Fatalf("file value not overridden was lost: %+v", cfg)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig("", Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.DataDir != "./herald-data" || cfg.Sync != "interval" || cfg.Replicas != 1 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"bad sync", "sync: sometimes\n", "sync must be"},
		{"bad level", "log_level: loud\n", "log_level"},
		{"org without uuid", "orgs:\n  - name: acme\n", "orgs[0].uuid"},
		{"org without name", "orgs:\n  - uuid: 5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30\n", "orgs[0].name"},
		{"duplicate org", "orgs:\n  - {uuid: 5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30, name: a}\n  - {uuid: 5F0C6B2E-4d2a-4c1e-9b7a-2a9d8e4f1c30, name: b}\n", "declared twice"},
		{"short key", "orgs:\n  - uuid: 5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30\n    name: a\n    api_keys: [{key: short}]\n", "at least 8"},
		{"bad scope", "orgs:\n  - uuid: 5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30\n    name: a\n    api_keys: [{key: long-enough, scopes: [root]}]\n", "unknown scope"},
		{"user without password", "orgs:\n  - uuid: 5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30\n    name: a\n    users: [{name: alice}]\n", "users[0]"},
		{"device without uuid", "orgs:\n  - uuid: 5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30\n    name: a\n    devices: [{name: cam}]\n", "devices[0].uuid"},
		{"not yaml", "listen: [\n", "config"},
		{"wrong type", "limits:\n  heart_beat: soon\n", "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.yaml), Overrides{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"), Overrides{}); err == nil {
		t.Fatal("a missing config file was accepted")
	}
}

func TestApplyDefaultsForDeclaredEntries(t *testing.T) {
	cfg := Config{Orgs: []OrgConfig{{UUID: "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30", Name: "a",
		APIKeys: []APIKeyConfig{{Key: "long-enough"}}, Devices: []DeviceConfig{{UUID: "d"}}}}}
	cfg.ApplyDefaults()
	if got := cfg.Orgs[0].APIKeys[0].Scopes; len(got) != 2 || got[0] != "subscribe" || got[1] != "publish" {
		t.Fatalf("default scopes %v", got)
	}
	if cfg.Orgs[0].Devices[0].Kind != "device" {
		t.Fatalf("default kind %q", cfg.Orgs[0].Devices[0].Kind)
	}
}

func TestLoadConfigState(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "state:\n  max_entries: 100000\n  max_bytes: 1073741824\n  max_age: 720h\n"), Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (StateConfig{MaxEntries: 100000, MaxBytes: 1 << 30, MaxAge: 720 * time.Hour}); cfg.State != want {
		t.Fatalf("state: %+v, want %+v", cfg.State, want)
	}
	if limits := cfg.State.limits(); limits.MaxEntries != 100000 || limits.MaxBytes != 1<<30 || limits.MaxAge != 720*time.Hour {
		t.Fatalf("engine limits: %+v", limits)
	}
	cfg, err = LoadConfig("", Overrides{})
	if err != nil || cfg.State != (StateConfig{}) {
		t.Fatalf("default state limits: %+v, %v; want none", cfg.State, err)
	}

	for _, tt := range []struct{ name, yaml, want string }{
		{"negative entries", "state:\n  max_entries: -1\n", "state.max_entries must not be negative"},
		{"negative bytes", "state:\n  max_bytes: -1\n", "state.max_bytes must not be negative"},
		{"negative age", "state:\n  max_age: -1h\n", "state.max_age must not be negative"},
		{"bytes below one event", "state:\n  max_bytes: 1000\n", "state.max_bytes must be at least"},
		{"age too short", "state:\n  max_age: 10ms\n", "state.max_age must be at least"},
		{"age not a duration", "state:\n  max_age: later\n", "config"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.yaml), Overrides{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
