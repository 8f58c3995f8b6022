// Package leakcheck fails a test binary that leaves goroutines behind,
// as goleak.VerifyTestMain does, but gives the goroutines of finished
// tests time to end. goleak's own retries span about half a second; on a
// loaded CI machine, connections and servers that tests closed can take
// longer than that to wind down, and a check that fails then reports a
// leak that is not one.
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Settle is how long goroutines get to end after the last test.
const Settle = 15 * time.Second

// VerifyTestMain runs the tests and, if they passed, fails the binary
// when goroutines other than those opts ignore still run Settle later.
// It returns as soon as none is left.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := Find(Settle, opts...); err != nil {
			fmt.Fprintf(os.Stderr, "leakcheck: goroutines still running %v after the tests: %v\n", Settle, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Find is goleak.Find retried for up to within: nil as soon as no
// goroutine is left, else the last report.
func Find(within time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(within)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
