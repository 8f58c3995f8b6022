package ingest

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/jsonscan"
)

// This file is Parse's fast path for the bodies producers send every day:
// it reads each event with jsonscan's tokens and writes it as the
// encoding/json path (parseStd) does, byte for byte, or gives up: on any
// error (nesting deeper than jsonscan.MaxDepth and repeated names
// included), and on anything it does not handle (escaped or non-ASCII
// top-level names, a body that is neither an array of objects nor
// objects one after another, text that is not UTF-8, an escaped
// surrogate), Parse runs parseStd, which also words every error. So the
// two can never disagree on what is accepted or on an error message; the
// fuzz test FuzzParseFastPath checks that they agree on the output.

// member is one field of an event object as the fast path read it.
type member struct {
	key      string // a plain key: printable ASCII without escapes
	raw      string // the value as sent (a substring of the body)
	out      []byte // the value compacted and HTML-escaped, as json.Marshal writes it
	kind     byte   // first byte of the value: '{', '[', '"', 't', 'f', 'n' or a number's
	plainStr bool   // a string whose content needs no unescaping: raw[1:len-1] is its value
}

// fastParser holds what one Parse call reuses from event to event.
type fastParser struct {
	body    []byte
	text    string // body as a string, so that fields are substrings, not copies
	pos     int
	org     string
	orgJSON []byte
	now     []byte
	limits  Limits
	members []member
	out     []byte     // every event's normalized JSON, back to back
	names   keyTracker // the names of the nested objects of the event being read
}

// fastParse is Parse for the common case; ok false means "ask parseStd".
func fastParse(body []byte, org string, nowMs int64, limits Limits) (records []herald.Record, ok bool) {
	orgJSON, err := json.Marshal(org)
	if err != nil {
		return nil, false
	}
	p := &fastParser{
		body: body, text: string(body), org: org, orgJSON: orgJSON,
		now: strconv.AppendInt(nil, nowMs, 10), limits: limits,
		out: make([]byte, 0, len(body)+len(body)/4+64),
	}
	p.skipSpace()
	if p.pos == len(body) {
		return nil, false
	}
	type span struct{ start, end int }
	var spans []span // each record's Data in p.out
	event := func() bool {
		if len(records) == limits.MaxEvents {
			return false
		}
		start := len(p.out)
		rec, ok := p.event()
		if !ok {
			return false
		}
		records = append(records, rec)
		spans = append(spans, span{start, len(p.out)})
		return true
	}
	switch body[p.pos] {
	case '[':
		p.pos++
		p.skipSpace()
		for {
			if !event() {
				return nil, false
			}
			p.skipSpace()
			if p.pos == len(body) {
				return nil, false
			}
			if body[p.pos] == ']' {
				p.pos++
				break
			}
			if body[p.pos] != ',' {
				return nil, false
			}
			p.pos++
			p.skipSpace()
		}
		p.skipSpace()
		if p.pos != len(body) {
			return nil, false
		}
	case '{':
		for p.pos < len(body) {
			if !event() {
				return nil, false
			}
			p.skipSpace()
		}
	default:
		return nil, false
	}
	for i, s := range spans {
		records[i].Data = p.out[s.start:s.end:s.end]
	}
	return records, true
}

// event reads one event object at p.pos and appends its normalized JSON
// to p.out.
func (p *fastParser) event() (herald.Record, bool) {
	s := jsonscan.NewScanner(p.body, p.pos)
	if t, ok := s.Next(); !ok || t.Kind != jsonscan.ObjectStart {
		return herald.Record{}, false
	}
	p.members = p.members[:0]
	p.names.reset()
	// Values are compacted into a scratch area at the end of p.out; the
	// event's JSON is written after it and then moved into place.
	scratch := len(p.out)
	for {
		t, ok := s.Next()
		if !ok {
			return herald.Record{}, false
		}
		if t.Kind == jsonscan.ObjectEnd {
			break
		}
		// Top-level names: repeats are found once they are sorted.
		key, ok := p.plainKey(t)
		if !ok {
			return herald.Record{}, false
		}
		v, ok := s.Next()
		if !ok {
			return herald.Record{}, false
		}
		outStart := len(p.out)
		plain, ok := p.value(&s, v)
		if !ok {
			return herald.Record{}, false
		}
		p.members = append(p.members, member{
			key: key, raw: p.text[v.Start:s.Pos()], out: p.out[outStart:len(p.out):len(p.out)],
			kind: p.body[v.Start], plainStr: v.Kind == jsonscan.String && plain,
		})
	}
	p.pos = s.Pos()
	rec, ok := p.normalize()
	if !ok {
		return herald.Record{}, false
	}
	// Write the event after the scratch values, then move it over them.
	eventStart := len(p.out)
	p.out = p.appendEvent(p.out, rec.Channel)
	n := copy(p.out[scratch:], p.out[eventStart:])
	p.out = p.out[:scratch+n]
	return rec, true
}

