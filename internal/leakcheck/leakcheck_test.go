package leakcheck

import (
	"strings"
	"testing"
	"time"
)

// TestFindWaitsForGoroutinesToEnd: a goroutine that ends after goleak's
// own retries are over, but within the bound, is no leak; one that
// outlives the bound is reported.
func TestFindWaitsForGoroutinesToEnd(t *testing.T) {
	done := make(chan struct{})
	go func() {
		time.Sleep(time.Second)
		close(done)
	}()
	if err := Find(Settle); err != nil {
		t.Fatalf("a goroutine ending after 1s reported as a leak: %v", err)
	}
	<-done

	stop := make(chan struct{})
	defer close(stop)
	go func() { <-stop }()
	err := Find(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "TestFindWaitsForGoroutinesToEnd") {
		t.Fatalf("a goroutine still running: Find = %v, want a report naming it", err)
	}
}
