package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald/client"
)

// clusterConfig is the binaries' config on a cluster: three replicas,
// and alice for the password grant.
const clusterConfig = binaryConfig + `      - key: "` + keyAdmin + `"
        scopes: [admin]
    users:
      - name: alice
        password: "alice-pw"
replicas: 3
`

// clusterDialects are each dialect's SDK credentials on clusterConfig.
var clusterDialects = map[client.Dialect][]client.Option{
	client.STOMP:    {client.WithAPIKey(keyA)},
	client.Channels: {client.WithPassword("alice", "alice-pw")},
	client.ESS:      {client.WithAPIKey(keyA)},
	client.Streams:  {client.WithPassword("alice", "alice-pw"), client.WithCompany("acme")},
}

// clusterPublisher posts batches of keyed events from several workers,
// retrying a failed batch with the same keys until it is acknowledged,
// and records the ids and the longest time a worker waited.
type clusterPublisher struct {
	base    string
	mu      sync.Mutex
	acked   []uint64
	longest time.Duration // the longest a worker went from a failure to the next acknowledgement
}

func (p *clusterPublisher) count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.acked) }

func (p *clusterPublisher) run(workers, batches, size int) {
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 20 * time.Second}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; {
				var events []map[string]any
				for i := range size {
					e := alert(fmt.Sprintf("w%d-b%d-%d", w, b, i), camA)
					e["key"] = fmt.Sprintf("w%d-b%d-%d", w, b, i)
					events = append(events, e)
				}
				body, _ := json.Marshal(events)
				var failedAt time.Time
				for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
					ids, err := postEvents(hc, p.base, body)
					if err == nil && len(ids) == size {
						p.mu.Lock()
						p.acked = append(p.acked, ids...)
						if !failedAt.IsZero() {
							p.longest = max(p.longest, time.Since(failedAt))
						}
						p.mu.Unlock()
						break
					}
					if failedAt.IsZero() {
						failedAt = time.Now()
					}
					time.Sleep(20 * time.Millisecond) // the cluster elects; the same keys again
				}
				b++
			}
		}()
	}
	wg.Wait()
}

// postEvents posts a batch and returns its ids.
func postEvents(hc *http.Client, base string, body []byte) ([]uint64, error) {
	req, _ := http.NewRequest("POST", base+"/api/events", bytes.NewReader(body))
	req.Header.Set("x-auth-apikey", keyA)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct{ IDs []string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	ids := make([]uint64, len(out.IDs))
	for i, s := range out.IDs {
		ids[i], _ = strconv.ParseUint(s, 10, 64)
	}
	return ids, nil
}

// collector reads a Stream into a list until it ends.
type collector struct {
	mu  sync.Mutex
	ids []uint64
	err error
}

func collect(s *client.Stream) *collector {
	c := &collector{}
	go func() {
		for {
			e, err := s.Next(context.Background())
			c.mu.Lock()
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			c.ids = append(c.ids, e.ID)
			c.mu.Unlock()
			s.Ack(e.ID)
		}
	}()
	return c
}

func (c *collector) got() []uint64 { c.mu.Lock(); defer c.mu.Unlock(); return slices.Clone(c.ids) }

// TestCluster: three NATS nodes, two herald nodes with replicas 3. A
// subscriber of every dialect on node B receives what four publishers
// post to node A, in order, once; one NATS node is killed with -9 during
// the stream (the pause in ingest is measured and reported), then node B
// is killed with -9 and the subscribers go on on node A through each
// dialect's resume: nothing acknowledged is lost, nothing comes twice.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cluster := startNATSCluster(t)
	a := startHeraldOn(t, cluster, clusterConfig)
	b := startHeraldOn(t, cluster, clusterConfig)
	front := startSwitchProxy(t, b.addr) // the load balancer the clients use

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	collectors := map[client.Dialect]*collector{}
	for d, opts := range clusterDialects {
		s, err := client.Dial(ctx, "ws://"+front.addr(), append([]client.Option{client.WithDialect(d),
			client.WithBackoff(20*time.Millisecond, 500*time.Millisecond)}, opts...)...)
		if err != nil {
			t.Fatalf("%s on node B: %v", d, err)
		}
		defer s.Close()
		collectors[d] = collect(s)
	}

	pub := &clusterPublisher{base: "http://" + a.addr}
	const workers, batches, size = 4, 60, 10
	done := make(chan struct{})
	go func() { defer close(done); pub.run(workers, batches, size) }()

	waitFor(t, 2*time.Minute, "400 events acknowledged", func() bool { return pub.count() >= 400 })
	cluster.kill(2)
	killedNATS := pub.count()
	waitFor(t, 2*time.Minute, "1,200 events acknowledged", func() bool { return pub.count() >= 1200 })
	b.kill()
	front.switchTo(a.addr)
	killedB := pub.count()
	<-done

	want := slices.Clone(pub.acked)
	slices.Sort(want)
	if len(want) != workers*batches*size {
		t.Fatalf("%d events acknowledged, want %d", len(want), workers*batches*size)
	}
	for d, c := range collectors {
		deadline := time.Now().Add(2 * time.Minute)
		for len(c.got()) < len(want) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := c.got(); !slices.Equal(got, want) {
			missing := slices.DeleteFunc(slices.Clone(want), func(id uint64) bool { return slices.Contains(got, id) })
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			t.Errorf("%s: %d of %d events, %d missing (first %v), stream error %v", d, len(got), len(want), len(missing), missing[:min(len(missing), 5)], err)
		}
	}
	if t.Failed() {
		_, m := scrape(t, "http://"+a.addr+"/metrics", "x-auth-apikey", keyAdmin)
		t.Logf("node A: dispatched %v, lag %v, catch-ups %v", value(m, "herald_dispatched_event_id"), value(m, "herald_follower_lag_events"), value(m, "herald_catchups_total"))
	}
	for d, c := range collectors {
		if got := c.got(); !slices.Equal(got, want) {
			t.Fatalf("%s received %d events (%d distinct), want the %d acknowledged once each, in order", d, len(got), len(slices.Compact(slices.Clone(got))), len(want))
		}
	}
	t.Logf("%d events from %d publishers; nats-2 killed at %d acknowledged, herald B at %d; every dialect received each once, in order; the longest a publisher waited: %v",
		len(want), workers, killedNATS, killedB, pub.longest)
}

