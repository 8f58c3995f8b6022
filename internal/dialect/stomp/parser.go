package stomp

import (
	"bytes"
	"strings"
)

// parserState is where the Parser stands in the frame grammar
// COMMAND EOL *(header EOL) EOL body NUL *(EOL).
type parserState uint8

const (
	stateIdle       parserState = iota // between frames: LFs are heart-beats
	stateHead                          // command line and header lines
	stateBody                          // body octets
	stateTerminator                    // content-length octets read; a NUL must follow
)

// lineKind is what a completed head line turned out to be.
type lineKind uint8

const (
	lineMore      lineKind = iota // a command or header line: keep reading the head
	lineBlank                     // the blank line that ends the head
	lineHeartBeat                 // an empty command line: a CRLF heart-beat
)

// A head buffer that grew past this is dropped once idle, so a burst does
// not pin memory on a connection that then sits quiet. (The frame queue is
// always dropped once drained.)
const keepBufferBytes = 1 << 10

// inlineHeaders is how many headers Next places in the same allocation as
// the Frame; it covers every frame the Rhombus and stompjs clients send.
const inlineHeaders = 6

// pending is a frame whose bytes are complete and structurally checked but
// whose headers are still escaped. Unescaping waits for Next because the
// escaping rules may change (SetVersion) after a CONNECT that arrived in the
// same Feed as the frames that follow it.
type pending struct {
	command string
	head    string // the header lines, each ending in LF, escapes intact
	lines   int
	body    []byte
}

// Parser is a streaming parser: feed it bytes as they arrive (a frame may be
// split across many writes, and one write may hold several frames and
// heart-beat EOLs); pull complete frames with Next. Call Next until it
// returns (nil, nil) after each Feed: frames wait in a queue until then.
//
// Feed does the scanning and the limit checks, so its decisions depend only
// on the bytes seen, never on how they were split across calls. A Parser is
// not safe for concurrent use; a connection's read loop owns it.
type Parser struct {
	limits   Limits
	escaping escaping

	// The frame in progress.
	state         parserState
	buf           []byte // its head bytes, only when the head spans Feed calls
	lineStart     int    // head offset where the current line starts
	commandEnd    int    // head offset just past the command line
	headLen       int    // head length including the blank line, once read
	lines         int    // header lines so far
	command       string
	contentLength int // -1 until a content-length header is seen
	head          string
	body          []byte

	queue   []pending // complete frames waiting for Next
	next    int       // index in queue of the frame Next hands out next
	feedErr error     // the error Feed stopped at, reported after queue drains
	err     error     // once set, the parser is broken
}

// NewParser returns a Parser enforcing l (zero fields take the defaults)
// that applies STOMP 1.2 escaping until SetVersion says otherwise.
func NewParser(l Limits) *Parser {
	return &Parser{limits: l.withDefaults(), contentLength: -1}
}

// SetVersion selects the escaping rules for frames after CONNECT/CONNECTED
// (1.2: \r \n \c \\ ; 1.1: \n \c \\ ; 1.0: none). Before any call, the parser
// uses 1.2 rules. CONNECT and STOMP frames (and CONNECTED, for a client) are
// never unescaped, whatever the version. It applies to every frame not yet
// returned by Next, including ones already fed.
func (p *Parser) SetVersion(v string) { p.escaping = escapingFor(v) }

// Feed appends input. It copies only what it must keep (a partial frame):
// complete frames are cut straight out of data. data may be reused by the
// caller as soon as Feed returns.
func (p *Parser) Feed(data []byte) {
	for len(data) > 0 && p.err == nil && p.feedErr == nil {
		var n int
		var err error
		switch p.state {
		case stateIdle:
			n = p.skipHeartBeats(data)
		case stateHead:
			if len(p.buf) == 0 {
				n, err = p.headDirect(data)
			} else {
				n, err = p.headBuffered(data)
			}
		case stateBody:
			n, err = p.readBody(data)
		case stateTerminator:
			n, err = 1, p.terminate(data[0])
		}
		if err != nil {
			p.feedErr = err
			p.releaseFrame()
			return
		}
		data = data[n:]
	}
}

// Next returns the next complete frame, or (nil, nil) when more input is
// needed. Bare EOLs (LF or CRLF) between frames are heart-beats: skipped.
// After an error the parser is broken: every later call returns the same error.
func (p *Parser) Next() (*Frame, error) {
	if p.err != nil {
		return nil, p.err
	}
	if p.next < len(p.queue) {
		pf := p.queue[p.next]
		p.queue[p.next] = pending{} // let the frame's memory go with the Frame
		p.next++
		if p.next == len(p.queue) {
			p.next = 0
			p.queue = nil // an idle connection keeps none
		}
		f, err := p.decode(&pf)
		if err != nil {
			p.fail(err)
			return nil, err
		}
		return f, nil
	}
	if p.feedErr != nil {
		p.fail(p.feedErr)
		return nil, p.err
	}
	return nil, nil
}

