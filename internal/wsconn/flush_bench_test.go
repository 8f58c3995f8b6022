package wsconn

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

// discardConn is a net.Conn that drops what is written, so that the
// benchmark measures the writer's own work, not the kernel's.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) Close() error                     { return nil }

// oneRenderer frames one event per message, as stomp and channels do.
type oneRenderer struct{}

func (oneRenderer) AppendEvents(parts [][]byte, scratch []byte, events []Message) ([][]byte, []byte, int) {
	return append(parts, events[0].Event.Body), scratch, 1
}

// BenchmarkFlushBacklog writes a queue of queued events, as a writer does
// for a connection that fell behind: the cost per message must not grow
// with the depth of the queue.
func BenchmarkFlushBacklog(b *testing.B) {
	for _, depth := range []int{16, 256, 4096} {
		for _, r := range []struct {
			name string
			r    Renderer
		}{{"one-per-message", oneRenderer{}}, {"batched", batchRenderer{}}} {
			b.Run(fmt.Sprintf("depth=%d/%s", depth, r.name), func(b *testing.B) {
				c := NewConn(discardConn{}, Options{})
				c.SetRenderer(r.r)
				body := make([]byte, 200)
				batch := make([]Message, depth)
				for i := range batch {
					batch[i] = Message{Event: &herald.Event{ID: uint64(i + 1), Body: body}, op: 1}
				}
				st := new(writeState)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					st.batch = append(st.batch[:0], batch...)
					c.mu.Lock()
					c.flying = depth
					c.mu.Unlock()
					if err := c.flush(st); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*depth), "ns/message")
			})
		}
	}
}
