package ingest

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/herald-gw/herald"
)

// This file is Parse's fast path: a hand-written scanner for the bodies
// producers send every day. It produces exactly what the encoding/json
// path (parseStd) produces, byte for byte, or gives up: on any error, and
// on anything it does not handle (escaped or non-ASCII keys, a repeated
// key, a body that is neither an array of objects nor objects one after
// another, text that is not UTF-8, an escaped surrogate), Parse runs
// parseStd, which also words every error. So the two can never disagree
// on what is accepted or on an error message; the fuzz test
// FuzzParseFastPath checks that they agree on the output.

// maxFastDepth bounds nesting on the fast path; deeper values go to
// encoding/json, which has its own limit.
const maxFastDepth = 200

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
	out     []byte // every event's normalized JSON, back to back
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
	if p.pos == len(p.body) || p.body[p.pos] != '{' {
		return herald.Record{}, false
	}
	p.pos++
	p.members = p.members[:0]
	// Values are compacted into a scratch area at the end of p.out; the
	// event's JSON is written after it and then moved into place.
	scratch := len(p.out)
	p.skipSpace()
	if p.pos < len(p.body) && p.body[p.pos] == '}' {
		p.pos++
	} else {
		for {
			key, ok := p.plainKey()
			if !ok {
				return herald.Record{}, false
			}
			p.skipSpace()
			if p.pos == len(p.body) || p.body[p.pos] != ':' {
				return herald.Record{}, false
			}
			p.pos++
			p.skipSpace()
			if p.pos == len(p.body) {
				return herald.Record{}, false
			}
			start, outStart := p.pos, len(p.out)
			kind := p.body[p.pos]
			plain, ok := p.value(0)
			if !ok {
				return herald.Record{}, false
			}
			p.members = append(p.members, member{
				key: key, raw: p.text[start:p.pos], out: p.out[outStart:len(p.out):len(p.out)],
				kind: kind, plainStr: kind == '"' && plain,
			})
			p.skipSpace()
			if p.pos == len(p.body) {
				return herald.Record{}, false
			}
			if p.body[p.pos] == '}' {
				p.pos++
				break
			}
			if p.body[p.pos] != ',' {
				return herald.Record{}, false
			}
			p.pos++
			p.skipSpace()
		}
	}
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
		default:
			// Read as triggers by encoding/json's case-insensitive match
			// (see checkTriggers): rare enough to leave to parseStd.
			if len(m.key) == len("policyAlertTriggers") && strings.EqualFold(m.key, "policyAlertTriggers") {
				return rec, false
			}
			// Read as a string field the same way (see checkFoldedNames).
			if m.kind != '"' && foldsToDecodedString(m.key) != "" {
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
	items := 0
	for i := 1; i < len(raw); i++ {
		switch raw[i] {
		case ' ', '\t', '\n', '\r', ',':
		case ']':
			return true
		case 'n':
			i += len("null") - 1
			items++
		case '"':
			start := i + 1
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
			items++
			if decodedBound(raw[start:min(i, len(raw))]) > maxBytes {
				return false
			}
		default:
			return false
		}
		if items > maxItems {
			return false
		}
	}
	return false
}

// keysWithin reports whether the valid JSON object raw has at most
// maxKeys members, each name surely at most maxBytes bytes decoded.
// Repeated names count: they are stored as sent.
func keysWithin(raw string, maxKeys, maxBytes int) bool {
	depth, keys, wantKey := 0, 0, false
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '{':
			depth++
			wantKey = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			wantKey = depth == 1
		case '"':
			start := i + 1
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
			if wantKey {
				wantKey = false
				if keys++; keys > maxKeys || decodedBound(raw[start:min(i, len(raw))]) > maxBytes {
					return false
				}
			}
		}
	}
	return true
}

// decodedBound bounds the bytes the content of a JSON string decodes to:
// an escape never decodes longer than it is written, but an invalid
// UTF-8 byte becomes U+FFFD, three bytes.
func decodedBound(content string) int {
	n := len(content)
	for i := 0; i < len(content); i++ {
		if content[i] >= 0x80 {
			n += 2
		}
	}
	return n
}

