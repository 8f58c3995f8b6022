package server

import "testing"

// TestValtronicsExampleHasTheDocsLimits: examples/valtronics.yaml loads
// and sets the limits of the Valtronics WebSocket API document exactly.
func TestValtronicsExampleHasTheDocsLimits(t *testing.T) {
	cfg, err := LoadConfig("../../examples/valtronics.yaml", Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Limits.Channels
	want := ChannelsLimits{MaxMessageBytes: 1024, MessagesPerSecond: 100, ConnectionsPerUser: 100,
		MaxConnections: 1000, ConnectsPerMinute: 10, AuthTimeout: got.AuthTimeout}
	if got != want {
		t.Fatalf("limits.channels = %+v, want the doc's %+v", got, want)
	}
	if !cfg.Auth.JWTEnabled() {
		t.Fatal("the example configures no JWT secret")
	}
}
