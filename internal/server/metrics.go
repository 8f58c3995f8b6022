package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herald-gw/herald/internal/api"
	"github.com/herald-gw/herald/internal/wsconn"
)

// Metrics: GET /metrics in the Prometheus text format. The figures are
// read when scraped, from the counters the node keeps anyway (the
// session gauges, the tracked connections and what each wrote, counted
// in the connection so that no cache line is shared on the delivery
// path); only ingest observes histograms, once per request. No label names a device, a connection or
// an org: the series are bounded whatever the traffic.

// ingestMetrics observe POST /api/events (api.IngestObserver).
type ingestMetrics struct {
	events   prometheus.Counter
	requests prometheus.Histogram // a whole request, parse and store
	engine   prometheus.Histogram // the engine's store of the batch: its round trip
}

func newIngestMetrics() *ingestMetrics {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 14) // 0.5ms … 4s
	return &ingestMetrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_ingest_events_total",
			Help: "Events stored through POST /api/events."}),
		requests: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_ingest_request_seconds",
			Help: "Time from the start of a successful POST /api/events to its answer.", Buckets: buckets}),
		engine: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_engine_append_seconds",
			Help: "Time the engine took to store (and acknowledge) one batch of events.", Buckets: buckets}),
	}
}

func (m *ingestMetrics) Ingested(events int, request, engine time.Duration) {
	m.events.Add(float64(events))
	m.requests.Observe(request.Seconds())
	m.engine.Observe(engine.Seconds())
}

// closedStats add up what closed connections wrote, so that the
// counters do not fall when a connection goes.
type closedStats struct{ events, bytes, writeTimeouts uint64 }

func (c *closedStats) add(st wsconn.Stats) {
	c.events += st.Events
	c.bytes += st.Bytes
	if st.WriteTimeout {
		c.writeTimeouts++
	}
}

// nodeCollector reads the node's figures at each scrape.
type nodeCollector struct{ s *Server }

var (
	descConnections   = prometheus.NewDesc("herald_connections", "Open WebSocket connections, by dialect.", []string{"dialect"}, nil)
	descSubscriptions = prometheus.NewDesc("herald_subscriptions", "Live subscriptions of the node's sessions, by dialect.", []string{"dialect"}, nil)
	descQueued        = prometheus.NewDesc("herald_queued_messages", "Messages queued for the node's connections and not yet written.", nil, nil)
	descDeliveries    = prometheus.NewDesc("herald_deliveries_total", "Event messages written to WebSocket connections.", nil, nil)
	descBytes         = prometheus.NewDesc("herald_written_bytes_total", "Bytes written to WebSocket connections, frame headers included.", nil, nil)
	descCatchUps      = prometheus.NewDesc("herald_catchups_total", "Times a session fell behind the live stream and caught up from the log.", nil, nil)
	descCutOffs       = prometheus.NewDesc("herald_write_timeouts_total", "Connections cut off because the peer accepted nothing for limits.write_timeout.", nil, nil)
	descDetached      = prometheus.NewDesc("herald_sessions_detached_total", "Sessions kept for a later connection (ess, streams).", nil, nil)
	descAttached      = prometheus.NewDesc("herald_sessions_resumed_total", "Kept sessions a connection took over.", nil, nil)
	descHead          = prometheus.NewDesc("herald_dispatched_event_id", "The newest event id the node has dispatched to its sessions.", nil, nil)
	descLag           = prometheus.NewDesc("herald_follower_lag_events", "Events in the log the node has not dispatched yet, at the last readiness check.", nil, nil)
	descEngineUp      = prometheus.NewDesc("herald_engine_up", "1 if the engine answered the last readiness check.", nil, nil)
	descReady         = prometheus.NewDesc("herald_ready", "1 while /readyz answers 200.", nil, nil)
	descErrors        = prometheus.NewDesc("herald_http_errors_total", "HTTP API errors answered by the process, by herald error code.", []string{"code"}, nil)
)

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descSubscriptions, descQueued, descDeliveries, descBytes, descCatchUps,
		descCutOffs, descDetached, descAttached, descHead, descLag, descEngineUp, descReady, descErrors} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	perDialect := map[string]int{}
	for _, d := range s.dialects() {
		perDialect[d.name] = 0
	}
	queued := 0
	s.mu.Lock()
	written := s.closed
	for conn, dialect := range s.conns {
		perDialect[dialect]++
		queued += conn.Buffered()
		written.add(conn.Stats())
	}
	s.mu.Unlock()
	for dialect, n := range perDialect {
		ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(n), dialect)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	s.gauges.SubscriptionsByDialect(func(dialect string, n int64) {
		ch <- prometheus.MustNewConstMetric(descSubscriptions, prometheus.GaugeValue, float64(n), dialect)
	})
	gauge(descQueued, float64(queued))
	counter(descDeliveries, float64(written.events))
	counter(descBytes, float64(written.bytes))
	counter(descCatchUps, float64(s.gauges.CatchUps.Load()))
	counter(descCutOffs, float64(written.writeTimeouts))
	counter(descDetached, float64(s.gauges.Detached.Load()))
	counter(descAttached, float64(s.gauges.Attached.Load()))
	gauge(descHead, float64(s.hub.Head()))
	check := s.readiness.last()
	gauge(descLag, float64(check.lag))
	gauge(descEngineUp, boolValue(check.engineUp))
	ready, _ := s.readyToServe()
	gauge(descReady, boolValue(ready))
	api.ErrorCounts(func(code string, n uint64) {
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(n), code)
	})
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricsHandler serves the node's registry: the collector above, the
// ingest histograms, and the Go runtime's and the process's figures.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(nodeCollector{s}, s.ingest.events, s.ingest.requests, s.ingest.engine,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}

// serveMetrics serves /metrics alone on cfg.Metrics.Listen until ctx is
// done.
func (s *Server) serveMetrics(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(s.metricsListener); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// MetricsAddr is the address of the metrics listener, "" when /metrics is
// on the main listener.
func (s *Server) MetricsAddr() string {
	if s.metricsListener == nil {
		return ""
	}
	return s.metricsListener.Addr().String()
}
