package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestConnectionChurnLeavesNothingBehind: 10,000 STOMP connections come
// and go in waves of 2,000 (each connects, subscribes, receives an event
// and leaves: a third with DISCONNECT, a third with a WebSocket close, a
// third by dropping the TCP connection). The first wave sets the
// high-water marks (maps do not shrink, pools and caches fill); the four
// after it must leave the server with as many goroutines as before them
// and its live heap where it was.
func TestConnectionChurnLeavesNothingBehind(t *testing.T) {
	const waves, perWave = 5, 2000
	ts := startServer(t, testConfig(t.TempDir()))
	url := ts.wsURL()

	churn := func(n int) {
		t.Helper()
		conns := make([]net.Conn, n)
		dialAll(t, url, conns)
		ts.waitSubscriptions(n)
		id := ts.publish(keyA, alert("churn", camA))[0]
		forAll(t, conns, func(i int, c net.Conn) error {
			// Both directions: the write deadline dialAll set runs from the
			// dial, and a wave of 2,000 can take longer than that on a
			// loaded machine.
			c.SetDeadline(time.Now().Add(30 * time.Second))
			msg, err := wsutil.ReadServerText(c)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(msg, []byte("MESSAGE\n")) || !bytes.Contains(msg, []byte("message-id:"+id+"\n")) {
				return fmt.Errorf("got %q, want MESSAGE %s", msg, id)
			}
			switch i % 3 {
			case 0:
				return wsutil.WriteClientText(c, []byte("DISCONNECT\n\n\x00"))
			case 1:
				return wsutil.WriteClientMessage(c, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
			}
			return c.Close()
		})
		waitFor(t, 30*time.Second, "every connection to end", func() bool {
			return ts.health()["connections"] == float64(0)
		})
		for _, c := range conns {
			c.Close()
		}
	}

	churn(perWave)
	goroutines, heap := settle()
	for range waves - 1 {
		churn(perWave)
	}
	// The last connections' goroutines end, and their memory becomes
	// garbage, a little after the gauge shows them gone: wait for both to
	// settle. A leak of 100 bytes per connection would be 800 KB.
	var afterGoroutines int
	var afterHeap uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		afterGoroutines, afterHeap = settle()
		if afterGoroutines <= goroutines && afterHeap <= heap+512<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d connections: goroutines %d → %d, live heap %d KB → %d KB: want no more goroutines and at most 512 KB more heap",
				(waves-1)*perWave, goroutines, afterGoroutines, heap>>10, afterHeap>>10)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d connections came and went: goroutines %d → %d, live heap %d KB → %d KB",
		waves*perWave, goroutines, afterGoroutines, heap>>10, afterHeap>>10)
}

// settle collects garbage and returns the number of goroutines and the
// live heap.
func settle() (int, uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapAlloc
}

// dialAll opens len(conns) STOMP connections subscribed to org A's topic.
func dialAll(t *testing.T, url string, conns []net.Conn) {
	t.Helper()
	dialer := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"x-auth-apikey": {keyA}}), Timeout: 10 * time.Second}
	forAll(t, conns, func(i int, _ net.Conn) error {
		c, _, _, err := dialer.Dial(context.Background(), url)
		if err != nil {
			return err
		}
		conns[i] = c
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if err := wsutil.WriteClientText(c, []byte("CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\x00")); err != nil {
			return err
		}
		if msg, err := wsutil.ReadServerText(c); err != nil || !bytes.HasPrefix(msg, []byte("CONNECTED\n")) {
			return fmt.Errorf("CONNECT: %q, %v", msg, err)
		}
		sub := "SUBSCRIBE\nid:0\ndestination:/topic/change/" + orgA + "\nreceipt:r\n\n\x00"
		if err := wsutil.WriteClientText(c, []byte(sub)); err != nil {
			return err
		}
		if msg, err := wsutil.ReadServerText(c); err != nil || !bytes.HasPrefix(msg, []byte("RECEIPT\n")) {
			return fmt.Errorf("SUBSCRIBE: %q, %v", msg, err)
		}
		return nil
	})
}

// forAll runs fn for every connection on 64 workers and fails the test
// on the first error.
func forAll(t *testing.T, conns []net.Conn, fn func(i int, c net.Conn) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	next := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				if err := fn(i, conns[i]); err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
				}
			}
		})
	}
	for i := range conns {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}