// plainKey reads an object key made of printable ASCII with no escapes
// and nothing json.Marshal would escape; anything else is not ok.
func (p *fastParser) plainKey() (string, bool) {
	if p.pos == len(p.body) || p.body[p.pos] != '"' {
		return "", false
	}
	start := p.pos + 1
	for i := start; i < len(p.body); i++ {
		switch c := p.body[i]; {
		case c == '"':
			p.pos = i + 1
			return p.text[start:i], true
		case c < 0x20 || c >= 0x7f || c == '\\' || c == '<' || c == '>' || c == '&':
			return "", false
		}
	}
	return "", false
}

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

// value validates the JSON value at p.pos and appends it to p.out as
// json.Marshal writes a json.RawMessage (compacted, HTML-escaped). plain
// reports, for a string, that it holds no escapes and only ASCII.
func (p *fastParser) value(depth int) (plain bool, ok bool) {
	if p.pos == len(p.body) || depth > maxFastDepth {
		return false, false
	}
	switch c := p.body[p.pos]; c {
	case '"':
		return p.string()
	case '{':
		p.pos++
		p.out = append(p.out, '{')
		p.skipSpace()
		if p.pos < len(p.body) && p.body[p.pos] == '}' {
			p.pos++
			p.out = append(p.out, '}')
			return false, true
		}
		for {
			if p.pos == len(p.body) || p.body[p.pos] != '"' {
				return false, false
			}
			if _, ok := p.string(); !ok {
				return false, false
			}
			p.skipSpace()
			if p.pos == len(p.body) || p.body[p.pos] != ':' {
				return false, false
			}
			p.pos++
			p.out = append(p.out, ':')
			p.skipSpace()
			if _, ok := p.value(depth + 1); !ok {
				return false, false
			}
			if more, ok := p.separator('}'); !more {
				return false, ok
			}
		}
	case '[':
		p.pos++
		p.out = append(p.out, '[')
		p.skipSpace()
		if p.pos < len(p.body) && p.body[p.pos] == ']' {
			p.pos++
			p.out = append(p.out, ']')
			return false, true
		}
		for {
			if _, ok := p.value(depth + 1); !ok {
				return false, false
			}
			if more, ok := p.separator(']'); !more {
				return false, ok
			}
		}
	case 't':
		return false, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return false, p.literal("null")
	default:
		return false, p.number()
	}
}

func (p *fastParser) literal(word string) bool {
	if !strings.HasPrefix(p.text[p.pos:], word) {
		return false
	}
	p.pos += len(word)
	p.out = append(p.out, word...)
	return true
}

// number reads a JSON number (RFC 8259 grammar) and copies it verbatim.
func (p *fastParser) number() bool {
	b, i := p.body, p.pos
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	p.out = append(p.out, b[p.pos:i]...)
	p.pos = i
	return true
}

// string reads a JSON string and appends it, escaping <, >, & and
// U+2028/U+2029 as json.Marshal does.
func (p *fastParser) string() (plain bool, ok bool) {
	b := p.body
	plain = true
	start := p.pos // copied up to here
	for i := p.pos + 1; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			p.out = append(p.out, b[start:i+1]...)
			p.pos = i + 1
			return plain, true
		case c == '\\':
			plain = false
			i++
			if i == len(b) {
				return false, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return false, false
				}
				if b[i+1]|0x20 == 'd' && b[i+2] >= '8' { // a surrogate: parseStd checks the pairing
					return false, false
				}
				i += 4
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		case c == '<' || c == '>' || c == '&':
			p.out = append(p.out, b[start:i]...)
			p.out = append(p.out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case c >= 0x80:
			plain = false
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return false, false // not UTF-8: parseStd words the error
			}
			if r == '\u2028' || r == '\u2029' {
				p.out = append(p.out, b[start:i]...)
				p.out = append(p.out, '\\', 'u', '2', '0', '2', hexDigits[b[i+2]&0xF])
				start = i + 3
			}
			i += size - 1
		}
	}
	return false, false
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

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// separator reads what follows a member or element: a comma (more: true)
// or the closing bracket (more: false, ok: true); anything else is not
// for the fast path (both false).
func (p *fastParser) separator(closing byte) (more, ok bool) {
	p.skipSpace()
	if p.pos == len(p.body) {
		return false, false
	}
	switch p.body[p.pos] {
	case ',':
		p.pos++
		p.out = append(p.out, ',')
		p.skipSpace()
		return true, true
	case closing:
		p.pos++
		p.out = append(p.out, closing)
		return false, true
	}
	return false, false
}
