package wsconn

// EnqueueAll queues every message of ms or, if they do not all fit, none.
func (c *Conn) EnqueueAll(ms []Message) bool {
	bytes := 0
	for i := range ms {
		bytes += ms[i].size()
	}
	c.mu.Lock()
	ok := c.roomLocked(len(ms), bytes)
	if ok {
		for _, m := range ms {
			c.pushLocked(m)
		}
	}
	c.mu.Unlock()
	return ok
}

// Closing reports whether the connection is closed or closing: nothing
// more can be queued.
func (c *Conn) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing || c.closed
}

// Written returns the highest event id written to the socket, and whether
// an event queued after it was not written (the connection closed first):
// a session that resumes elsewhere must resume after the first of them.
func (c *Conn) Written() (id uint64, unwritten bool) {
	id = c.written.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	return id, c.queuedEvent > id
}
