// Package bench is herald's load generator (`herald bench`): it opens many
// WebSocket connections of one dialect (stomp, channels, ess, streams: a
// wire each, wire.go), subscribes each to all of an org's events,
// publishes through the HTTP ingest at a given rate, and measures what comes
// back — deliveries per second, end-to-end latency, loss, duplicates and
// order — together with the server's RSS per connection and CPU per million
// deliveries read from /proc.
//
// The client is built to cost the server's machine as little as possible:
// one reader goroutine and a small buffer per connection, a byte scan of
// each MESSAGE frame (or JSON dialect's message) for its event id and the
// publish time embedded in the event (no JSON decoding), and a fixed-size
// histogram shared by all connections.
//
// Baseline is a deliberately minimal server speaking the same subset of the
// protocol, which frames each event once and writes it to every connection
// with one writev per batch: the machine's practical limit, against which a
// herald run is stated as a fraction.
package bench
