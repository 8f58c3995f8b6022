package ess

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"sync"
)

// EventType is an ess event type: the GUID a subscription names and a
// pushed event carries in "type", for a herald entity name.
type EventType struct {
	ID          string // lower-case GUID
	Entity      string // herald's entity name, e.g. MOTION_STARTED
	DisplayName string
	// StateGroup is the state group of a stateful type, nil otherwise;
	// State is the name of the state an event of the type puts its source
	// in ("Motion", "No motion").
	StateGroup *StateGroup
	State      string
}

// StateGroup is a set of event types of which the newest, per source,
// is the source's state in the group (Motion: started or stopped).
type StateGroup struct {
	ID          string // lower-case GUID
	Name        string
	DisplayName string
	Types       []*EventType // its event types, in the order they are listed
}

// The state groups herald knows. Their GUIDs are name-based (NameGUID),
// so they are the same on every node and every installation.
var (
	groupMotion        = newGroup("Motion", "Motion")
	groupRecording     = newGroup("Recording", "Recording")
	groupCommunication = newGroup("Communication", "Communication")
	groupOutput        = newGroup("Output", "Output")
	groupInput         = newGroup("Input", "Input")
)

// wellKnown are the vendor's event types (their GUIDs are the ones its
// samples subscribe with) and herald's input pair (name-based GUIDs).
var wellKnown = []*EventType{
	{ID: "6eb95dd6-7ccc-4bce-99f8-af0d0b582d77", Entity: "MOTION_STARTED", DisplayName: "Motion Started", StateGroup: groupMotion, State: "Motion"},
	{ID: "6f55a7a7-d21c-4629-ac18-af1975e395a2", Entity: "MOTION_STOPPED", DisplayName: "Motion Stopped", StateGroup: groupMotion, State: "No motion"},
	{ID: "4577f552-765a-438c-bc7d-e5ff1f754bc3", Entity: "RECORDING_STARTED", DisplayName: "Recording Started", StateGroup: groupRecording, State: "Recording"},
	{ID: "79a94f89-92de-4fca-8a43-5561d407423d", Entity: "RECORDING_STOPPED", DisplayName: "Recording Stopped", StateGroup: groupRecording, State: "Not recording"},
	{ID: "dd3e6464-7dc0-405a-a92f-6150587563e8", Entity: "COMMUNICATION_STARTED", DisplayName: "Communication Started", StateGroup: groupCommunication, State: "Responding"},
	{ID: "0ee90664-2924-42a0-a816-4129d0ecabdc", Entity: "COMMUNICATION_STOPPED", DisplayName: "Communication Stopped", StateGroup: groupCommunication, State: "Not responding"},
	{ID: "a334af1c-4b4b-4957-9e5f-ab8ca07feab6", Entity: "COMMUNICATION_ERROR", DisplayName: "Communication Error", StateGroup: groupCommunication, State: "Communication error"},
	{ID: "7a78f5bb-d8c3-4997-89b7-cae72713b7db", Entity: "OUTPUT_ACTIVATED", DisplayName: "Output Activated", StateGroup: groupOutput, State: "Activated"},
	{ID: "35742498-bcc5-4f0a-9800-827c9388d1cd", Entity: "OUTPUT_DEACTIVATED", DisplayName: "Output Deactivated", StateGroup: groupOutput, State: "Deactivated"},
	{ID: NameGUID("event type", "INPUT_ACTIVATED"), Entity: "INPUT_ACTIVATED", DisplayName: "Input Activated", StateGroup: groupInput, State: "Activated"},
	{ID: NameGUID("event type", "INPUT_DEACTIVATED"), Entity: "INPUT_DEACTIVATED", DisplayName: "Input Deactivated", StateGroup: groupInput, State: "Deactivated"},
}

var (
	typesByEntity = map[string]*EventType{}
	typesByID     = map[string]*EventType{}
	groupsByID    = map[string]*StateGroup{}
	// StatefulEntities are the entity names of every stateful type: what
	// getState reads from the state view.
	StatefulEntities []string
)

func init() {
	for _, t := range wellKnown {
		typesByEntity[t.Entity] = t
		typesByID[t.ID] = t
		t.StateGroup.Types = append(t.StateGroup.Types, t)
		groupsByID[t.StateGroup.ID] = t.StateGroup
		StatefulEntities = append(StatefulEntities, t.Entity)
	}
}

func newGroup(name, display string) *StateGroup {
	return &StateGroup{ID: NameGUID("state group", name), Name: name, DisplayName: display}
}

// NameGUID returns the name-based GUID (RFC 9562 version 5, SHA-1) of
// name in one of herald's namespaces ("event type", "state group"): the
// same name always gives the same GUID.
func NameGUID(namespace, name string) string {
	sum := sha1.Sum([]byte("herald ess " + namespace + "\x00" + name))
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], sum[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], sum[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], sum[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], sum[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], sum[10:16])
	return string(b[:])
}

// TypeOfEntity returns the event type of a herald entity: a well-known
// one, or a stateless type with the entity's name-based GUID.
func TypeOfEntity(entity string) *EventType {
	if t := typesByEntity[entity]; t != nil {
		return t
	}
	return &EventType{ID: NameGUID("event type", entity), Entity: entity, DisplayName: displayName(entity)}
}