// Buffered returns how many bytes of an incomplete frame are held (for
// tests/limits): the frame's length so far, from its first command byte.
func (p *Parser) Buffered() int {
	switch p.state {
	case stateHead:
		return len(p.buf)
	case stateBody, stateTerminator:
		return p.headLen + len(p.body)
	}
	return 0
}

func (p *Parser) fail(err error) {
	p.err = err
	p.queue, p.next = nil, 0
	p.releaseFrame()
}

// releaseFrame forgets the frame in progress and its buffers.
func (p *Parser) releaseFrame() {
	p.resetFrame()
	p.buf = nil
}

// resetFrame readies the parser for the next frame, keeping a small head
// buffer for reuse.
func (p *Parser) resetFrame() {
	p.state = stateIdle
	p.lineStart, p.commandEnd, p.headLen, p.lines = 0, 0, 0, 0
	p.command, p.head, p.body = "", "", nil
	p.contentLength = -1
	if cap(p.buf) > keepBufferBytes {
		p.buf = nil
	} else {
		p.buf = p.buf[:0]
	}
}

// skipHeartBeats consumes the LFs that precede a frame. A CR is not skipped
// here: it may start a CRLF heart-beat or a (bad) command, and the head
// reader tells them apart once the line ends.
func (p *Parser) skipHeartBeats(data []byte) int {
	n := 0
	for n < len(data) && data[n] == '\n' {
		n++
	}
	if n < len(data) {
		p.state = stateHead
	}
	return n
}

// definitelyNotBlank reports whether a line whose first n bytes (first being
// the first of them) are known can no longer be the blank line ending the
// head, which is "" or "\r".
func definitelyNotBlank(n int, first byte) bool {
	return n >= 2 || n == 1 && first != '\r'
}

// headDirect reads a head that starts at data[0]: complete heads are parsed
// in place and only an unfinished one is copied.
func (p *Parser) headDirect(data []byte) (int, error) {
	for {
		i := bytes.IndexByte(data[p.lineStart:], '\n')
		if i < 0 {
			n := len(data) - p.lineStart
			if definitelyNotBlank(n, firstByte(data[p.lineStart:])) && len(data) >= p.limits.MaxHeaderBytes {
				return 0, p.headerBytesError()
			}
			p.buf = append(p.buf[:0], data...)
			return len(data), nil
		}
		end := p.lineStart + i
		kind, err := p.headLine(data, end)
		if err != nil {
			return 0, err
		}
		switch kind {
		case lineHeartBeat:
			p.resetFrame()
			return end + 1, nil
		case lineBlank:
			p.finishHead(data[p.commandEnd:p.lineStart], end+1)
			return end + 1, nil
		}
	}
}

// headBuffered continues a head held in p.buf, appending one line at a time
// so that no byte past the head is copied.
func (p *Parser) headBuffered(data []byte) (int, error) {
	n := 0
	for n < len(data) {
		rest := data[n:]
		first := firstByte(rest)
		if p.lineStart < len(p.buf) {
			first = p.buf[p.lineStart]
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			held := len(p.buf) + len(rest)
			if definitelyNotBlank(held-p.lineStart, first) && held >= p.limits.MaxHeaderBytes {
				return 0, p.headerBytesError()
			}
			p.buf = append(p.buf, rest...)
			return len(data), nil
		}
		end := len(p.buf) + i
		// Reject an overlong line before copying it; headLine makes the
		// same decision for a line that fits.
		if end-p.lineStart >= 2 && end+1 > p.limits.MaxHeaderBytes {
			return 0, p.headerBytesError()
		}
		p.buf = append(p.buf, rest[:i+1]...)
		n += i + 1
		kind, err := p.headLine(p.buf, end)
		if err != nil {
			return 0, err
		}
		switch kind {
		case lineHeartBeat:
			p.resetFrame()
			return n, nil
		case lineBlank:
			p.finishHead(p.buf[p.commandEnd:p.lineStart], end+1)
			p.buf = p.buf[:0]
			return n, nil
		}
	}
	return n, nil
}

func firstByte(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func (p *Parser) headerBytesError() error {
	return limitError("headers too large", p.limits.MaxHeaderBytes, " bytes")
}

// headLine checks the head line h[p.lineStart:end] (end is its LF) and
// advances past it unless it ends the head.
func (p *Parser) headLine(h []byte, end int) (lineKind, error) {
	start := p.lineStart
	line := h[start:end]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		if start == 0 {
			return lineHeartBeat, nil
		}
		return lineBlank, nil
	}
	if end+1 > p.limits.MaxHeaderBytes {
		return 0, p.headerBytesError()
	}
	p.lineStart = end + 1
	if start == 0 {
		p.command = lookupCommand(line)
		if p.command == "" {
			return 0, errUnknownCommand
		}
		p.commandEnd = end + 1
		return lineMore, nil
	}
	p.lines++
	if p.lines > p.limits.MaxHeaderLines {
		return 0, limitError("too many header lines", p.limits.MaxHeaderLines, "")
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return 0, errNoColon
	}
	// The raw name equals the unescaped one here: no escape produces any
	// byte of "content-length", so the first raw match is the first header.
	if p.contentLength < 0 && string(line[:colon]) == "content-length" {
		return lineMore, p.setContentLength(line[colon+1:])
	}
	return lineMore, nil
}

