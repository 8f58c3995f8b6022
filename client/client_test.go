package client_test

import (
	"context"
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

func parseID(s string) uint64 {
	id, _ := strconv.ParseUint(s, 10, 64)
	return id
}
