package client_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald/client"
)

// credentials of each dialect in the tests.
var dialects = []struct {
	dialect client.Dialect
	opts    []client.Option
}{
	{client.STOMP, []client.Option{client.WithAPIKey(key)}},
	{client.Channels, []client.Option{client.WithPassword("alice", "alice-pw")}},
	{client.ESS, []client.Option{client.WithAPIKey(key)}},
	{client.Streams, []client.Option{client.WithPassword("alice", "alice-pw"), client.WithCompany("acme")}},
}

func dial(t *testing.T, url string, d client.Dialect, opts ...client.Option) *client.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	opts = append([]client.Option{client.WithDialect(d), client.WithBackoff(20*time.Millisecond, 200*time.Millisecond)}, opts...)
	s, err := client.Dial(ctx, url, opts...)
	if err != nil {
		t.Fatalf("Dial %s: %v", d, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// next reads n events.
func next(t *testing.T, s *client.Stream, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var got []string
	for len(got) < n {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events (%v): %v", len(got), n, got, err)
		}
		got = append(got, strconv.FormatUint(e.ID, 10))
		s.Ack(e.ID)
	}
	return got
}

// TestResume: for every dialect, a Stream hands out every event once and
// in order while its connections are cut and the server restarts, with a
// publisher posting all along.
func TestResume(t *testing.T) {
	for _, d := range dialects {
		t.Run(string(d.dialect), func(t *testing.T) {
			n := startNode(t, testConfig(t.TempDir()))
			p := startProxy(t, n.addr) // restarts keep the address
			var mu sync.Mutex
			var statuses []client.Status
			opts := append(slices.Clone(d.opts), client.OnStatus(func(st client.Status) {
				mu.Lock()
				statuses = append(statuses, st)
				mu.Unlock()
			}))
			s := dial(t, p.url(), d.dialect, opts...)

			// Quiet: nothing is handed out that was published before Dial.
			want := n.mustPublish(alert("a0"), alert("a1"))
			got := next(t, s, 2)

			// A cut while nothing moves; events published while it reconnects.
			p.cut()
			want = append(want, n.mustPublish(alert("b0"), alert("b1"), alert("b2"))...)
			got = append(got, next(t, s, 3)...)

			// A restart of the server, then a publisher and cuts at once.
			n.restart()
			done := make(chan []string)
			go func() {
				var acked []string
				for i := 0; i < 60; {
					ids, err := n.publish(alert("c"+itoa(i)), alert("c"+itoa(i+1)))
					if err != nil {
						time.Sleep(20 * time.Millisecond) // retried with the same keys
						continue
					}
					acked = append(acked, ids...)
					i += 2
				}
				done <- acked
			}()
			connected := func() int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, st := range statuses {
					if st.Connected {
						n++
					}
				}
				return n
			}
			for range 3 {
				got = append(got, next(t, s, 5)...)
				before := connected()
				p.cut()
				waitFor(t, "the Stream to connect again", func() bool { return connected() > before })
			}
			acked := <-done
			want = append(want, acked...)
			got = append(got, next(t, s, len(want)-len(got))...)
			if !slices.Equal(got, want) {
				t.Fatalf("handed out %v,\nwant %v", got, want)
			}
			if s.Acked() != parseID(want[len(want)-1]) {
				t.Fatalf("Acked %d, want %s", s.Acked(), want[len(want)-1])
			}
		})
	}
}

// TestDialWhileDown: a Stream dialed without After while the server
// cannot be reached gets its cursor (the org's newest event) when it
// first connects, so a drop before its first event loses nothing.
func TestDialWhileDown(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	for _, d := range dialects {
		t.Run(string(d.dialect), func(t *testing.T) {
			n.mustPublish(alert("old-" + string(d.dialect)))
			p := startProxy(t, n.addr)
			p.setDown(true)
			var mu sync.Mutex
			var statuses []client.Status
			count := func(connected bool) int {
				mu.Lock()
				defer mu.Unlock()
				k := 0
				for _, st := range statuses {
					if st.Connected == connected {
						k++
					}
				}
				return k
			}
			s := dial(t, p.url(), d.dialect, append(slices.Clone(d.opts), client.OnStatus(func(st client.Status) {
				mu.Lock()
				statuses = append(statuses, st)
				mu.Unlock()
			}))...)
			p.setDown(false)
			waitFor(t, "the Stream to connect", func() bool { return count(true) == 1 })
			p.setDown(true)
			before := count(false)
			p.cut()
			waitFor(t, "the Stream to see the drop", func() bool { return count(false) > before })
			want := n.mustPublish(alert("gap0-"+string(d.dialect)), alert("gap1-"+string(d.dialect)))
			p.setDown(false)
			if got := next(t, s, 2); !slices.Equal(got, want) {
				t.Fatalf("after the drop: %v, want %v", got, want)
			}
		})
	}
}