// normalize applies normalize's rules to p.members, in the same order;
// any rule that fails sends the body to parseStd.
func (p *fastParser) normalize() (herald.Record, bool) {
	slices.SortFunc(p.members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	kept := p.members[:0]
	for i, m := range p.members {
		if i > 0 && m.key == p.members[i-1].key {
			return herald.Record{}, false // json.Unmarshal keeps the last; leave that to it
		}
		if m.kind != 'n' { // null means absent
			kept = append(kept, m)
		}
	}
	p.members = kept
	var rec herald.Record
	var channel string
	var hasTimestamp bool
	for i := range p.members {
		m := &p.members[i]
		switch m.key {
		case "id":
			return rec, false
		case "entity", "entityUuid", "type", "deviceUuid", "channel", "key",
			"textDescription", "severity", "title", "message", "status", "oldStatus", "reason":
			s, ok := m.str()
			if !ok || len(s) > p.limits.MaxStringBytes {
				return rec, false
			}
			switch m.key {
			case "entity":
				rec.Entity = s
			case "entityUuid":
				rec.EntityUUID = s
			case "deviceUuid":
				rec.DeviceUUID = s
			case "channel":
				channel = s
			case "key":
				rec.Key = s
			}
		case "org":
			s, ok := m.str()
			if !ok || !strings.EqualFold(s, p.org) {
				return rec, false
			}
		case "timestampMs":
			if n, err := strconv.ParseInt(m.raw, 10, 64); err != nil || n < 0 {
				return rec, false
			}
			hasTimestamp = true
		case "durationSec":
			if m.kind != '-' && (m.kind < '0' || m.kind > '9') {
				return rec, false
			}
			if _, err := strconv.ParseFloat(m.raw, 64); err != nil {
				return rec, false
			}
		case "policyAlertTriggers":
			if !stringArray(m.raw, p.limits.MaxTriggers, p.limits.MaxNameBytes) {
				return rec, false
			}
		case "telemetry", "metadata":
			if m.kind != '{' {
				return rec, false
			}
			if m.key == "telemetry" && !keysWithin(m.raw, p.limits.MaxMetrics, p.limits.MaxNameBytes) {
				return rec, false
			}
		case "metrics":
			if m.kind == '{' && !keysWithin(m.raw, p.limits.MaxMetrics, p.limits.MaxNameBytes) {
				return rec, false
			}
		}
	}
	if rec.Entity == "" {
		return rec, false
	}
	if channel == "" {
		channel = herald.ChannelForEntity(rec.Entity)
	} else if !herald.ValidChannel(channel) {
		return rec, false
	}
	if channelJSON[channel] == nil {
		return rec, false
	}
	if !hasTimestamp {
		p.members = append(p.members, member{key: "timestampMs", out: p.now})
	}
	rec.Org, rec.Channel = p.org, channel
	return rec, true
}

// appendEvent writes the event as json.Marshal writes the map parseStd
// builds: keys sorted, org and channel set.
func (p *fastParser) appendEvent(dst []byte, channel string) []byte {
	extra := [...]member{
		{key: "channel", out: channelJSON[channel]},
		{key: "org", out: p.orgJSON},
	}
	members := p.members
	// Replace or insert channel and org, keeping the order sorted.
	for _, x := range extra {
		i, found := slices.BinarySearchFunc(members, x.key, func(m member, k string) int { return strings.Compare(m.key, k) })
		if found {
			members[i] = x
		} else {
			members = slices.Insert(members, i, x)
		}
	}
	if !slices.IsSortedFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) }) {
		slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	}
	p.members = members
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, m.key...)
		dst = append(dst, '"', ':')
		dst = append(dst, m.out...)
	}
	return append(dst, '}')
}

// str returns the value of a JSON string member as json.Unmarshal would.
func (m *member) str() (string, bool) {
	if m.kind != '"' {
		return "", false
	}
	if m.plainStr {
		return m.raw[1 : len(m.raw)-1], true
	}
	var s string
	if err := json.Unmarshal([]byte(m.raw), &s); err != nil {
		return "", false
	}
	return s, true
}

// stringArray reports whether raw, a valid JSON value, is an array of
// strings and nulls (what json.Unmarshal accepts into a []string) of at
// most maxItems items, each surely at most maxBytes bytes decoded.
func stringArray(raw string, maxItems, maxBytes int) bool {
	if raw == "" || raw[0] != '[' {
		return false
	}
	items := jsonscan.NewElements([]byte(raw))
	n := 0
	for item, ok := items.Next(); ok; item, ok = items.Next() {
		if n++; n > maxItems {
			return false
		}
		content, isString := jsonscan.StringContent(item)
		if !isString && string(item) != "null" || decodedBound(content) > maxBytes {
			return false
		}
	}
	return items.Valid()
}

// keysWithin reports whether the valid JSON object raw has at most
// maxKeys members, each name surely at most maxBytes bytes decoded.
func keysWithin(raw string, maxKeys, maxBytes int) bool {
	m := jsonscan.NewMembers([]byte(raw))
	n := 0
	for key, _, ok := m.Next(); ok; key, _, ok = m.Next() {
		if n++; n > maxKeys || decodedBound(key) > maxBytes {
			return false
		}
	}
	return m.Valid()
}

