package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// BenchmarkIngestHTTP posts batches of canonical events through
// POST /api/events to an in-process server on the embedded engine, with
// 4 concurrent producers, for each durability setting. One op = one batch.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, durability := range []string{"interval", "always"} {
		for _, size := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("sync=%s/batch=%d", durability, size), func(b *testing.B) {
				cfg := testConfig(b.TempDir())
				cfg.Sync = durability
				ts := startServer(b, cfg)
				batch := make([]map[string]any, size)
				for i := range batch {
					batch[i] = alert(fmt.Sprintf("bench-%d", i), camA) // ~200 bytes each
				}
				body, _ := json.Marshal(batch)
				post := func() {
					req, _ := http.NewRequest("POST", ts.base+"/api/events", bytes.NewReader(body))
					req.Header.Set("x-auth-apikey", keyA)
					resp, err := http.DefaultClient.Do(req)
					if err != nil || resp.StatusCode != 200 {
						b.Errorf("post: %v %v", err, resp)
						return
					}
					resp.Body.Close()
				}
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				jobs := make(chan struct{})
				for range 4 {
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
			})
		}
	}
}
