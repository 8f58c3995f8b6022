package bench

import (
	"bytes"
	"strconv"
)

// Command is the kind of a frame the client reads.
type Command uint8

// Commands the client tells apart; everything else is CommandOther.
const (
	CommandOther Command = iota
	CommandMessage
	CommandConnected
	CommandReceipt
	CommandError
	CommandPing // a WebSocket ping; Raw is its payload
)

// Frame is what ScanFrame learns from one STOMP frame without decoding
// its body.
type Frame struct {
	Command   Command
	MessageID uint64 // the message-id header of a MESSAGE, if decimal
	HasID     bool
	Stamp     int64 // publish time (Unix ns) from the run's marker in the body
	Stamped   bool  // the body holds the run's marker: this run published it
	BodyLen   int   // bytes between the blank line and the NUL
	// Raw is the frame from its command to its NUL included. It aliases
	// the reader's buffer: valid only until the callback returns.
	Raw []byte
}

// Header returns the first value of a header of f (unescaped bytes as
// sent), or nil. It scans the frame and is meant for rare frames (ERROR,
// RECEIPT), not for each MESSAGE.
func (f *Frame) Header(name string) []byte {
	rest := f.Raw
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		return nil
	}
	rest = rest[i+1:]
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return nil
		}
		if len(line) > len(name) && line[len(name)] == ':' && string(line[:len(name)]) == name {
			return line[len(name)+1:]
		}
	}
	return nil
}

// Body returns the frame's body without its NUL (nil if there is none).
func (f *Frame) Body() []byte {
	if f.BodyLen == 0 {
		return nil
	}
	return f.Raw[len(f.Raw)-1-f.BodyLen : len(f.Raw)-1]
}

// ScanFrame reads one STOMP frame at the start of b, which must not begin
// with heart-beat EOLs (see skipEOL). It returns the frame and its length
// including the NUL, or ok=false if b holds no NUL yet. marker, if not
// empty, is the run's marker (see Marker): the digits after it in the
// body are the publish time.
//
// The end of the frame is the first NUL: the bench reads JSON bodies, which
// never contain one, so content-length is not needed.
func ScanFrame(b []byte, marker []byte) (f Frame, n int, ok bool) {
	end := bytes.IndexByte(b, 0)
	if end < 0 {
		return Frame{}, 0, false
	}
	f.Raw = b[:end+1]
	// One pass over the head's lines: the command, the message-id header,
	// the blank line.
	frame := b[:end]
	line, rest, found := bytes.Cut(frame, []byte("\n"))
	switch string(bytes.TrimSuffix(line, []byte("\r"))) {
	case "MESSAGE":
		f.Command = CommandMessage
	case "CONNECTED":
		f.Command = CommandConnected
	case "RECEIPT":
		f.Command = CommandReceipt
	case "ERROR":
		f.Command = CommandError
	}
	for found {
		line, rest, found = bytes.Cut(rest, []byte("\n"))
		if found && (len(line) == 0 || (len(line) == 1 && line[0] == '\r')) {
			f.BodyLen = len(rest)
			if f.Command == CommandMessage && len(marker) > 0 {
				f.Stamp, f.Stamped = scanStamp(rest, marker)
			}
			break
		}
		if !f.HasID && f.Command == CommandMessage && len(line) > len("message-id:") && line[0] == 'm' &&
			string(line[:len("message-id:")]) == "message-id:" {
			f.MessageID, f.HasID = parseUint(bytes.TrimSuffix(line[len("message-id:"):], []byte("\r")))
		}
	}
	return f, end + 1, true
}

// parseUint parses a decimal without allocating; at most 19 digits.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// scanStamp finds the marker in body and parses the decimal after it,
// which must end with a quote. It searches for the marker without its
// leading quote, whose first byte is much rarer in JSON, then checks the
// quote.
func scanStamp(body, marker []byte) (int64, bool) {
	from := 0
	for {
		i := bytes.Index(body[from:], marker[1:])
		if i < 0 {
			return 0, false
		}
		i += from
		if i == 0 || body[i-1] != marker[0] {
			from = i + 1
			continue
		}
		rest := body[i+len(marker)-1:]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return 0, false
		}
		n, ok := parseUint(rest[:j])
		if !ok || n > 1<<63-1 {
			return 0, false
		}
		return int64(n), true
	}
}

// skipEOL returns how many heart-beat bytes (LF, CR) start b.
func skipEOL(b []byte) int {
	for i, c := range b {
		if c != '\n' && c != '\r' {
			return i
		}
	}
	return len(b)
}

// Marker returns the bytes the client looks for in an event's body: the
// field name and the run id that precede the publish time, as in
// "bench":"<run>.<unix ns>".
func Marker(run string) []byte { return []byte(`"bench":"` + run + ".") }

// appendStampField appends the marker field with the publish time ns.
func appendStampField(dst []byte, run string, ns int64) []byte {
	dst = append(dst, `"bench":"`...)
	dst = append(dst, run...)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, ns, 10)
	return append(dst, '"')
}
