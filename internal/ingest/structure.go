package ingest

import (
	"strconv"
	"strings"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/jsonscan"
)

// Two rules about an event's shape, so that every reader of the log reads
// the same event (docs/ingest.md):
//
//   - it nests at most jsonscan.MaxDepth levels, the event object being
//     level 1: every reader of stored events then reads it whole with
//     jsonscan, on the fan-out path, without allocating;
//   - no object in it, nested or not, repeats a name after unescaping
//     ("a" and "\u0061" are the same name; "a" and "A" are not):
//     encoding/json keeps the last of repeated names and a scanner the
//     first, so a repeated name means whatever the reader makes of it.

// smallObject is the most names an object may hold before keyTracker
// looks them up in a set rather than comparing them one by one.
const smallObject = 8

// keyTracker finds a repeated name in the objects of one event, in
// O(names) time: it compares each name with the others of its object
// while there are few, and uses a set beyond smallObject.
type keyTracker struct {
	names  []string // names of the open objects, innermost last
	frames []keyFrame
	sets   []map[string]struct{} // one per nesting level, reused from event to event
}

type keyFrame struct {
	start int                 // its first name in names
	set   map[string]struct{} // its names, once it has more than smallObject
}

func (k *keyTracker) reset() {
	k.names, k.frames = k.names[:0], k.frames[:0]
}

// open starts an object.
func (k *keyTracker) open() { k.frames = append(k.frames, keyFrame{start: len(k.names)}) }

// close ends the innermost object.
func (k *keyTracker) close() {
	f := k.frames[len(k.frames)-1]
	k.names, k.frames = k.names[:f.start], k.frames[:len(k.frames)-1]
}

// add records a name of the innermost object, reporting false if the
// object already has it.
func (k *keyTracker) add(name string) bool {
	f := &k.frames[len(k.frames)-1]
	if f.set != nil {
		if _, repeated := f.set[name]; repeated {
			return false
		}
		f.set[name] = struct{}{}
		return true
	}
	for _, seen := range k.names[f.start:] {
		if seen == name {
			return false
		}
	}
	k.names = append(k.names, name)
	if len(k.names)-f.start > smallObject {
		level := len(k.frames) - 1
		for len(k.sets) <= level {
			k.sets = append(k.sets, map[string]struct{}{})
		}
		f.set = k.sets[level]
		clear(f.set)
		for _, seen := range k.names[f.start:] {
			f.set[seen] = struct{}{}
		}
	}
	return true
}

// checkStructure returns an error naming the first value of the event raw
// (a valid JSON object) nested deeper than jsonscan.MaxDepth, or the first
// repeated name; nil if there is neither.
func checkStructure(raw []byte) *herald.Error {
	var keys keyTracker
	var path []pathLevel // the open containers; path[0] is the event
	// childLabel is how the next value of the innermost container is reached.
	childLabel := func() string {
		l := &path[len(path)-1]
		if l.object {
			return l.member
		}
		l.items++
		return "[" + strconv.Itoa(l.items-1) + "]"
	}
	s := jsonscan.NewScanner(raw, 0)
	for t, ok := s.Next(); ok; t, ok = s.Next() {
		switch t.Kind {
		case jsonscan.ObjectStart, jsonscan.ArrayStart:
			label := ""
			if len(path) > 0 {
				label = childLabel()
			}
			object := t.Kind == jsonscan.ObjectStart
			path = append(path, pathLevel{label: label, object: object})
			if object {
				keys.open()
			}
		case jsonscan.ObjectEnd, jsonscan.ArrayEnd:
			if path[len(path)-1].object {
				keys.close()
			}
			path = path[:len(path)-1]
		case jsonscan.Key:
			name := jsonscan.Unquote(raw[t.Start+1 : t.End-1])
			path[len(path)-1].member = name
			if !keys.add(name) {
				if len(path) == 1 {
					return fieldError(name, "appears twice in the event: a name may appear once in each object")
				}
				return fieldError(path[1].label, describePath(labels(path[1:]))+" holds the name "+herald.QuoteStart(name)+
					" twice: a name may appear once in each object")
			}
		default:
			if len(path) > 0 && !path[len(path)-1].object {
				childLabel()
			}
		}
	}
	if s.Err() == jsonscan.ErrDepth {
		// The value at s.Pos() would open level MaxDepth+1.
		where := append(labels(path[1:]), childLabel())
		return fieldError(where[0], describePath(where)+" nests deeper than "+strconv.Itoa(jsonscan.MaxDepth)+
			" levels (the event object being level 1); herald takes at most "+strconv.Itoa(jsonscan.MaxDepth))
	}
	return nil
}

// pathLevel is one open container on the way to a value.
type pathLevel struct {
	label  string // how the container was reached: a name, or "[n]"
	object bool
	items  int    // elements read so far, in an array
	member string // the name being read, in an object
}

func labels(path []pathLevel) []string {
	out := make([]string, len(path))
	for i, l := range path {
		out[i] = l.label
	}
	return out
}

// describePath writes a path of labels as a reader would: names joined
// with dots, indexes after them ("metadata.x[0][1]"), cut after a few
// steps.
func describePath(path []string) string {
	const most = 6
	var b strings.Builder
	for i, p := range path {
		if i == most {
			b.WriteString("…")
			break
		}
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}
