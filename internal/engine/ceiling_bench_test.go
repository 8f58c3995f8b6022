package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// ceilingMsgIDs numbers the Nats-Msg-Id of every ceiling benchmark's
// messages, so that no run's message is a duplicate of an earlier one's.
var ceilingMsgIDs atomic.Uint64

// BenchmarkJetStreamCeiling is the engine's own ceiling, the "NATS-only"
// figure herald's HTTP ingest is compared with (docs/benchmarks.md, issue
// 14): an engine opened as herald opens it (the same embedded server
// options, EVENTS and STATE as ensureAssets makes them, sync interval)
// takes ~200-byte events on herald's subjects, published through the
// engine's own connection with JetStream async publishing and at most
// window unacknowledged, as fast as the acknowledgements come. There is
// no HTTP, no parsing and no follower. One op = one event.
//
// Variants: with a Nats-Msg-Id per event (what a record's Key costs) and
// without; and state=off, with STATE deleted after Open, which is the
// price of EVENTS alone.
func BenchmarkJetStreamCeiling(b *testing.B) {
	const window = 4000
	for _, v := range []struct {
		state, msgID bool
	}{{true, false}, {true, true}, {false, false}} {
		name := fmt.Sprintf("state=%s/msgid=%s", onOff(v.state), onOff(v.msgID))
		b.Run(name, func(b *testing.B) {
			e, err := Open(b.Context(), Config{DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			if !v.state {
				if err := e.js.DeleteStream(b.Context(), stateStream); err != nil {
					b.Fatal(err)
				}
			}
			var failed atomic.Int64
			js, err := jetstream.New(e.conn,
				jetstream.WithPublishAsyncMaxPending(window),
				jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
			if err != nil {
				b.Fatal(err)
			}
			const org = "org-a"
			subjects := make([]string, 50)
			datas := make([][]byte, 50)
			for i := range subjects {
				r := ceilingRecord(org, i)
				subjects[i], datas[i] = eventSubject(&r), r.Data
			}

			b.ReportAllocs()
			b.ResetTimer()
			start, cpu := time.Now(), ceilingCPU()
			for i := range b.N {
				m := &nats.Msg{Subject: subjects[i%len(subjects)], Data: datas[i%len(datas)]}
				var opts []jetstream.PublishOpt
				if v.msgID {
					opts = append(opts, jetstream.WithMsgID(org+":k"+strconv.FormatUint(ceilingMsgIDs.Add(1), 10)))
				}
				for {
					_, err := js.PublishMsgAsync(m, opts...)
					if err == nil {
						break
					}
					if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
						b.Fatal(err)
					}
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatalf("%d publishes still unacknowledged after a minute", js.PublishAsyncPending())
			}
			elapsed, used := time.Since(start), ceilingCPU()-cpu
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d publishes failed", n, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/event")
			if v.state {
				// STATE copies in the background; this is the rate
				// at which both streams hold every event.
				deadline := time.Now().Add(time.Minute)
				for {
					lag, err := e.StateLag(b.Context())
					if err != nil {
						b.Fatal(err)
					}
					if lag == 0 {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("state view still %d events behind", lag)
					}
					time.Sleep(5 * time.Millisecond)
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "copied-events/s")
			}
			b.StopTimer()
		})
	}
}

// ceilingRecord is a typical alert of about 200 bytes, on one of 50
// devices.
func ceilingRecord(org string, i int) herald.Record {
	device := fmt.Sprint("camera-", i%50)
	return herald.Record{
		Org: org, Channel: "alerts", Entity: "POLICY_ALERT", DeviceUUID: device, EntityUUID: "policy-7",
		Data: fmt.Appendf(nil, `{"org":%q,"channel":"alerts","entity":"POLICY_ALERT","entityUuid":"policy-7","type":"CREATE","deviceUuid":%q,"timestampMs":%d,"severity":"HIGH","textDescription":"motion"}`,
			org, device, 1_700_000_000_000+i),
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// ceilingCPU is the CPU the process has used.
func ceilingCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// BenchmarkAppendProducers is herald's ingest without HTTP: 4 producers
// each Append batches of ~200-byte events, as BenchmarkIngestHTTP's 4
// producers do over HTTP, so that the two and BenchmarkJetStreamCeiling
// tell apart what the engine's pipeline and what the HTTP side cost. One
// op = one batch. With follow=on the node's follower runs too, as in
// herald serve, decoding every event for a hub that does nothing.
func BenchmarkAppendProducers(b *testing.B) {
	const producers = 4
	for _, v := range []struct {
		size   int
		follow bool
	}{{100, false}, {1000, false}, {1000, true}} {
		size := v.size
		b.Run(fmt.Sprintf("batch=%d/follow=%s", size, onOff(v.follow)), func(b *testing.B) {
			e, err := Open(b.Context(), Config{DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			if v.follow {
				ctx, cancel := context.WithCancel(b.Context())
				followed := make(chan struct{})
				go func() {
					defer close(followed)
					e.Follow(ctx, 0, func(*herald.Event) {})
				}()
				defer func() { cancel(); <-followed }()
			}
			records := make([]herald.Record, size)
			for i := range records {
				records[i] = ceilingRecord("org-a", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu := time.Now(), ceilingCPU()
			var wg sync.WaitGroup
			jobs := make(chan struct{})
			for range producers {
				wg.Go(func() {
					for range jobs {
						if _, err := e.Append(b.Context(), records); err != nil {
							b.Error(err)
						}
					}
				})
			}
			for range b.N {
				jobs <- struct{}{}
			}
			close(jobs)
			wg.Wait()
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64((ceilingCPU()-cpu).Microseconds())/float64(b.N*size), "cpu-µs/event")
		})
	}
}
