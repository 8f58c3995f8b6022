package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/herald-gw/herald/client"
)

// scrape GETs url's metrics with the header given (name, value) and
// parses the exposition format.
func scrape(t *testing.T, url string, header ...string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the exposition format: %v", err)
	}
	return resp.StatusCode, families
}

// value is the sample of family name whose labels include want (name,
// value, …): a gauge's or counter's value, a histogram's count.
func value(families map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == want[i] && l.GetValue() == want[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetrics: /metrics needs an admin credential on the main listener,
// parses as Prometheus's text format, and its figures follow traffic: a
// connection per dialect, deliveries and bytes for the events each
// received, ingest's counter and histograms, errors by code.
func TestMetrics(t *testing.T) {
	ts := monitorConfig(t)
	url := ts.base + "/metrics"
	if code, _ := scrape(t, url); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without a credential: %d, want 401", code)
	}
	if code, _ := scrape(t, url, "x-auth-apikey", keyA); code != http.StatusForbidden {
		t.Fatalf("/metrics with a tenant's key: %d, want 403", code)
	}
	_, before := scrape(t, url, "Authorization", "Bearer "+keyAdmin) // as Prometheus's authorization setting sends it
	if before == nil {
		t.Fatal("/metrics refused the admin key as a bearer token")
	}
	if value(before, "herald_http_errors_total", "code", "unauthorized") < 1 || value(before, "herald_ready") != 1 || value(before, "herald_engine_up") != 1 {
		t.Fatalf("errors %v, ready %v, engine up %v", value(before, "herald_http_errors_total", "code", "unauthorized"),
			value(before, "herald_ready"), value(before, "herald_engine_up"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	credentials := map[client.Dialect][]client.Option{
		client.STOMP:    {client.WithAPIKey(keyA)},
		client.Channels: {client.WithPassword("alice", "alice-pw")},
		client.ESS:      {client.WithAPIKey(keyA)},
		client.Streams:  {client.WithPassword("alice", "alice-pw"), client.WithCompany("acme")},
	}
	var streams []*client.Stream
	for d, opts := range credentials {
		s, err := client.Dial(ctx, "ws://"+ts.srv.Addr(), append([]client.Option{client.WithDialect(d)}, opts...)...)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		defer s.Close()
		streams = append(streams, s)
	}
	connected := func(n float64) func() bool {
		return func() bool {
			_, m := scrape(t, url, "x-auth-apikey", keyAdmin)
			for d := range credentials {
				if value(m, "herald_connections", "dialect", string(d)) != n {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, patience, "a connection per dialect", connected(1))

	const events = 10
	var batch []map[string]any
	for i := range events {
		batch = append(batch, alert("m"+strconv.Itoa(i), camA))
	}
	ts.publish(keyA, batch...)
	for _, s := range streams {
		for range events {
			if _, err := s.Next(ctx); err != nil {
				t.Fatalf("%s: %v", s.Dialect(), err)
			}
		}
	}
	_, after := scrape(t, url, "x-auth-apikey", keyAdmin)
	delta := func(name string) float64 { return value(after, name) - value(before, name) }
	switch {
	case delta("herald_deliveries_total") < 4*events:
		t.Fatalf("deliveries grew by %v for %d events to 4 clients", delta("herald_deliveries_total"), events)
	case delta("herald_written_bytes_total") <= 0:
		t.Fatal("no bytes written")
	case delta("herald_ingest_events_total") != events:
		t.Fatalf("ingest events grew by %v, want %d", delta("herald_ingest_events_total"), events)
	case delta("herald_ingest_request_seconds") != 1 || delta("herald_engine_append_seconds") != 1:
		t.Fatalf("ingest histograms grew by %v and %v samples, want one request", delta("herald_ingest_request_seconds"), delta("herald_engine_append_seconds"))
	case slices.ContainsFunc(slices.Collect(maps.Keys(credentials)), func(d client.Dialect) bool {
		return value(after, "herald_subscriptions", "dialect", string(d)) < 1
	}):
		t.Fatalf("subscriptions %v, want one per dialect at least", after["herald_subscriptions"])
	case value(after, "herald_dispatched_event_id") < events:
		t.Fatalf("dispatched id %v", value(after, "herald_dispatched_event_id"))
	case value(after, "go_goroutines") <= 0 || value(after, "process_resident_memory_bytes") <= 0:
		t.Fatal("no runtime or process figures")
	}
	for _, s := range streams {
		s.Close()
	}
	waitFor(t, patience, "the connections to close", connected(0))
}

// TestMetricsListener: with metrics.listen, /metrics is served there with
// no credential, and not on the main listener.
func TestMetricsListener(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Metrics.Listen = "127.0.0.1:0"
	ts := startServer(t, cfg)
	if code, m := scrape(t, "http://"+ts.srv.MetricsAddr()+"/metrics"); code != 200 || value(m, "herald_ready") != 1 {
		t.Fatalf("the metrics listener: %d, ready %v", code, value(m, "herald_ready"))
	}
	if code, _ := scrape(t, ts.base+"/metrics", "x-auth-apikey", keyAdmin); code != http.StatusNotFound {
		t.Fatalf("/metrics on the main listener: %d, want 404", code)
	}
}

// TestReadyzFollowsTheEngine: on an external NATS, /readyz answers 503
// with a reason once the engine has not answered for engine_grace, and
// 200 again when it is back; /healthz, the liveness check, stays 200;
// herald_engine_up and herald_ready follow.
func TestReadyzFollowsTheEngine(t *testing.T) {
	opts := &natsserver.Options{}
	ns := runNATS(t, opts)
	opts.Port = ns.Addr().(*net.TCPAddr).Port // the same address when it comes back
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()

	cfg := testConfig(t.TempDir())
	cfg.NATS = []string{ns.ClientURL()}
	cfg.Readiness.EngineGrace = time.Second
	cfg.Metrics.Listen = "127.0.0.1:0" // the main listener's credential check needs the engine
	ts := startServer(t, cfg)
	readyz := func() (int, map[string]any) {
		resp, err := http.Get(ts.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	liveness := func() int {
		resp, err := http.Get(ts.base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, patience, "/readyz 200", func() bool { code, _ := readyz(); return code == 200 })

	ns.Shutdown()
	ns.WaitForShutdown()
	var body map[string]any
	waitFor(t, patience, "/readyz 503 with the engine gone", func() bool {
		var code int
		code, body = readyz()
		return code == http.StatusServiceUnavailable
	})
	if reason, _ := body["reason"].(string); !strings.Contains(reason, "engine has not answered") {
		t.Fatalf("/readyz body %v, want the reason", body)
	}
	if code := liveness(); code != 200 {
		t.Fatalf("/healthz with the engine gone: %d, want 200 (liveness)", code)
	}
	waitFor(t, patience, "herald_engine_up and herald_ready 0", func() bool {
		_, m := scrape(t, "http://"+ts.srv.MetricsAddr()+"/metrics")
		return value(m, "herald_engine_up") == 0 && value(m, "herald_ready") == 0
	})

	ns = runNATS(t, opts) // the same port and store
	waitFor(t, patience, "/readyz 200 with the engine back", func() bool { code, _ := readyz(); return code == 200 })
}
