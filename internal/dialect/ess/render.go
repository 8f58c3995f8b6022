package ess

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/jsonscan"
	"github.com/herald-gw/herald/internal/wsconn"
)

// Two slots of every event's cache: the pushed JSON and the key filters
// read. Both are computed once per event and node, whatever the number of
// sessions.
var (
	rendering = herald.NewRendering()
	keying    = herald.NewRendering()
)

// DeviceKinds gives a registered device's kind ("" if unknown). It is
// read on the delivery path, so it must answer from memory.
type DeviceKinds interface {
	Device(org, uuid string) (herald.Device, bool)
}

type noDevices struct{}

func (noDevices) Device(string, string) (herald.Device, bool) { return herald.Device{}, false }

// renderer renders events for one node: it knows the node's devices.
type renderer struct {
	devices   DeviceKinds
	renderFn  func(*herald.Event) []byte
	keyFn     func(*herald.Event) []byte
	maxEvents int // events per pushed message
}

func newRenderer(devices DeviceKinds, maxEvents int) *renderer {
	r := &renderer{devices: devices, maxEvents: maxEvents}
	r.renderFn, r.keyFn = r.render, r.key
	return r
}

// eventInfo is what rendering and filters derive from an event.
type eventInfo struct {
	resourceType string
	source       string // the device uuid, or the entity uuid for an event without device
	typeID       string
	group        *StateGroup
}

func (r *renderer) info(e *herald.Event) eventInfo {
	source := e.DeviceUUID
	if source == "" {
		source = e.EntityUUID
	}
	dev, _ := r.devices.Device(e.Org, e.DeviceUUID)
	in := eventInfo{resourceType: ResourceType(dev.Kind, e.Entity), source: source}
	if t := typesByEntity[e.Entity]; t != nil {
		in.typeID, in.group = t.ID, t.StateGroup
	} else if id := explicitType(e.Body); id != "" {
		in.typeID = id
	} else {
		in.typeID = Learn(e.Org, e.Entity).ID
	}
	return in
}

// explicitType is the producer's "eventTypeId", if it is a GUID.
func explicitType(body []byte) string {
	raw, ok := jsonscan.Lookup(body, "eventTypeId")
	if !ok {
		return ""
	}
	content, ok := jsonscan.StringContent(raw)
	if !ok || !isGUID(string(content)) {
		return ""
	}
	return strings.ToLower(string(content))
}

// key renders "resourcetype\x00source\x00typeid", lower case, for filters.
func (r *renderer) key(e *herald.Event) []byte {
	in := r.info(e)
	b := make([]byte, 0, len(in.resourceType)+len(in.source)+len(in.typeID)+2)
	b = append(b, strings.ToLower(in.resourceType)...)
	b = append(b, 0)
	b = append(b, strings.ToLower(in.source)...)
	b = append(b, 0)
	return append(b, in.typeID...)
}

func (r *renderer) keyOf(e *herald.Event) eventKey { return parseKey(e.Rendered(keying, r.keyFn)) }

// render is an event as protocols.md §7.3 gives it.
func (r *renderer) render(e *herald.Event) []byte {
	in := r.info(e)
	b := make([]byte, 0, len(e.Body)+256)
	b = append(b, `{"id":"`...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, `","time":"`...)
	ms := e.TimestampMs
	b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","type":"`...)
	b = append(b, in.typeID...)
	b = append(b, `","source":`...)
	b = jsonscan.AppendString(b, in.resourceType+"/"+in.source)
	b = append(b, `,"datatype":`...)
	b = jsonscan.AppendString(b, e.Entity)
	if in.group != nil {
		b = append(b, `,"stategroupid":"`...)
		b = append(b, in.group.ID...)
		b = append(b, '"')
	}
	b = append(b, `,"data":`...)
	b = append(b, e.Body...)
	return append(b, `,"specversion":"1.0"}`...)
}

// AppendEvents implements wsconn.Renderer: {"events":[…]} with as many of
// the queued events as maxEvents allows, never none. The events' JSON is
// shared; only the brackets and commas are per message.
func (r *renderer) AppendEvents(parts [][]byte, scratch []byte, events []wsconn.Message) ([][]byte, []byte, int) {
	n := min(len(events), r.maxEvents)
	for i := range n {
		start := len(scratch)
		if i == 0 {
			scratch = append(scratch, `{"events":[`...)
		} else {
			scratch = append(scratch, ',')
		}
		parts = append(parts, scratch[start:len(scratch):len(scratch)])
		parts = append(parts, events[i].Event.Rendered(rendering, r.renderFn))
	}
	start := len(scratch)
	scratch = append(scratch, `]}`...)
	return append(parts, scratch[start:len(scratch):len(scratch)]), scratch, n
}

// appendStates renders a getState reply: the states sorted by source,
// then state group, so that equal states give equal bytes.
func (r *renderer) appendStates(dst []byte, commandID int64, states []*herald.Event) []byte {
	type item struct {
		source, group string
		e             *herald.Event
	}
	items := make([]item, 0, len(states))
	for _, e := range states {
		in := r.info(e)
		group := ""
		if in.group != nil {
			group = in.group.ID
		}
		items = append(items, item{in.resourceType + "/" + in.source, group, e})
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].source != items[j].source {
			return items[i].source < items[j].source
		}
		return items[i].group < items[j].group
	})
	dst = appendReplyHead(dst, commandID, 200)
	dst = append(dst, `,"states":[`...)
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it.e.Rendered(rendering, r.renderFn)...)
	}
	return append(dst, "]}"...)
}

// appendReplyHead opens a reply: {"commandId":n,"status":s
func appendReplyHead(dst []byte, commandID int64, status int) []byte {
	dst = append(dst, `{"commandId":`...)
	dst = strconv.AppendInt(dst, commandID, 10)
	dst = append(dst, `,"status":`...)
	return strconv.AppendInt(dst, int64(status), 10)
}

// AppendReply renders a successful reply with one string field, such as
// the sessionId of startSession (field "" for none).
func AppendReply(dst []byte, commandID int64, status int, field, value string) []byte {
	dst = appendReplyHead(dst, commandID, status)
	if field != "" {
		dst = append(dst, ',')
		dst = jsonscan.AppendString(dst, field)
		dst = append(dst, ':')
		dst = jsonscan.AppendString(dst, value)
	}
	return append(dst, '}')
}

// AppendError renders an error reply: {"commandId","status","error":{"errorText"}}.
func AppendError(dst []byte, commandID int64, status int, text string) []byte {
	dst = appendReplyHead(dst, commandID, status)
	dst = append(dst, `,"error":{"errorText":`...)
	dst = jsonscan.AppendString(dst, text)
	return append(dst, "}}"...)
}
