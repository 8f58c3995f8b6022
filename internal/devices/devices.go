// Package devices keeps a node's copy of the registered devices, current
// through the registry's watch, so that the delivery path can read a
// device's name, kind or number without I/O, allocation or waiting.
package devices

import (
	"context"
	"sync"
	"time"

	"github.com/herald-gw/herald"
)

// Directory is the node's copy of every registered device. Lookups take a
// read lock only; a device put in the registry shows up here as soon as
// the watch brings it (normally within milliseconds), and a lookup before
// that finds the device unregistered, which every dialect handles with
// its defaults.
type Directory struct {
	mu       sync.RWMutex
	devices  map[key]herald.Device // guarded by mu
	byNumber map[numberKey]string  // the uuid of each numbered device; guarded by mu
	also     []func(herald.Device)
}

// key is a struct, not a joined string, so that a lookup allocates nothing.
type key struct{ org, uuid string }

type numberKey struct {
	org    string
	number int64
}

// New returns an empty directory. Each of also is passed every device
// put, after the directory has it: an index of its own kept current.
func New(also ...func(herald.Device)) *Directory {
	return &Directory{devices: make(map[key]herald.Device), byNumber: make(map[numberKey]string), also: also}
}

// Put stores d, replacing the device of the same org and uuid, or, for a
// device marked Deleted, forgets it. Of two devices given one number, the
// one put last has it.
func (d *Directory) Put(dev herald.Device) {
	d.mu.Lock()
	k := key{dev.Org, dev.UUID}
	if old, ok := d.devices[k]; ok && old.Number != 0 && d.byNumber[numberKey{old.Org, old.Number}] == old.UUID {
		delete(d.byNumber, numberKey{old.Org, old.Number})
	}
	if dev.Deleted {
		delete(d.devices, k)
	} else {
		d.devices[k] = dev
	}
	if dev.Number != 0 && !dev.Deleted {
		d.byNumber[numberKey{dev.Org, dev.Number}] = dev.UUID
	}
	d.mu.Unlock()
	for _, fn := range d.also {
		fn(dev)
	}
}

// Device returns the device of org with uuid, if it is registered.
func (d *Directory) Device(org, uuid string) (herald.Device, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	dev, ok := d.devices[key{org, uuid}]
	return dev, ok
}

// ByNumber returns the device of org with the numeric id n, if one is
// registered: the channels dialect names devices by number.
func (d *Directory) ByNumber(org string, n int64) (herald.Device, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	uuid, ok := d.byNumber[numberKey{org, n}]
	if !ok {
		return herald.Device{}, false
	}
	return d.devices[key{org, uuid}], true
}

// Number returns the numeric id of a registered device, 0 if it has none
// or is not registered.
func (d *Directory) Number(org, uuid string) int64 {
	if uuid == "" {
		return 0
	}
	dev, _ := d.Device(org, uuid)
	return dev.Number
}

// Follow keeps the directory current with reg until ctx is done: it puts
// every device the watch passes, and watches again after a failure (the
// engine restarting, a lost connection) with a growing pause. ready, if
// not nil, is called once the first watch has passed the devices stored
// when it began. It returns ctx.Err().
func (d *Directory) Follow(ctx context.Context, reg herald.Registry, ready func(), onError func(error)) error {
	pause := 100 * time.Millisecond
	for {
		err := reg.WatchDevices(ctx, d.Put, func() {
			pause = 100 * time.Millisecond
			if ready != nil {
				ready()
				ready = nil
			}
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if onError != nil {
			onError(err)
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return ctx.Err()
		}
		pause = min(2*pause, 10*time.Second)
	}
}
