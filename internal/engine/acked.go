package engine

// Acked returns, without waiting, the highest event id this engine has
// acknowledged to a producer, or seen in the log when it opened: with the
// embedded server every append goes through it, so it is the log's end;
// on a cluster, other nodes' appends reach it only through Follow's
// callers (see session.Node.Acked).
func (e *Engine) Acked() uint64 { return e.acked.Load() }

// noteAcked raises Acked to the highest of ids.
func (e *Engine) noteAcked(ids []uint64) {
	for _, id := range ids {
		for {
			cur := e.acked.Load()
			if id <= cur || e.acked.CompareAndSwap(cur, id) {
				break
			}
		}
	}
}
