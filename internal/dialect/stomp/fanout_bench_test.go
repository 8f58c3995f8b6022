package stomp

import (
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/hub"
	"github.com/herald-gw/herald/internal/session"
	"github.com/herald-gw/herald/internal/wsconn"
)

// sinkConn is a net.Conn that counts and drops what is written: the
// benchmark measures herald's fan-out path (hub, session, render, queue,
// writer), not the kernel's socket cost, which `herald bench` measures.
type sinkConn struct {
	net.Conn
	written *atomic.Int64
}

func (c sinkConn) Write(b []byte) (int, error) {
	c.written.Add(int64(len(b)))
	return len(b), nil
}
func (c sinkConn) Read([]byte) (int, error)         { select {} }
func (c sinkConn) Close() error                     { return nil }
func (c sinkConn) SetWriteDeadline(time.Time) error { return nil }
func (c sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (c sinkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c sinkConn) SetDeadline(t time.Time) error    { return nil }
func (c sinkConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// fanout is n STOMP sessions of one org, each subscribed to the org topic.
type fanout struct {
	hub      *hub.Hub
	sessions []*session.Session
	written  atomic.Int64
	batch    [1]*herald.Event // dispatch's, so that the test allocates no slice per event
}

func newFanout(tb testing.TB, n int) *fanout {
	f := &fanout{hub: hub.New(0)}
	node := session.Node{Hub: f.hub, Acked: f.hub.Head}.WithDefaults()
	cfg := Config{Node: &node}.WithDefaults()
	for range n {
		wc := wsconn.NewConn(sinkConn{written: &f.written}, wsconn.Options{})
		c := &conn{cfg: &cfg, conn: wc, version: V12}
		wc.SetRenderer(c)
		s := session.New(&node, wc)
		s.Start(herald.Principal{Org: "org"})
		if err := s.Subscribe(&session.Sub{ID: "sub-0", Value: newSubscription(c, "sub-0", "auto")}, nil, nil); err != nil {
			tb.Fatal(err)
		}
		f.sessions = append(f.sessions, s)
	}
	tb.Cleanup(func() {
		for _, s := range f.sessions {
			s.Close()
			s.Conn().Close()
		}
	})
	return f
}

// frameBytes is what one session writes for data: the WebSocket frame
// header and the MESSAGE frame with its recipient headers.
func frameBytes(tb testing.TB, id uint64, data []byte) int64 {
	e, err := herald.DecodeEvent(id, data)
	if err != nil {
		tb.Fatal(err)
	}
	n := len(renderMessage(e)) + len(AppendRecipientHeaders(nil, V12, "sub-0", ""))
	switch {
	case n < 126:
		return int64(n + 2)
	case n <= 0xFFFF:
		return int64(n + 4)
	}
	return int64(n + 10)
}

// dispatch sends one event and waits until every session has written it.
func (f *fanout) dispatch(tb testing.TB, id uint64, data []byte, frameBytes int64) {
	e, err := herald.DecodeEvent(id, data)
	if err != nil {
		tb.Fatal(err)
	}
	f.batch[0] = e
	f.dispatchBatch(tb, f.batch[:], frameBytes)
}

// dispatchBatch sends events and waits until every session has written
// them all.
func (f *fanout) dispatchBatch(tb testing.TB, events []*herald.Event, frameBytes int64) {
	want := f.written.Load() + frameBytes*int64(len(events))*int64(len(f.sessions))
	f.hub.DispatchBatch(events)
	deadline := time.Now().Add(30 * time.Second)
	for f.written.Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("only %d of %d bytes written", f.written.Load(), want)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

var benchEvent = []byte(`{"org":"org","channel":"alerts","entity":"POLICY_ALERT","entityUuid":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","type":"CREATE","deviceUuid":"d1e2f3a4-b5c6-7890-abcd-ef1234567890","timestampMs":1711843200000,"durationSec":5.2,"policyAlertTriggers":["MOTION_HUMAN"],"textDescription":"Person detected near entrance"}`)

// BenchmarkFanout delivers one event to 10k subscribed STOMP sessions per
// operation and reports the cost per delivery.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			f := newFanout(b, n)
			// Warm up: fill the pools.
			frame := frameBytes(b, 1, benchEvent)
			for i := range 4 {
				f.dispatch(b, uint64(1+i), benchEvent, frame)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				f.dispatch(b, uint64(10+i), benchEvent, frame)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
		})
	}
}

// BenchmarkFanoutBatch delivers batches of 100 events, as one ingest
// request of 100 makes them, to 1k subscribed STOMP sessions: the low
// fan-out path, where the cost per delivery, not per event, dominates.
func BenchmarkFanoutBatch(b *testing.B) {
	const n, size = 1000, 100
	f := newFanout(b, n)
	id := uint64(100000) // ids of one width, so that every frame has the same size
	frame := frameBytes(b, id, benchEvent)
	batch := func() []*herald.Event {
		events := make([]*herald.Event, size)
		for i := range events {
			e, err := herald.DecodeEvent(id, benchEvent)
			if err != nil {
				b.Fatal(err)
			}
			events[i], id = e, id+1
		}
		return events
	}
	f.dispatchBatch(b, batch()[:1], frame)
	batches := make([][]*herald.Event, 64)
	for i := range batches {
		batches[i] = batch()
	}
	b.ReportAllocs()
	b.ResetTimer()
	if b.N*size > 800000 {
		b.Fatalf("-benchtime %dx: at most %d batches keep the ids at one width", b.N, 800000/size)
	}
	for i := range b.N {
		if i > 0 && i%len(batches) == 0 {
			b.StopTimer()
			for k := range batches {
				batches[k] = batch()
			}
			b.StartTimer()
		}
		f.dispatchBatch(b, batches[i%len(batches)], frame)
	}
	b.StopTimer()
	deliveries := float64(b.N) * size * n
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(0, "ns/op")
}

// TestFanoutAllocationsPerDelivery pins the hot path's allocation budget:
// nothing per recipient. Filter, queue, writer start, render and writev
// allocate nothing per delivery; what remains is a fixed cost per event
// (decoding it, its cached encoding, the hub's bookkeeping), the same for
// 1 recipient or 2000.
func TestFanoutAllocationsPerDelivery(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector; `go test ./internal/dialect/stomp/` checks them")
	}
	const n = 2000
	f := newFanout(t, n)
	frame := frameBytes(t, 1, benchEvent)
	f.dispatch(t, 1, benchEvent, frame)
	// Pools (writer state, queues) are emptied by each garbage collection
	// and refill on the next burst: a cost per collection, not per
	// delivery. With a collection in the middle of the measurement it
	// would look like one; measure the steady state between collections.
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	id := uint64(2)
	allocs := testing.AllocsPerRun(20, func() {
		f.dispatch(t, id, benchEvent, frame)
		id++
	})
	t.Logf("%.0f allocations per event to %d sessions: %.4f per delivery", allocs, n, allocs/n)
	// 0.05 per delivery would be 100 per event: far above the per-event
	// cost, far below one allocation for every 20th recipient.
	if allocs > 0.05*n {
		t.Fatalf("%.0f allocations per event to %d sessions: something allocates per recipient", allocs, n)
	}
}