func parseID(s string) uint64 {
	id, _ := strconv.ParseUint(s, 10, 64)
	return id
}

// TestAfter: a new Stream started After an event id gets exactly the
// events after it, in every dialect: the path a restarted consumer takes
// with its stored cursor (ess starts a session after the event, streams
// connects a new session with ?after).
func TestAfter(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	for _, d := range dialects {
		t.Run(string(d.dialect), func(t *testing.T) {
			k := string(d.dialect)
			published := n.mustPublish(alert(k+"0"), alert(k+"1"), alert(k+"2"), alert(k+"3"), alert(k+"4"))
			s := dial(t, "ws://"+n.addr, d.dialect, append(slices.Clone(d.opts), client.After(parseID(published[1])))...)
			if got := next(t, s, 3); !slices.Equal(got, published[2:]) {
				t.Fatalf("after %s: %v, want %v", published[1], got, published[2:])
			}
			live := n.mustPublish(alert("live-" + string(d.dialect)))
			if got := next(t, s, 1); !slices.Equal(got, live) {
				t.Fatalf("then %v, want the live %v", got, live)
			}
		})
	}
}

// TestFilter: the filter gives the same events in every dialect, whether
// the dialect's server applies it or the Stream does.
func TestFilter(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	other := "9d1e0f7a-9999-4c2b-8a3e-000000000009"
	mk := func(key, device, severity, trigger string) map[string]any {
		e := alert(key)
		e["deviceUuid"], e["severity"], e["policyAlertTriggers"] = device, severity, []string{trigger}
		return e
	}
	flt := client.Filter{Devices: []string{camera}, Severities: []string{"critical"}, Triggers: []string{"MOTION_HUMAN", "AREA_INTRUSION"}}
	for _, d := range dialects {
		t.Run(string(d.dialect), func(t *testing.T) {
			k := string(d.dialect)
			first := n.mustPublish(mk(k+"f0", camera, "info", "MOTION"))[0]
			ids := n.mustPublish(
				mk(k+"f1", camera, "critical", "MOTION_HUMAN"),
				mk(k+"f2", other, "critical", "MOTION_HUMAN"),
				mk(k+"f3", camera, "warning", "MOTION_HUMAN"),
				mk(k+"f4", camera, "critical", "LINE_CROSSING"),
				map[string]any{"entity": "DEVICE_STATUS", "deviceUuid": camera, "status": "online", "key": k + "f5"},
				mk(k+"f6", camera, "CRITICAL", "motion_human"),
			)
			want := []string{ids[0], ids[5]}
			s := dial(t, "ws://"+n.addr, d.dialect, append(slices.Clone(d.opts), client.After(parseID(first)), client.WithFilter(flt))...)
			sentinel := n.mustPublish(mk("s-"+string(d.dialect), camera, "critical", "MOTION_HUMAN"))
			if got := next(t, s, 3); !slices.Equal(got, append(slices.Clone(want), sentinel...)) {
				t.Fatalf("filtered %v, want %v then the sentinel %v", got, want, sentinel)
			}
		})
	}
}

// TestDialRefuses: what no retry can fix is Dial's error, in every
// dialect: a wrong credential, a bad filter, a URL of another dialect.
func TestDialRefuses(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	url := "ws://" + n.addr
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	cases := []struct {
		name string
		url  string
		opts []client.Option
	}{
		{"stomp wrong key", url, []client.Option{client.WithDialect(client.STOMP), client.WithAPIKey("nope")}},
		{"channels wrong password", url, []client.Option{client.WithDialect(client.Channels), client.WithPassword("alice", "nope")}},
		{"channels entity filter", url, []client.Option{client.WithDialect(client.Channels), client.WithAPIKey(key),
			client.WithFilter(client.Filter{Entities: []string{"POLICY_ALERT"}})}},
		{"ess wrong key", url, []client.Option{client.WithDialect(client.ESS), client.WithAPIKey("nope")}},
		{"streams wrong company", url, []client.Option{client.WithDialect(client.Streams), client.WithAPIKey(key), client.WithCompany("globex")}},
		{"unknown channel", url, []client.Option{client.WithAPIKey(key), client.WithFilter(client.Filter{Channels: []string{"weather"}})}},
		{"cursor beyond the log", url, []client.Option{client.WithAPIKey(key), client.After(1 << 40)}},
		{"dialect against path", url + "/ws", []client.Option{client.WithDialect(client.STOMP), client.WithAPIKey(key)}},
		{"bad scheme", "ftp://" + n.addr, []client.Option{client.WithAPIKey(key)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := client.Dial(ctx, c.url, c.opts...)
			if err == nil {
				s.Close()
				t.Fatal("Dial succeeded")
			}
			var ce *client.Error
			if !errors.As(err, &ce) || !ce.Permanent {
				t.Fatalf("Dial: %v (%T), want a permanent *client.Error", err, err)
			}
			t.Log(err)
		})
	}
}