// decodedBound bounds the bytes the content of a JSON string decodes to:
// an escape never decodes longer than it is written, but an invalid
// UTF-8 byte becomes U+FFFD, three bytes.
func decodedBound(content []byte) int {
	n := len(content)
	for _, c := range content {
		if c >= 0x80 {
			n += 2
		}
	}
	return n
}

// plainKey returns the top-level name t if it is made of printable ASCII
// with no escapes and nothing json.Marshal would escape; anything else is
// not for the fast path.
func (p *fastParser) plainKey(t jsonscan.Token) (string, bool) {
	if t.Flags != 0 {
		return "", false
	}
	for _, c := range p.body[t.Start+1 : t.End-1] {
		if c == 0x7f {
			return "", false
		}
	}
	return p.text[t.Start+1 : t.End-1], true
}

// value appends the JSON value whose first token is t to p.out as
// json.Marshal writes a json.RawMessage (compacted, HTML-escaped), leaving
// s after it. plain reports, for a string, that it holds no escapes. It
// gives up on a repeated name in a nested object.
func (p *fastParser) value(s *jsonscan.Scanner, t jsonscan.Token) (plain bool, ok bool) {
	switch t.Kind {
	case jsonscan.String:
		return t.Flags&jsonscan.Escaped == 0, p.appendString(t)
	case jsonscan.ObjectStart, jsonscan.ArrayStart:
	default:
		p.out = append(p.out, p.body[t.Start:t.End]...)
		return false, true
	}
	depth := s.Depth() - 1
	for {
		switch t.Kind {
		case jsonscan.ObjectStart:
			p.names.open()
		case jsonscan.ObjectEnd:
			p.names.close()
		}
		switch t.Kind {
		case jsonscan.Key:
			if !p.names.add(p.name(t)) || !p.appendString(t) {
				return false, false
			}
			p.out = append(p.out, ':')
		case jsonscan.String:
			if !p.appendString(t) {
				return false, false
			}
		default:
			p.out = append(p.out, p.body[t.Start:t.End]...)
		}
		if s.Depth() == depth {
			return false, true
		}
		previous := t.Kind
		if t, ok = s.Next(); !ok {
			return false, false // a syntax error, or deeper than jsonscan.MaxDepth
		}
		switch previous {
		case jsonscan.ObjectStart, jsonscan.ArrayStart, jsonscan.Key:
		default:
			if t.Kind != jsonscan.ObjectEnd && t.Kind != jsonscan.ArrayEnd {
				p.out = append(p.out, ',')
			}
		}
	}
}

// name returns the decoded name of the Key token t.
func (p *fastParser) name(t jsonscan.Token) string {
	if t.Flags&jsonscan.Escaped == 0 {
		return p.text[t.Start+1 : t.End-1]
	}
	return jsonscan.Unquote(p.body[t.Start+1 : t.End-1])
}

// appendString appends the string token t, escaping <, >, & and
// U+2028/U+2029 as json.Marshal does. It gives up on text that is not
// UTF-8 and on an escaped surrogate, whose errors parseStd words.
func (p *fastParser) appendString(t jsonscan.Token) bool {
	b := p.body[t.Start:t.End]
	if t.Flags&jsonscan.Escaped != 0 && escapesSurrogate(b) {
		return false
	}
	if t.Flags&jsonscan.Special == 0 {
		p.out = append(p.out, b...)
		return true
	}
	start := 0 // copied up to here
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '<' || c == '>' || c == '&':
			p.out = append(p.out, b[start:i]...)
			p.out = append(p.out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case c >= 0x80:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			if r == '\u2028' || r == '\u2029' {
				p.out = append(p.out, b[start:i]...)
				p.out = append(p.out, '\\', 'u', '2', '0', '2', hexDigits[b[i+2]&0xF])
				start = i + 3
			}
			i += size - 1
		}
	}
	p.out = append(p.out, b[start:]...)
	return true
}

// escapesSurrogate reports whether the quoted string b holds a \u escape
// of a UTF-16 surrogate (parseStd checks the pairing).
func escapesSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] == 'u' {
			if b[i+2]|0x20 == 'd' && b[i+3] >= '8' {
				return true
			}
			i += 5
		} else {
			i++
		}
	}
	return false
}

// channelJSON holds each channel as a JSON string.
var channelJSON = func() map[string][]byte {
	m := make(map[string][]byte)
	for _, c := range []string{herald.ChannelAlerts, herald.ChannelTelemetry, herald.ChannelDevices, herald.ChannelSystem, herald.ChannelEvents} {
		m[c], _ = json.Marshal(c)
	}
	return m
}()

const hexDigits = "0123456789abcdef"

func (p *fastParser) skipSpace() {
	for p.pos < len(p.body) {
		switch p.body[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}
