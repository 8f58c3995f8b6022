package engine_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/engine"
)

// smallEvent is a typical alert of about 200 bytes.
func smallEvent(org string, i int) herald.Record {
	device := fmt.Sprint("camera-", i%50)
	return herald.Record{
		Org: org, Channel: "alerts", Entity: "POLICY_ALERT", DeviceUUID: device, EntityUUID: "policy-7",
		Data: fmt.Appendf(nil, `{"org":%q,"channel":"alerts","entity":"POLICY_ALERT","entityUuid":"policy-7","type":"CREATE","deviceUuid":%q,"timestampMs":%d,"severity":"HIGH","textDescription":"motion"}`,
			org, device, 1_700_000_000_000+i),
	}
}

func fillLog(b *testing.B, e *engine.Engine, org string, total int) {
	b.Helper()
	batch := make([]herald.Record, 0, 1000)
	for i := range total {
		batch = append(batch, smallEvent(org, i))
		if len(batch) == cap(batch) || i == total-1 {
			if _, err := e.Append(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// STATE copies the log in the background: let it finish, so that
	// the timed part measures only the reader.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		lag, err := e.StateLag(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("state view still %d events behind", lag)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuTime is the CPU the process has used: events per CPU-second is the
// replay rate on one core, whatever else the machine is doing.
func cpuTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// BenchmarkReplay replays 100k small events of one org (of two) through
// Replay, decoding each with herald.DecodeEvent.
func BenchmarkReplay(b *testing.B) {
	e, err := engine.Open(b.Context(), engine.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	const total = 100_000
	fillLog(b, e, "org-a", total)
	fillLog(b, e, "org-b", total/10)

	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		n := 0
		if _, err := e.Replay(b.Context(), "org-a", 0, 0, func(*herald.Event) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != total {
			b.Fatalf("replayed %d events, want %d", n, total)
		}
	}
	b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(total*b.N)/(cpuTime()-cpu).Seconds(), "events/cpu-s")
}

// BenchmarkAppend measures one producer's appends of n records each.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			e, err := engine.Open(b.Context(), engine.Config{DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			records := make([]herald.Record, n)
			for i := range records {
				records[i] = smallEvent("org-a", i)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Append(b.Context(), records); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendParallel measures many producers appending 10 records each.
func BenchmarkAppendParallel(b *testing.B) {
	e, err := engine.Open(b.Context(), engine.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	records := make([]herald.Record, 10)
	for i := range records {
		records[i] = smallEvent("org-a", i)
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Append(b.Context(), records); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(len(records)*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFollow follows 100k small events already in the log.
func BenchmarkFollow(b *testing.B) {
	e, err := engine.Open(b.Context(), engine.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	const total = 100_000
	fillLog(b, e, "org-a", total)

	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		ctx, cancel := context.WithCancel(b.Context())
		n := 0
		err := e.Follow(ctx, 0, func(*herald.Event) {
			if n++; n == total {
				cancel()
			}
		})
		if err != context.Canceled {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(total*b.N)/(cpuTime()-cpu).Seconds(), "events/cpu-s")
}
