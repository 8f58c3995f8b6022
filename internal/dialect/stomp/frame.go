package stomp

import "strconv"

// Header is one STOMP header, unescaped.
type Header struct{ Name, Value string }

// Frame is one decoded frame. Headers keep the received order and keep
// duplicates, because the spec gives the first occurrence precedence and a
// proxy-style consumer may want to see the rest. Body is nil when the frame
// carries none. A Frame owns its memory: it stays valid whatever the Parser
// does next.
type Frame struct {
	Command string
	Headers []Header // in received order; duplicates kept (first wins on lookup)
	Body    []byte
}

// Get returns the value of the first header called name. The spec makes the
// first occurrence of a repeated header the one that counts, so a client
// cannot override a header by repeating it.
func (f *Frame) Get(name string) (string, bool) {
	for _, h := range f.Headers {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

// Limits bound what one frame may hold. Zero (or negative) fields take the
// defaults below, so Limits{} is a safe configuration.
type Limits struct {
	MaxHeaderLines int // default 64 (count of header lines)
	MaxHeaderBytes int // default 8 KiB: command line + all header lines
	MaxBodyBytes   int // default 64 KiB
}

// Default limits, applied by NewParser to zero fields of Limits.
const (
	DefaultMaxHeaderLines = 64
	DefaultMaxHeaderBytes = 8 << 10
	DefaultMaxBodyBytes   = 64 << 10
)

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderLines <= 0 {
		l.MaxHeaderLines = DefaultMaxHeaderLines
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return l
}

// Version strings, as they appear in accept-version and version headers.
const (
	V10 = "1.0"
	V11 = "1.1"
	V12 = "1.2"
)

// ParseError is a protocol error. Message is short and safe to send to the
// client in an ERROR frame's message header: it never echoes client bytes.
type ParseError struct {
	Message string
	// Receipt is the offending frame's receipt header when the frame was
	// complete enough to read it, so the ERROR can carry receipt-id.
	Receipt string
}

// Error returns the message prefixed with the package name, for logs; send
// Message, not Error(), to the client.
func (e *ParseError) Error() string { return "stomp: " + e.Message }

// Errors that carry no variable part are allocated once.
var (
	errUnknownCommand = &ParseError{Message: "unknown command"}
	errNoColon        = &ParseError{Message: "header line without colon"}
	errBadEscape      = &ParseError{Message: "invalid escape sequence in header"}
	errContentLength  = &ParseError{Message: "invalid content-length"}
	errNoNUL          = &ParseError{Message: "frame body not followed by NUL"}
	errHeartBeat      = &ParseError{Message: "invalid heart-beat"}
)

func limitError(what string, limit int, unit string) *ParseError {
	return &ParseError{Message: what + " (limit " + strconv.Itoa(limit) + unit + ")"}
}

func bodyNotAllowed(command string) *ParseError {
	// command is always one of the known constants, never client bytes.
	return &ParseError{Message: "body not allowed on " + command}
}

// lookupCommand returns the canonical command for a command line, or "" for
// anything that is not a STOMP command. Returning constants keeps Next from
// allocating a string per frame.
func lookupCommand(b []byte) string {
	switch string(b) {
	case "CONNECT":
		return "CONNECT"
	case "STOMP":
		return "STOMP"
	case "SEND":
		return "SEND"
	case "SUBSCRIBE":
		return "SUBSCRIBE"
	case "UNSUBSCRIBE":
		return "UNSUBSCRIBE"
	case "ACK":
		return "ACK"
	case "NACK":
		return "NACK"
	case "BEGIN":
		return "BEGIN"
	case "COMMIT":
		return "COMMIT"
	case "ABORT":
		return "ABORT"
	case "DISCONNECT":
		return "DISCONNECT"
	case "CONNECTED":
		return "CONNECTED"
	case "MESSAGE":
		return "MESSAGE"
	case "RECEIPT":
		return "RECEIPT"
	case "ERROR":
		return "ERROR"
	}
	return ""
}

// bodyAllowed reports whether the spec lets command carry a body.
func bodyAllowed(command string) bool {
	return command == "SEND" || command == "MESSAGE" || command == "ERROR"
}

// rawCommand reports whether command's headers travel unescaped. CONNECT
// and CONNECTED are exchanged before the version (and so the escaping) is
// settled; STOMP is CONNECT under another name.
func rawCommand(command string) bool {
	return command == "CONNECT" || command == "STOMP" || command == "CONNECTED"
}
