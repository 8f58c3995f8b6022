package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkIngestHTTP posts batches of canonical events through
// POST /api/events to an in-process server on the embedded engine, with
// 4 concurrent producers, for each durability setting, and with
// ?atomic=true (whole-or-nothing batches) for the default one. One op =
// one batch.
func BenchmarkIngestHTTP(b *testing.B) {
	const producers = 4
	for _, mode := range []struct {
		sync  string
		query string
	}{{"interval", ""}, {"interval", "?atomic=true"}, {"always", ""}} {
		name := "sync=" + mode.sync
		if mode.query != "" {
			name += "+atomic"
		}
		for _, size := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", name, size), func(b *testing.B) {
				cfg := testConfig(b.TempDir())
				cfg.Sync = mode.sync
				ts := startServer(b, cfg)
				batch := make([]map[string]any, size)
				for i := range batch {
					batch[i] = alert(fmt.Sprintf("bench-%d", i), camA) // ~200 bytes each
				}
				body, _ := json.Marshal(batch)
				// One kept-alive connection per producer: http.DefaultClient
				// keeps only 2 idle per host, and a new TCP connection per
				// request would cost more than a small request itself.
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: producers}}
				defer client.CloseIdleConnections()
				post := func() {
					req, _ := http.NewRequest("POST", ts.base+"/api/events"+mode.query, bytes.NewReader(body))
					req.Header.Set("x-auth-apikey", keyA)
					resp, err := client.Do(req)
					if err != nil || resp.StatusCode != 200 {
						b.Errorf("post: %v %v", err, resp)
						return
					}
					io.Copy(io.Discard, resp.Body) // so that the connection is reused
					resp.Body.Close()
				}
				b.ResetTimer()
				start, cpu := time.Now(), processCPU()
				var wg sync.WaitGroup
				jobs := make(chan struct{})
				for range producers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range jobs {
							post()
						}
					}()
				}
				for range b.N {
					jobs <- struct{}{}
				}
				close(jobs)
				wg.Wait()
				b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "events/s")
				// CPU per event of the whole process (producers, HTTP, herald,
				// NATS) holds up on a busy machine, where events/s does not.
				b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N*size), "cpu-µs/event")
			})
		}
	}
}

// processCPU is the CPU time the process has used.
func processCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
