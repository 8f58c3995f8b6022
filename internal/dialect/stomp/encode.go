package stomp

import "strconv"

// AppendFrame appends a complete encoded frame: command, headers (escaped
// per v unless command is CONNECT/CONNECTED), blank line, body, NUL.
// If body is non-empty or command is MESSAGE/ERROR/SEND, it adds
// content-length (unless a content-length header was given), so a body
// containing NUL survives and the peer need not scan for the end.
//
// STOMP is treated like CONNECT (never escaped), matching the Parser. Since
// CONNECT and CONNECTED headers cannot be escaped, their names must not hold
// ':' and neither names nor values may hold LF or end in CR; the caller
// chooses those values (version, heart-beat, session, server), so this is
// documented rather than checked. A given content-length must match body.
func AppendFrame(dst []byte, v string, command string, headers []Header, body []byte) []byte {
	m := escapingFor(v)
	if rawCommand(command) {
		m = escapeNone
	}
	dst = append(dst, command...)
	dst = append(dst, '\n')
	hasLength := false
	for _, h := range headers {
		if h.Name == "content-length" {
			hasLength = true
		}
		dst = appendEscaped(dst, m, h.Name)
		dst = append(dst, ':')
		dst = appendEscaped(dst, m, h.Value)
		dst = append(dst, '\n')
	}
	if !hasLength && (len(body) > 0 || bodyAllowed(command)) {
		dst = append(dst, "content-length:"...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, body...)
	return append(dst, 0)
}

// MessageHead appends the per-event part of a MESSAGE frame, shared by every
// recipient: "MESSAGE\ndestination:<dest>\nmessage-id:<id>\ncontent-type:application/json\ncontent-length:<n>\n"
// (dest and id escaped per 1.2 rules — they are server-chosen and normally
// need none, which also keeps them readable by the Rhombus clients that never
// unescape). Being shared, it cannot follow each recipient's version; with
// plain values every version reads it the same.
func MessageHead(dst []byte, destination, messageID string, bodyLen int) []byte {
	dst = append(dst, "MESSAGE\ndestination:"...)
	dst = appendEscaped(dst, escape12, destination)
	dst = append(dst, "\nmessage-id:"...)
	dst = appendEscaped(dst, escape12, messageID)
	dst = append(dst, "\ncontent-type:application/json\ncontent-length:"...)
	dst = strconv.AppendInt(dst, int64(bodyLen), 10)
	return append(dst, '\n')
}

// AppendRecipientHeaders appends the per-recipient headers of a MESSAGE:
// "subscription:<id escaped per v>\n" then, if ack != "", "ack:<ack>\n"
// (escaped per v too, as a guard; server-chosen ack ids need none), then the
// blank line "\n". It does not allocate when dst has room, because it runs
// once per recipient on the fan-out path.
func AppendRecipientHeaders(dst []byte, v, subscription, ack string) []byte {
	m := escapingFor(v)
	dst = append(dst, "subscription:"...)
	dst = appendEscaped(dst, m, subscription)
	dst = append(dst, '\n')
	if ack != "" {
		dst = append(dst, "ack:"...)
		dst = appendEscaped(dst, m, ack)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}

// MessageTail is body followed by NUL (what follows the per-recipient
// headers). It is shared by every recipient of an event.
func MessageTail(dst []byte, body []byte) []byte {
	dst = append(dst, body...)
	return append(dst, 0)
}
