// Package stomp is herald's STOMP 1.0/1.1/1.2 codec: bytes in, values out.
// It opens no sockets and starts no goroutines, so every rule it enforces can
// be table-tested, golden-tested and fuzzed without a network.
//
// The Parser is streaming: a WebSocket message may hold half a frame, several
// frames, or a lone heart-beat EOL, and the Parser accepts all of them in any
// split. It checks its Limits as bytes arrive, so a hostile peer cannot make
// it buffer more than about MaxHeaderBytes+MaxBodyBytes of input.
//
// Escaping depends on the negotiated version (SetVersion): 1.2 escapes CR,
// LF, colon and backslash as \r \n \c \\; 1.1 has the same set without \r;
// 1.0 has none. CONNECT, STOMP and CONNECTED frames are never escaped, in any
// version, because they travel before (or while) the version is agreed.
//
// The encoder serves the fan-out path: a MESSAGE is written as three parts so
// the part shared by every recipient is encoded once per event. MessageHead
// (command, destination, message-id, content-type, content-length), then
// AppendRecipientHeaders (subscription, ack, blank line), then MessageTail
// (body and NUL). Concatenated, they are one valid frame; the server hands
// them to writev as separate buffers.
package stomp
