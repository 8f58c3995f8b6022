package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// histogramShards spreads the connections' latency recording over a few
// histograms so that two cores do not fight over one set of counters.
const histogramShards = 16

// progressEvery is how often the progress line is redrawn.
const progressEvery = 500 * time.Millisecond

// maxDrain bounds the wait for deliveries after publishing, however
// steadily they still arrive.
const maxDrain = 2 * time.Minute

// Run performs one bench run: connect and subscribe cfg.Conns connections,
// publish for cfg.Warmup+cfg.Duration, wait for the deliveries, and
// measure. It returns an error when the run could not be performed (no
// connection, bad config); problems during the run (lost events, broken
// connections, failed requests) are in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := EnsureFileLimit(cfg.Conns); err != nil {
		return nil, err
	}
	localIPs, perIP, err := sourceAddresses(cfg.URL, cfg.Conns)
	if err != nil {
		return nil, err
	}
	if cfg.Org == "" {
		if cfg.Org, err = discoverOrg(ctx, cfg.HTTP, cfg.Key); err != nil {
			return nil, err
		}
	}
	r := &runner{cfg: cfg, clock: &runClock{}, start: time.Now()}
	r.clock.measureStart.Store(math.MaxInt64)
	r.id = newRunID()
	w, _ := wireOf(cfg.Dialect) // checked by withDefaults
	shape, target := newEventShape(r.id, cfg.Org, cfg.Size, w.alertEvents())
	r.res = &Result{
		Label: cfg.Label, Dialect: cfg.Dialect, URL: cfg.URL, Org: cfg.Org, Conns: cfg.Conns, Rate: FormatRate(cfg.Rate),
		Batch: cfg.Batch, Publishers: cfg.Publishers, BodyBytesTarget: target,
		WarmupSeconds: cfg.Warmup.Seconds(), DurationSeconds: cfg.Duration.Seconds(),
	}
	if cfg.ServerPID > 0 {
		r.res.Server = &ServerStats{PID: cfg.ServerPID}
		if r.res.Server.RSSBeforeBytes, err = processRSS(cfg.ServerPID); err != nil {
			return nil, fmt.Errorf("--server-pid: %w", err)
		}
	}
	d := newDialer(w, cfg, localIPs, perIP)
	defer d.hc.CloseIdleConnections()
	defer r.closeAll()
	if err := w.prepare(ctx, d); err != nil {
		return nil, err
	}
	if err := r.connect(ctx, d); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	if s := r.res.Server; s != nil {
		if s.RSSAfterBytes, err = processRSS(cfg.ServerPID); err != nil {
			return nil, fmt.Errorf("--server-pid: %w", err)
		}
		s.RSSPerConnBytes = float64(s.RSSAfterBytes-s.RSSBeforeBytes) / float64(cfg.Conns)
	}
	pub := newPublisher(cfg.HTTP, cfg.PublishKey, shape, cfg.Publishers)
	defer pub.close()
	if err := r.publish(ctx, pub); err != nil {
		return nil, err
	}
	r.drain(ctx, pub.acked.Load())
	r.finish(pub)
	return r.res, nil
}

// runner holds one run's state.
type runner struct {
	cfg   Config
	id    string
	clock *runClock
	start time.Time
	res   *Result
	conns []*clientConn
	hists [histogramShards]Histogram
	// slowHist records the slow connections' latencies, apart.
	slowHist Histogram
	wg       sync.WaitGroup // connection goroutines

	broken   atomic.Int64 // connections whose reader failed during the run
	errMu    sync.Mutex
	firstErr error // first reader failure; guarded by errMu

	lastProgress time.Time
	cpuStart     [2]time.Duration // server, client at the start of the measured window
	measureAt    time.Time
	publishEnd   time.Time
}

