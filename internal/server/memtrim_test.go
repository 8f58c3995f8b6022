package server

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

var sink [][]byte

// A quiet process gives its free heap back: after a burst of garbage,
// the memory released to the operating system grows by most of it.
func TestTrimMemoryReturnsIdleHeap(t *testing.T) {
	released := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	// 64 MiB live, then garbage: the heap keeps it as free memory.
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	runtime.GC()
	before := released()

	s := &Server{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.trimMemory(ctx, 50*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for released() < before+32<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("released %d MiB more, want at least 32 MiB of the 64 freed", (released()-before)>>20)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