// setContentLength validates the first content-length header as soon as it
// is read, so an oversized body is refused before any of it arrives.
func (p *Parser) setContentLength(v []byte) error {
	if len(v) == 0 {
		return errContentLength
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return errContentLength
		}
	}
	n := 0
	for _, c := range v {
		n = n*10 + int(c-'0')
		if n > p.limits.MaxBodyBytes {
			return limitError("body too large", p.limits.MaxBodyBytes, " bytes")
		}
	}
	if n > 0 && !bodyAllowed(p.command) {
		return bodyNotAllowed(p.command)
	}
	p.contentLength = n
	return nil
}

// finishHead keeps the header lines for Next and moves on to the body.
func (p *Parser) finishHead(headers []byte, headLen int) {
	p.head = string(headers)
	p.headLen = headLen
	p.state = stateBody
}

// readBody reads body octets: exactly content-length of them when the header
// was given, else up to the first NUL.
func (p *Parser) readBody(data []byte) (int, error) {
	if p.contentLength >= 0 {
		need := p.contentLength - len(p.body)
		if len(data) <= need {
			if p.body == nil {
				p.body = make([]byte, 0, p.contentLength)
			}
			p.body = append(p.body, data...)
			if len(p.body) == p.contentLength {
				p.state = stateTerminator
			}
			return len(data), nil
		}
		if need > 0 {
			if p.body == nil {
				p.body = make([]byte, 0, need)
			}
			p.body = append(p.body, data[:need]...)
		}
		return need + 1, p.terminate(data[need])
	}

	k := bytes.IndexByte(data, 0)
	size := k
	if k < 0 {
		size = len(data)
	}
	total := len(p.body) + size
	if total > 0 && !bodyAllowed(p.command) {
		return 0, bodyNotAllowed(p.command)
	}
	if total > p.limits.MaxBodyBytes {
		return 0, limitError("body too large", p.limits.MaxBodyBytes, " bytes")
	}
	if k < 0 {
		p.body = append(p.body, data...)
		return len(data), nil
	}
	if k > 0 {
		p.body = append(p.body, data[:k]...)
	}
	p.complete()
	return k + 1, nil
}

// terminate checks the byte after a content-length body.
func (p *Parser) terminate(b byte) error {
	if b != 0 {
		return errNoNUL
	}
	p.complete()
	return nil
}

// complete queues the frame in progress for Next.
func (p *Parser) complete() {
	p.queue = append(p.queue, pending{command: p.command, head: p.head, lines: p.lines, body: p.body})
	p.resetFrame()
}

// frameBlock puts a Frame and its first headers in one allocation.
type frameBlock struct {
	frame   Frame
	headers [inlineHeaders]Header
}

// decode unescapes a pending frame's headers under the current version.
func (p *Parser) decode(pf *pending) (*Frame, error) {
	var f *Frame
	switch {
	case pf.lines == 0:
		f = &Frame{}
	case pf.lines <= inlineHeaders:
		blk := &frameBlock{}
		f = &blk.frame
		f.Headers = blk.headers[:0:pf.lines]
	default:
		f = &Frame{Headers: make([]Header, 0, pf.lines)}
	}
	f.Command = pf.command
	f.Body = pf.body

	m := p.escaping
	if rawCommand(pf.command) {
		m = escapeNone
	}
	head := pf.head
	for len(head) > 0 {
		// Feed guaranteed that every line ends in LF and holds a colon.
		i := strings.IndexByte(head, '\n')
		line := head[:i]
		head = head[i+1:]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		colon := strings.IndexByte(line, ':')
		name, ok1 := unescape(m, line[:colon])
		value, ok2 := unescape(m, line[colon+1:])
		if !ok1 || !ok2 {
			return nil, &ParseError{Message: errBadEscape.Message, Receipt: receiptOf(m, pf.head)}
		}
		f.Headers = append(f.Headers, Header{Name: name, Value: value})
	}
	return f, nil
}

// receiptOf returns the first receipt header of a header block whose name
// and value unescape cleanly, or "".
func receiptOf(m escaping, head string) string {
	for len(head) > 0 {
		i := strings.IndexByte(head, '\n')
		line := strings.TrimSuffix(head[:i], "\r")
		head = head[i+1:]
		colon := strings.IndexByte(line, ':')
		name, ok := unescape(m, line[:colon])
		if !ok || name != "receipt" {
			continue
		}
		if value, ok := unescape(m, line[colon+1:]); ok {
			return value
		}
	}
	return ""
}
