// Package client is herald's Go SDK: it connects to a herald server in
// any of its four WebSocket dialects and hands out the server's events
// in one canonical shape, each with its event id, in order, once.
//
//	s, err := client.Dial(ctx, "ws://127.0.0.1:8080", client.WithAPIKey(key))
//	if err != nil {
//		return err // a refused credential, a bad URL: nothing to retry
//	}
//	defer s.Close()
//	for {
//		e, err := s.Next(ctx)
//		if err != nil {
//			return err
//		}
//		fmt.Println(e.ID, e.Entity, e.DeviceUUID)
//		s.Ack(e.ID)
//	}
//
// A Stream survives the network and the server: when its connection
// drops or the server restarts, it reconnects with exponential backoff
// and jitter and resumes after the last event it handed out, through the
// dialect's own resume mechanism (STOMP's x-herald-after, channels'
// last_event_id, an ess session, a streams session), so that Next returns
// every event once and in id order. A Stream that starts without a
// cursor starts at the org's newest event, asked of the server before it
// connects, so that even its first reconnect loses nothing.
//
// Event ids are the cursor. The consumer acknowledges what it has
// processed with Ack; Acked is the highest acknowledged id, which a
// consumer that must survive its own restart stores and passes to After
// when it starts again. herald monitor stores it in the same transaction
// as the rows it writes.
//
// Filters (Filter) are herald's filter language, evaluated by the same
// code as the server's: the parts a dialect can send are sent, and every
// event is checked again here, so a Stream returns exactly the events its
// Filter matches in any dialect.
package client
