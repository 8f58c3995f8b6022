// Package channels is herald's codec for the Valtronics-compatible JSON
// channel protocol (seed 002, protocols.md §5 and §7.2): bytes in, values
// out. It opens no sockets and keeps no session state; the session glue
// decides what to do with a Message and writes what the Append functions
// return.
//
// Client messages (Decode): auth, subscribe, unsubscribe, ping and batch,
// plus the Valtronics server's subscribe_device and unsubscribe_device as
// aliases. Filters are read at the top level and under "filters", because
// the doc's JS and Python clients put them in different places. A refused
// message is an *Error whose Code the server sends back in
// {"type":"error","error":<code>,"message":…}.
//
// Server messages (AppendAuthOK … AppendTokenExpired) and pushes
// (AppendPush, AppendTelemetryUpdate, AppendSystemStatus) are written by
// hand into a caller's buffer: a push is rendered once per event and
// shared by every recipient.
//
// Subscription.Match filters events on the fan-out path without
// allocating. It reads "status", "alert_type" and the telemetry keys
// straight from the event's Body with the scanner of top-level JSON
// members (internal/jsonscan, names matched exactly).
package channels
