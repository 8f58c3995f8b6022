package e2e

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkESSGetState2500 measures getState over 2,500 cameras, each
// with a Motion and a Recording state, as the vendor's client asks for it
// on connect (protocols.md §1.5: 1–2 minutes on the vendor's server). It
// runs the whole path: the command, the engine's STATE walk, the replay
// after it, the filter, the rendering and the reply read by the client.
//
//	go test -run '^$' -bench ESSGetState2500 -benchtime 20x ./e2e/
func BenchmarkESSGetState2500(b *testing.B) {
	cfg := testConfig(b.TempDir())
	ts := startServer(b, cfg)
	const cameras = 2500
	var batch []map[string]any
	for i := range cameras {
		cam := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		batch = append(batch, motion("MOTION_STARTED", cam), motion("RECORDING_STARTED", cam))
		if len(batch) >= 1000 {
			ts.publish(keyA, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		ts.publish(keyA, batch...)
	}
	c := dialESS(b, ts.essURL(), keyA)
	c.startSession("", "")
	c.subscribe(cameraFilter())
	// STATE copies the log asynchronously: wait until it holds every state.
	waitFor(b, time.Minute, "STATE to copy the events", func() bool {
		return len(c.ok(200, map[string]any{"command": "getState"})["states"].([]any)) == 2*cameras
	})
	b.ResetTimer()
	for b.Loop() {
		states := c.ok(200, map[string]any{"command": "getState"})["states"].([]any)
		if len(states) != 2*cameras {
			b.Fatalf("%d states, want %d", len(states), 2*cameras)
		}
	}
	b.ReportMetric(float64(c.size), "reply-bytes")
}