// TypeGUID returns the GUID of entity's event type without allocating
// for a well-known one.
func TypeGUID(entity string) string {
	if t := typesByEntity[entity]; t != nil {
		return t.ID
	}
	return NameGUID("event type", entity)
}

// LookupStateGroup returns the state group with the given GUID (any
// case), or nil.
func LookupStateGroup(id string) *StateGroup { return groupsByID[strings.ToLower(id)] }

// StateGroupOf returns the state group of entity, nil for a stateless one.
func StateGroupOf(entity string) *StateGroup {
	if t := typesByEntity[entity]; t != nil {
		return t.StateGroup
	}
	return nil
}

// displayName turns MOTION_STARTED into "Motion Started".
func displayName(entity string) string {
	words := strings.FieldsFunc(strings.ToLower(entity), func(r rune) bool { return r == '_' || r == '-' || r == ' ' })
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// Resource types of the sources herald renders (the vendor's names).
const (
	ResourceCameras     = "cameras"
	ResourceMicrophones = "microphones"
	ResourceInputs      = "inputEvents"
	ResourceOutputs     = "outputs"
	ResourceHardware    = "hardware"
)

// ResourceType is the resource type of a source: from the registered
// device's kind, or, for a device herald does not know (kind ""), from
// the entity (motion and recording come from cameras, output and input
// events from outputs and inputs), else hardware.
func ResourceType(kind, entity string) string {
	switch strings.ToLower(kind) {
	case "camera":
		return ResourceCameras
	case "microphone":
		return ResourceMicrophones
	case "input":
		return ResourceInputs
	case "output":
		return ResourceOutputs
	case "":
		switch {
		case strings.HasPrefix(entity, "MOTION_"), strings.HasPrefix(entity, "RECORDING_"):
			return ResourceCameras
		case strings.HasPrefix(entity, "OUTPUT_"):
			return ResourceOutputs
		case strings.HasPrefix(entity, "INPUT_"):
			return ResourceInputs
		}
	}
	return ResourceHardware
}

// KindsOf returns the device kinds whose resource type is resourceType
// (any case), for the REST lookup of a source; ok is false for a
// resource type herald never renders.
func KindsOf(resourceType string) (kinds []string, ok bool) {
	switch strings.ToLower(resourceType) {
	case "cameras":
		return []string{"camera"}, true
	case "microphones":
		return []string{"microphone"}, true
	case "inputevents":
		return []string{"input"}, true
	case "outputs":
		return []string{"output"}, true
	case "hardware":
		return nil, true // any other kind
	}
	return nil, false
}

// LookupType returns the event type with the given GUID (any case) for
// org: a well-known one, or one Learn has seen for org; nil if none.
func LookupType(org, id string) *EventType {
	id = strings.ToLower(id)
	if t := typesByID[id]; t != nil {
		return t
	}
	learned.Lock()
	defer learned.Unlock()
	if o := learned.orgs[org]; o != nil {
		return o.byID[id]
	}
	return nil
}

// learned are the name-based types this node has rendered, per org, so
// that the REST lookup can name them to that org (a name-based GUID cannot
// be turned back into its name, and one org's entity names are not
// another's business). Bounded per org, the oldest forgotten first, and
// in the number of orgs: past maxLearnedOrgs a new org learns nothing and
// its custom types go unnamed (rendering does not need the registry).
var learned = struct {
	sync.Mutex
	orgs map[string]*learnedTypes
}{orgs: map[string]*learnedTypes{}}

type learnedTypes struct {
	byID  map[string]*EventType
	order []string
}

const (
	maxLearnedPerOrg = 1024
	maxLearnedOrgs   = 10000
)

// Learn returns the event type of entity, and remembers a name-based one
// for org's LookupType.
func Learn(org, entity string) *EventType {
	if t := typesByEntity[entity]; t != nil {
		return t
	}
	id := NameGUID("event type", entity)
	learned.Lock()
	defer learned.Unlock()
	o := learned.orgs[org]
	if o == nil {
		if len(learned.orgs) >= maxLearnedOrgs {
			return &EventType{ID: id, Entity: entity, DisplayName: displayName(entity)}
		}
		o = &learnedTypes{byID: map[string]*EventType{}}
		learned.orgs[org] = o
	}
	if t := o.byID[id]; t != nil {
		return t
	}
	t := &EventType{ID: id, Entity: entity, DisplayName: displayName(entity)}
	if len(o.order) >= maxLearnedPerOrg {
		delete(o.byID, o.order[0])
		o.order = o.order[1:]
	}
	o.byID[id] = t
	o.order = append(o.order, id)
	return t
}

// KnownTypes returns the well-known event types and those learned for org.
func KnownTypes(org string) []*EventType {
	list := append([]*EventType(nil), wellKnown...)
	learned.Lock()
	defer learned.Unlock()
	if o := learned.orgs[org]; o != nil {
		for _, id := range o.order {
			list = append(list, o.byID[id])
		}
	}
	return list
}

// StateGroups returns the state groups, in the order of their types.
func StateGroups() []*StateGroup {
	var list []*StateGroup
	for _, t := range wellKnown {
		if len(list) == 0 || list[len(list)-1] != t.StateGroup {
			list = append(list, t.StateGroup)
		}
	}
	return list
}
