package server

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// trimEvery is how often the node looks for idle memory to give back.
const trimEvery = 5 * time.Second

// trimQuiet is the most a quiet process allocates in trimEvery.
const trimQuiet = 16 << 20

// trimMemory gives memory back to the operating system once a busy spell
// ends: when the process allocated less than trimQuiet since the last
// look, after a look that found it busy. A burst of connections (each
// handshake's buffers, a writer per connection) leaves the buffer pools
// full and the heap's free memory held up to the next collection's goal;
// an idle node would keep both for good. Two collections run, so that the
// pools' contents are freed too, and what was freed is returned. Nothing
// runs while the process stays busy or stays quiet. every is how often it
// looks (trimEvery).
func (s *Server) trimMemory(ctx context.Context, every time.Duration) {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var allocated uint64
	busy := true // the start is a burst
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(samples)
		now := samples[0].Value.Uint64()
		quiet := now-allocated < trimQuiet
		allocated = now
		if quiet && busy {
			debug.FreeOSMemory()
			debug.FreeOSMemory()
			s.logger.Debug("memory returned to the operating system after a busy spell")
		}
		busy = !quiet
	}
}
