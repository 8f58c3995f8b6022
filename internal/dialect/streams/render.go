package streams

import (
	"strconv"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/jsonscan"
	"github.com/herald-gw/herald/internal/wsconn"
)

var rendering = herald.NewRendering()

// Directory is what rendering reads of the registry, without I/O: a
// registered device (for its path's name) and an org's name.
type Directory interface {
	Device(org, uuid string) (herald.Device, bool)
	OrgName(org string) string
}

type renderer struct {
	dir      Directory
	idx      *Index
	renderFn func(*herald.Event) []byte
}

func newRenderer(dir Directory, idx *Index) *renderer {
	r := &renderer{dir: dir, idx: idx}
	r.renderFn = r.render
	return r
}

// streamOf is the stream an event belongs to.
func (r *renderer) streamOf(e *herald.Event) (id, path string) {
	orgName := r.dir.OrgName(e.Org)
	id = StreamID(e.Org, e.DeviceUUID, e.Channel)
	if e.DeviceUUID == "" {
		return id, "/" + orgName + "/org/" + e.Channel
	}
	dev, ok := r.dir.Device(e.Org, e.DeviceUUID)
	if !ok {
		dev = herald.Device{UUID: e.DeviceUUID}
		r.idx.remember(e.Org, e.DeviceUUID)
	}
	return id, "/" + orgName + "/devices/" + deviceSegment(dev) + "/" + e.Channel
}

// render is a push as protocols.md §7.4 gives it: the Octave event, with
// herald's canonical event as its elems.
func (r *renderer) render(e *herald.Event) []byte {
	id, path := r.streamOf(e)
	b := make([]byte, 0, len(e.Body)+len(path)+320)
	b = append(b, `{"type":"message","resource":"`...)
	b = append(b, id...)
	b = append(b, `","value":{"id":"e`...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, `","streamId":"`...)
	b = append(b, id...)
	b = append(b, `","path":`...)
	b = jsonscan.AppendString(b, path)
	b = append(b, `,"creationDate":`...)
	b = strconv.AppendInt(b, e.TimestampMs, 10)
	b = append(b, `,"generatedDate":`...)
	b = strconv.AppendInt(b, e.TimestampMs, 10)
	creator := creatorID(e.Org)
	b = append(b, `,"creatorId":"`...)
	b = append(b, creator...)
	b = append(b, `","lastEditDate":`...)
	b = strconv.AppendInt(b, e.TimestampMs, 10)
	b = append(b, `,"lastEditorId":"`...)
	b = append(b, creator...)
	b = append(b, `","elems":`...)
	b = append(b, e.Body...)
	b = append(b, `,"metadata":{},"location":null,"hash":null,"tags":{}}}`...)
	return b
}

// creatorID is the identity herald's events come from: "i" and a stable
// hash of the org's ingest.
func creatorID(org string) string { return "i" + StreamID(org, "", "ingest")[1:] }

// AppendEvents implements wsconn.Renderer: one event per message, as
// Octave pushes them. The event's JSON is shared by every recipient.
func (r *renderer) AppendEvents(parts [][]byte, scratch []byte, events []wsconn.Message) ([][]byte, []byte, int) {
	return append(parts, events[0].Event.Rendered(rendering, r.renderFn)), scratch, 1
}
