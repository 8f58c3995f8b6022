package streams

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	"github.com/herald-gw/herald"
)

// Channels are the channels every device has a stream for, in the order
// GET /api/streams lists them.
var Channels = []string{herald.ChannelAlerts, herald.ChannelTelemetry, herald.ChannelDevices, herald.ChannelSystem, herald.ChannelEvents}

// StreamID is the stable id of the stream of org's device (or, device "",
// of the org itself) and channel: "s" and 24 hex digits, as Octave's ids
// look, the first 16 a hash of the org and device, the last 8 of the
// channel, so that an Index finds a stream from one entry per device. It
// is the same on every node.
func StreamID(org, device, channel string) string {
	d, c := deviceHash(org, device), [4]byte{}
	if i := slices.Index(Channels, channel); i >= 0 {
		c = channelHashes[i] // the common case, without hashing
	} else {
		c = channelHash(channel)
	}
	return "s" + hex.EncodeToString(d[:]) + hex.EncodeToString(c[:])
}

func deviceHash(org, device string) (h [8]byte) {
	sum := sha256.Sum256([]byte(org + "\x00" + device))
	copy(h[:], sum[:])
	return h
}

func channelHash(channel string) (h [4]byte) {
	sum := sha256.Sum256([]byte(channel))
	copy(h[:], sum[:])
	return h
}

// channelHashes are the channel parts of stream ids, in Channels' order.
var channelHashes = func() [][4]byte {
	hs := make([][4]byte, len(Channels))
	for i, ch := range Channels {
		hs[i] = channelHash(ch)
	}
	return hs
}()

// Stream is one stream of an org.
type Stream struct {
	ID      string `json:"id"`
	Path    string `json:"path"`
	Device  string `json:"deviceUuid,omitempty"` // "" for the org's own stream
	Channel string `json:"channel"`
}

// deviceSegment is how a path names a device: its registered name when
// that can be a path segment, else its uuid.
func deviceSegment(dev herald.Device) string {
	if dev.Name != "" && !strings.Contains(dev.Name, "/") {
		return dev.Name
	}
	return dev.UUID
}

// StreamsOf lists org's streams: one per channel of each registered device
// (path /{org}/devices/{device}/{channel}) and of the org itself, for
// events without a device (path /{org}/org/{channel}).
func StreamsOf(orgName, org string, devices []herald.Device) []Stream {
	list := make([]Stream, 0, (len(devices)+1)*len(Channels))
	for _, dev := range devices {
		for _, ch := range Channels {
			list = append(list, Stream{ID: StreamID(org, dev.UUID, ch), Path: "/" + orgName + "/devices/" + deviceSegment(dev) + "/" + ch, Device: dev.UUID, Channel: ch})
		}
	}
	for _, ch := range Channels {
		list = append(list, Stream{ID: StreamID(org, "", ch), Path: "/" + orgName + "/org/" + ch, Channel: ch})
	}
	return list
}

// Target is what one subscription covers.
type Target struct {
	Scope   scope
	Device  string // the device uuid, for ScopeDevice and ScopeStream with a device
	Channel string // for ScopeStream and ScopeOrgStream
}

type scope uint8

const (
	ScopeAll       scope = iota // /{org}: every stream of the org
	ScopeDevices                // /{org}/devices: every device's streams
	ScopeDevice                 // /{org}/devices/{device}: one device's streams
	ScopeStream                 // one device's channel
	ScopeOrg                    // /{org}/org: the org's own streams
	ScopeOrgStream              // /{org}/org/{channel}
)

// Covers reports whether the target covers the event of device and channel.
func (t Target) Covers(device, channel string) bool {
	switch t.Scope {
	case ScopeAll:
		return true
	case ScopeDevices:
		return device != ""
	case ScopeDevice:
		return device != "" && device == t.Device
	case ScopeStream:
		return device != "" && device == t.Device && channel == t.Channel
	case ScopeOrg:
		return device == ""
	case ScopeOrgStream:
		return device == "" && channel == t.Channel
	}
	return false
}

func isChannel(s string) bool {
	for _, ch := range Channels {
		if s == ch {
			return true
		}
	}
	return false
}

// ParsePath resolves a subscription path of org (named orgName): the org
// segment is its name or uuid, a device segment a registered device's
// uuid or name or any device's uuid. registered reports whether the
// device was found in idx (a path may name a device that has not
// registered: its events reach the stream all the same). Another org's
// path is refused exactly like an unknown one.
func ParsePath(path, orgName, org string, idx *Index) (t Target, registered bool, err error) {
	unknown := &BadMessage{Reason: "no stream has the path " + quote(path)}
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return t, false, &BadMessage{Reason: "a path starts with /, as /" + orgName + "/devices/{device}/{channel}"}
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if parts[0] != orgName && !strings.EqualFold(parts[0], org) {
		return t, false, unknown
	}
	switch {
	case len(parts) == 1:
		return Target{Scope: ScopeAll}, true, nil
	case parts[1] == "org" && len(parts) == 2:
		return Target{Scope: ScopeOrg}, true, nil
	case parts[1] == "org" && len(parts) == 3 && isChannel(parts[2]):
		return Target{Scope: ScopeOrgStream, Channel: parts[2]}, true, nil
	case parts[1] != "devices" || len(parts) > 4:
		return t, false, unknown
	case len(parts) == 2:
		return Target{Scope: ScopeDevices}, true, nil
	case parts[2] == "" || len(parts) == 4 && !isChannel(parts[3]):
		return t, false, unknown
	}
	device, registered, err := idx.device(org, parts[2])
	if err != nil {
		return t, false, err
	}
	if len(parts) == 3 {
		return Target{Scope: ScopeDevice, Device: device}, registered, nil
	}
	return Target{Scope: ScopeStream, Device: device, Channel: parts[3]}, registered, nil
}