// connect opens and subscribes every connection, at most
// cfg.DialConcurrency at a time, and returns when all are subscribed or
// the first one failed.
func (r *runner) connect(ctx context.Context, d *dialer) error {
	began := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	marker := Marker(r.id)
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	ready := make(chan error, r.cfg.Conns)
	r.conns = make([]*clientConn, r.cfg.Conns)
	for i := range r.conns {
		c := &clientConn{hist: &r.hists[i%histogramShards], run: r.clock}
		if r.isSlow(i) {
			c.hist, c.slow = &r.slowHist, r.cfg.SlowRate
		}
		c.stream.Marker = marker
		c.stream.Scan = d.wire.scanner()
		r.conns[i] = c
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			sem <- struct{}{}
			err := d.dial(ctx, i, c)
			<-sem
			if err != nil {
				c.nc = nil
				ready <- fmt.Errorf("connection %d: %w", i+1, err)
				return
			}
			ready <- nil
			if err := c.readLoop(); err != nil {
				r.broken.Add(1)
				r.errMu.Lock()
				if r.firstErr == nil {
					r.firstErr = fmt.Errorf("connection %d: %w", i+1, err)
				}
				r.errMu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	var firstErr error
	for done := 0; done < r.cfg.Conns; {
		select {
		case err := <-ready:
			done++
			if err != nil && firstErr == nil {
				firstErr = err
				cancel() // the dials not started yet return at once
			}
		case <-tick.C:
			r.progress("connecting %d/%d", done, r.cfg.Conns)
		}
	}
	r.res.ConnectSeconds = time.Since(began).Seconds()
	if firstErr != nil {
		return firstErr
	}
	r.progress("connected %d in %.1fs", r.cfg.Conns, r.res.ConnectSeconds)
	return ctx.Err()
}

// publish runs the publishers for Warmup+Duration or MaxEvents.
func (r *runner) publish(ctx context.Context, pub *publisher) error {
	cfg := r.cfg
	jobs := make(chan int)
	var workers sync.WaitGroup
	for range cfg.Publishers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			var buf []byte
			for n := range jobs {
				buf = pub.publish(ctx, buf, n)
			}
		}()
	}
	start := time.Now()
	r.measureAt = start.Add(cfg.Warmup)
	end := r.measureAt.Add(cfg.Duration)
	r.clock.measureStart.Store(r.measureAt.UnixNano())
	measuring := false
	startMeasuring := func() {
		measuring = true
		r.cpuStart = r.cpuNow()
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	var issued int64
	for ctx.Err() == nil {
		now := time.Now()
		if !measuring && !now.Before(r.measureAt) {
			startMeasuring()
		}
		if !now.Before(end) || issued >= cfg.MaxEvents {
			break
		}
		if cfg.Rate > 0 {
			next := start.Add(time.Duration(float64(issued) / cfg.Rate * float64(time.Second)))
			if wait := next.Sub(now); wait > 0 {
				sleepCtx(ctx, min(wait, end.Sub(now), progressEvery))
				r.progressPublish(pub, start)
				continue
			}
		}
		n := int(min(int64(cfg.Batch), cfg.MaxEvents-issued))
		select {
		case jobs <- n:
			issued += int64(n)
		case <-tick.C:
			r.progressPublish(pub, start)
		case <-ctx.Done():
		}
	}
	close(jobs)
	workers.Wait()
	if !measuring {
		startMeasuring() // MaxEvents reached during warm-up: measure the drain
	}
	r.publishEnd = time.Now()
	if s := r.res.Server; s != nil {
		s.RSSEndBytes, _ = processRSS(r.cfg.ServerPID)
	}
	r.res.Published = pub.acked.Load()
	r.res.PublishSeconds = r.publishEnd.Sub(start).Seconds()
	r.res.PublishRate = float64(r.res.Published) / r.res.PublishSeconds
	return ctx.Err()
}

// drain waits until every connection received the acknowledged events, or
// nothing arrived for DrainTimeout, or maxDrain passed.
func (r *runner) drain(ctx context.Context, expected int64) {
	began := time.Now()
	lastTotal, lastChange := int64(-1), began
	for ctx.Err() == nil {
		var total int64
		complete := true
		for _, c := range r.conns {
			n := c.received.Load()
			total += n
			if n < expected && !c.closing.Load() && c.slow == 0 {
				complete = false
			}
		}
		now := time.Now()
		if total != lastTotal {
			lastTotal, lastChange = total, now
		}
		switch {
		case complete:
			r.res.DrainEnd = "complete"
		case now.Sub(lastChange) >= r.cfg.DrainTimeout:
			r.res.DrainEnd = "idle"
		case now.Sub(began) >= maxDrain:
			r.res.DrainEnd = "time limit"
		case r.broken.Load() == int64(len(r.conns)):
			r.res.DrainEnd = "no connection left"
		}
		if r.res.DrainEnd != "" {
			break
		}
		if now.Sub(r.lastProgress) >= progressEvery {
			r.progress("draining: %s of %s deliveries", count(total), count(expected*int64(len(r.conns))))
		}
		sleepCtx(ctx, 10*time.Millisecond)
	}
	r.res.DrainSeconds = time.Since(began).Seconds()
}

// finish computes the result from the connections' counters.
func (r *runner) finish(pub *publisher) {
	res := r.res
	cpu := r.cpuNow()
	expected := pub.acked.Load()
	res.Published = expected
	res.PublishRequests = pub.requests.Load()
	res.PublishErrors = pub.failed.Load()
	if err := pub.err(); err != nil {
		res.PublishError = err.Error()
	}
	var frameBytes, bodyBytes, lastRecv int64
	var all Histogram
	for i := range r.hists {
		all.Merge(&r.hists[i])
	}
	if r.cfg.SlowConns > 0 {
		res.Slow = &SlowStats{Conns: r.cfg.SlowConns, RateBytes: r.cfg.SlowRate}
	}
	for _, c := range r.conns {
		got := c.received.Load()
		res.Duplicates += c.duplicates.Load()
		res.OutOfOrder += c.outOfOrder.Load()
		if c.slow > 0 {
			res.Slow.Received += got
			res.Slow.Behind += max(0, expected-got)
			continue
		}
		res.Received += got
		res.Deliveries += c.measured.Load()
		res.Foreign += c.foreign.Load()
		frameBytes += c.frameBytes.Load()
		bodyBytes += c.bodyBytes.Load()
		lastRecv = max(lastRecv, c.lastRecv.Load())
		if got < expected {
			res.Lost += expected - got
			res.ConnsWithLoss++
		} else {
			res.Extra += got - expected
		}
	}
	res.Expected = expected * int64(len(r.conns)-r.cfg.SlowConns)
	if s := res.Slow; s != nil {
		s.Latency = latencyStats(&r.slowHist)
		if d := time.Since(r.measureAt).Seconds(); d > 0 {
			s.ReceivedRate = float64(s.Received) / float64(s.Conns) / d
		}
	}
	if res.Received > 0 {
		res.FrameBytes = float64(frameBytes) / float64(res.Received)
		res.BodyBytes = float64(bodyBytes) / float64(res.Received)
	}
	if window := time.Duration(lastRecv - r.measureAt.UnixNano()); window > 0 {
		res.DeliveriesPerSec = float64(res.Deliveries) / window.Seconds()
	}
	res.Latency = latencyStats(&all)
	res.BrokenConns = r.broken.Load()
	r.errMu.Lock()
	if r.firstErr != nil {
		res.ConnError = r.firstErr.Error()
	}
	r.errMu.Unlock()
	millions := float64(res.Deliveries) / 1e6
	if s := res.Server; s != nil && cpu[0] >= 0 && r.cpuStart[0] >= 0 {
		s.CPUSeconds = (cpu[0] - r.cpuStart[0]).Seconds()
		if millions > 0 {
			s.CPUSecondsPerMillion = s.CPUSeconds / millions
		}
	}
	res.ClientCPUSeconds = (cpu[1] - r.cpuStart[1]).Seconds()
	if millions > 0 {
		res.ClientCPUSecondsPerMillion = res.ClientCPUSeconds / millions
	}
	r.progressDone()
}

// cpuNow reads the server's and this process's CPU time (-1 if unknown).
func (r *runner) cpuNow() [2]time.Duration {
	out := [2]time.Duration{-1, -1}
	if r.cfg.ServerPID > 0 {
		if d, err := processCPU(r.cfg.ServerPID); err == nil {
			out[0] = d
		}
	}
	if d, err := processCPU(os.Getpid()); err == nil {
		out[1] = d
	}
	return out
}

// closeAll closes every connection and waits for their goroutines.
func (r *runner) closeAll() {
	// connect returned only after every dial reported, so each nc is set
	// (or nil for a failed dial) and only readers are still running.
	for _, c := range r.conns {
		if c.nc != nil {
			c.close()
		}
	}
	r.wg.Wait()
}

func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress == nil {
		return
	}
	r.lastProgress = time.Now()
	fmt.Fprintf(r.cfg.Progress, "\r\033[K[%s %5.1fs] %s", r.cfg.Label, time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

func (r *runner) progressPublish(pub *publisher, start time.Time) {
	if time.Since(r.lastProgress) < progressEvery {
		return
	}
	var got int64
	for _, c := range r.conns {
		got += c.received.Load()
	}
	elapsed := time.Since(start).Seconds()
	phase := "publishing"
	if time.Now().Before(r.measureAt) {
		phase = "warming up"
	}
	var p50, p99 int64
	for i := range r.hists { // the busiest shard stands for all, cheaply
		p50 = max(p50, r.hists[i].Quantile(0.5))
		p99 = max(p99, r.hists[i].Quantile(0.99))
	}
	r.progress("%s: %s events (%s/s), %s deliveries (%s/s), p50 %.2fms p99 %.2fms",
		phase, count(pub.acked.Load()), count(int64(float64(pub.acked.Load())/elapsed)),
		count(got), count(int64(float64(got)/elapsed)), ms(p50), ms(p99))
}

func (r *runner) progressDone() {
	if r.cfg.Progress != nil {
		fmt.Fprint(r.cfg.Progress, "\r\033[K")
	}
}

// discoverOrg asks the server which org the key belongs to.
func discoverOrg(ctx context.Context, base, key string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := strings.TrimSuffix(base, "/") + "/api/org/getOrgV2"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
	if err != nil {
		return "", err
	}
	req.Header.Set("x-auth-apikey", key)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("learn the org (give --org to skip): %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var answer struct {
		Org struct {
			UUID string `json:"uuid"`
		} `json:"org"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &answer) != nil || answer.Org.UUID == "" {
		return "", fmt.Errorf("learn the org (give --org to skip): POST %s: %s: %s", url, resp.Status, strings.TrimSpace(string(raw)))
	}
	return answer.Org.UUID, nil
}

func newRunID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// count formats n with a k or M suffix.
func count(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// isSlow reports whether connection i is one of the cfg.SlowConns
// throttled ones, spread evenly over the connections.
func (r *runner) isSlow(i int) bool {
	n, k := r.cfg.Conns, r.cfg.SlowConns
	return k > 0 && i*k/n != (i+1)*k/n
}

func latencyStats(h *Histogram) LatencyStats {
	return LatencyStats{
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: h.Mean() / 1e6,
	}
}