// TestClusterQuorumLoss: with two of three NATS nodes down, ingest
// answers 503 in herald's error shape within a bounded time, the
// subscribers keep their connections, and once the nodes are back
// ingest and delivery resume by themselves with nothing acknowledged
// lost.
func TestClusterQuorumLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cluster := startNATSCluster(t)
	a := startHeraldOn(t, cluster, clusterConfig)
	base := "http://" + a.addr
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var mu sync.Mutex
	drops := 0
	s, err := client.Dial(ctx, "ws://"+a.addr, client.WithAPIKey(keyA), client.OnStatus(func(st client.Status) {
		mu.Lock()
		defer mu.Unlock()
		if !st.Connected {
			drops++
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := collect(s)
	hc := &http.Client{Timeout: time.Minute}
	body := func(key string) []byte {
		e := alert(key, camA)
		e["key"] = key
		raw, _ := json.Marshal([]map[string]any{e})
		return raw
	}
	before, err := postEvents(hc, base, body("before"))
	if err != nil {
		t.Fatal(err)
	}

	cluster.kill(1)
	cluster.kill(2)
	start := time.Now()
	req, _ := http.NewRequest("POST", base+"/api/events", bytes.NewReader(body("during")))
	req.Header.Set("x-auth-apikey", keyA)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("ingest without quorum: %v after %v", err, time.Since(start))
	}
	var refused struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&refused)
	resp.Body.Close()
	answered := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable || refused.Error.Code != "unavailable" || answered > 30*time.Second {
		t.Fatalf("ingest without quorum: %d %+v after %v, want 503 unavailable within 30s", resp.StatusCode, refused, answered)
	}
	mu.Lock()
	dropped := drops
	mu.Unlock()

	cluster.start(1)
	cluster.start(2)
	cluster.waitJetStream(nil)
	var after []uint64
	waitFor(t, 2*time.Minute, "ingest to come back", func() bool {
		after, err = postEvents(hc, base, body("after"))
		return err == nil
	})
	want := append(slices.Clone(before), after...)
	// Every acknowledged event, not a count: "during" may have been stored
	// too, and come before "after".
	waitFor(t, 2*time.Minute, "the subscriber to get the events", func() bool {
		got := c.got()
		return !slices.ContainsFunc(want, func(id uint64) bool { return !slices.Contains(got, id) })
	})
	got := c.got()
	// "during" may have been stored before the answer was given up on:
	// only acknowledged events are promised.
	got = slices.DeleteFunc(got, func(id uint64) bool { return !slices.Contains(want, id) })
	if !slices.Equal(got, want) {
		t.Fatalf("the subscriber got %v, want %v", c.got(), want)
	}
	t.Logf("without quorum ingest answered 503 after %v (%q); the subscriber's connection dropped %d times during the loss; ingest came back after the nodes restarted",
		answered.Round(time.Millisecond), refused.Error.Message, dropped)
	if dropped != 0 {
		t.Errorf("the subscriber was disconnected %d times while the cluster had no quorum; it should keep its session", dropped)
	}
}