// Index finds streams by id and devices by name, in memory: it is kept
// current with the registry by Put (the node's device watch) and learns
// the streams of unregistered devices from the events rendered. Each
// lookup is a map read, whatever the size of the org.
type Index struct {
	mu     sync.RWMutex
	byHash map[[8]byte]devKey            // deviceHash -> the registered device; guarded by mu
	names  map[devKey]map[string]bool    // org, name -> the uuids of that name; guarded by mu
	named  map[devKey]string             // org, uuid -> its name now; guarded by mu
	seen   map[string]map[[8]byte]string // org -> deviceHash -> uuid of unregistered devices rendered; guarded by mu
	nSeen  int                           // entries in seen; guarded by mu
}

type devKey struct{ org, key string }

// maxSeen bounds the streams of unregistered devices an Index remembers;
// past it, their ids are not found (their paths still work).
const maxSeen = 100_000

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{byHash: map[[8]byte]devKey{}, names: map[devKey]map[string]bool{},
		named: map[devKey]string{}, seen: map[string]map[[8]byte]string{}}
}

// Put records a registered device, replacing its earlier version, or
// forgets one marked Deleted.
func (x *Index) Put(dev herald.Device) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.byHash[deviceHash(dev.Org, dev.UUID)] = devKey{dev.Org, dev.UUID}
	k := devKey{dev.Org, dev.UUID}
	if old, ok := x.named[k]; ok {
		if uuids := x.names[devKey{dev.Org, old}]; uuids != nil {
			delete(uuids, dev.UUID)
			if len(uuids) == 0 {
				delete(x.names, devKey{dev.Org, old})
			}
		}
		delete(x.named, k)
	}
	if dev.Deleted {
		delete(x.byHash, deviceHash(dev.Org, dev.UUID))
		return
	}
	if dev.Name != "" {
		nk := devKey{dev.Org, dev.Name}
		if x.names[nk] == nil {
			x.names[nk] = map[string]bool{}
		}
		x.names[nk][dev.UUID] = true
		x.named[k] = dev.Name
	}
}

// device finds the device a path segment names: a registered device's
// uuid or name, else the segment is taken as an unregistered device's uuid.
func (x *Index) device(org, segment string) (uuid string, registered bool, err error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if k, ok := x.byHash[deviceHash(org, segment)]; ok && k == (devKey{org, segment}) {
		return segment, true, nil
	}
	uuids := x.names[devKey{org, segment}]
	switch len(uuids) {
	case 0:
		return segment, false, nil
	case 1:
		for uuid := range uuids {
			return uuid, true, nil
		}
	}
	return "", false, &BadMessage{Reason: quote(segment) + " names several devices: use the device's uuid in the path"}
}

// Find resolves a stream id of org: a registered device's stream, the
// org's own, or the stream of an unregistered device this index has
// rendered an event of. Another org's id is not found.
func (x *Index) Find(org, id string) (Target, bool) {
	var d [8]byte
	var c [4]byte
	if len(id) != 25 || id[0] != 's' {
		return Target{}, false
	}
	if _, err := hex.Decode(d[:], []byte(id[1:17])); err != nil {
		return Target{}, false
	}
	if _, err := hex.Decode(c[:], []byte(id[17:])); err != nil {
		return Target{}, false
	}
	i := slices.Index(channelHashes, c)
	if i < 0 {
		return Target{}, false
	}
	channel := Channels[i]
	if d == deviceHash(org, "") {
		return Target{Scope: ScopeOrgStream, Channel: channel}, true
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if k, ok := x.byHash[d]; ok && k.org == org {
		return Target{Scope: ScopeStream, Device: k.key, Channel: channel}, true
	}
	if uuid, ok := x.seen[org][d]; ok {
		return Target{Scope: ScopeStream, Device: uuid, Channel: channel}, true
	}
	return Target{}, false
}

// remember records the stream of an unregistered device, so that its id
// can be subscribed to.
func (x *Index) remember(org, uuid string) {
	h := deviceHash(org, uuid)
	x.mu.RLock()
	_, known := x.seen[org][h]
	x.mu.RUnlock()
	if known {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.nSeen >= maxSeen {
		return
	}
	m := x.seen[org]
	if m == nil {
		m = map[[8]byte]string{}
		x.seen[org] = m
	}
	if _, ok := m[h]; !ok {
		m[h] = uuid
		x.nSeen++
	}
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + s + `"`
}
