package inmem

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/herald-gw/herald"
)

// scoped names a thing of one org.
type scoped struct{ org, name string }

// revisioned is a stored device and the order it was put in.
type revisioned struct {
	device   herald.Device
	revision uint64
}

// watcher is one watch: what was put since it last looked, guarded by
// Engine.mu, and a wake-up with room for one signal.
type watcher[T any] struct {
	pending []T
	wake    chan struct{}
}

func newWatcher[T any]() *watcher[T] { return &watcher[T]{wake: make(chan struct{}, 1)} }

// pushLocked hands v to the watch; Engine.mu is held.
func (w *watcher[T]) pushLocked(v T) {
	w.pending = append(w.pending, v)
	select {
	case w.wake <- struct{}{}:
	default: // already signalled; it will find this one too
	}
}

// run passes what is pushed to fn until ctx is done; then it unregisters
// the watch with forget, under Engine.mu.
func (w *watcher[T]) run(ctx context.Context, e *Engine, fn func(T), forget func()) error {
	defer func() {
		e.mu.Lock()
		forget()
		e.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.wake:
		}
		e.mu.Lock()
		pushed := w.pending
		w.pending = nil
		e.mu.Unlock()
		for _, v := range pushed {
			fn(v)
		}
	}
}

// PutOrg stores org under its uuid, replacing any previous version.
func (e *Engine) PutOrg(ctx context.Context, org herald.Org) error {
	if err := checkOrg(org.UUID); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.orgs[org.UUID] = org
	return nil
}

// Org returns the org with the given uuid.
func (e *Engine) Org(ctx context.Context, uuid string) (herald.Org, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	org, ok := e.orgs[uuid]
	if !ok {
		return org, herald.Errorf(herald.ENOTFOUND, "org %q not found", uuid)
	}
	return org, nil
}

// Orgs returns every org, sorted by uuid.
func (e *Engine) Orgs(ctx context.Context) ([]herald.Org, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var orgs []herald.Org
	for _, org := range e.orgs {
		orgs = append(orgs, org)
	}
	slices.SortFunc(orgs, func(a, b herald.Org) int { return strings.Compare(a.UUID, b.UUID) })
	return orgs, nil
}

// PutAPIKey stores key under its hash, replacing any previous version.
func (e *Engine) PutAPIKey(ctx context.Context, key herald.APIKey) error {
	if !isHex(key.Hash) {
		return herald.Errorf(herald.EINVALID, "inmem: API key hash must be hex")
	}
	if err := checkOrg(key.Org); err != nil {
		return err
	}
	key.Scopes = slices.Clone(key.Scopes)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apiKeys[key.Hash] = key
	if !slices.Contains(key.Scopes, herald.ScopeSubscribe) {
		e.revokeLocked(herald.Revocation{Credential: herald.KeyCredential(key.Hash)})
	}
	return nil
}

// APIKey returns the API key with the given hash.
func (e *Engine) APIKey(ctx context.Context, hash string) (herald.APIKey, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key, ok := e.apiKeys[hash]
	if !ok {
		return key, herald.Errorf(herald.ENOTFOUND, "API key not found")
	}
	key.Scopes = slices.Clone(key.Scopes)
	return key, nil
}

// PutUser stores user under its org and name, replacing any previous version.
func (e *Engine) PutUser(ctx context.Context, user herald.User) error {
	if err := checkOrg(user.Org); err != nil {
		return err
	}
	if user.Name == "" || len(user.Name) > herald.MaxNameBytes {
		return herald.Errorf(herald.EINVALID, "inmem: a user's name must have 1 to %d bytes", herald.MaxNameBytes)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users[scoped{user.Org, user.Name}] = user
	return nil
}

// User returns the user of org with the given name.
func (e *Engine) User(ctx context.Context, org, name string) (herald.User, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	user, ok := e.users[scoped{org, name}]
	if !ok {
		return user, herald.Errorf(herald.ENOTFOUND, "user %q not found", name)
	}
	return user, nil
}

// PutDevice stores device under its org and uuid, replacing any previous
// version, and hands it to every WatchDevices.
func (e *Engine) PutDevice(ctx context.Context, device herald.Device) error {
	if err := checkOrg(device.Org); err != nil {
		return err
	}
	if device.UUID == "" || len(device.UUID) > herald.MaxNameBytes {
		return herald.Errorf(herald.EINVALID, "inmem: a device's uuid must have 1 to %d bytes", herald.MaxNameBytes)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deviceRevision++
	e.devices[scoped{device.Org, device.UUID}] = revisioned{device, e.deviceRevision}
	for w := range e.watchers {
		w.pushLocked(device)
	}
	return nil
}

// Device returns the device of org with the given uuid.
func (e *Engine) Device(ctx context.Context, org, uuid string) (herald.Device, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	stored, ok := e.devices[scoped{org, uuid}]
	if !ok {
		return herald.Device{}, herald.Errorf(herald.ENOTFOUND, "device %q not found", uuid)
	}
	return stored.device, nil
}

// Devices returns every device of org, sorted by uuid.
func (e *Engine) Devices(ctx context.Context, org string) ([]herald.Device, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var devices []herald.Device
	for key, stored := range e.devices {
		if key.org == org {
			devices = append(devices, stored.device)
		}
	}
	slices.SortFunc(devices, func(a, b herald.Device) int { return strings.Compare(a.UUID, b.UUID) })
	return devices, nil
}

// WatchDevices passes every stored device, in the order they were put,
// then each one put later, to fn (see herald.Registry). Every put reaches
// fn, however slow fn is: the watcher queues them.
func (e *Engine) WatchDevices(ctx context.Context, fn func(herald.Device), ready func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := newWatcher[herald.Device]()
	e.mu.Lock()
	initial := make([]revisioned, 0, len(e.devices))
	for _, stored := range e.devices {
		initial = append(initial, stored)
	}
	e.watchers[w] = struct{}{}
	e.mu.Unlock()
	slices.SortFunc(initial, func(a, b revisioned) int { return cmp.Compare(a.revision, b.revision) })
	for _, stored := range initial {
		fn(stored.device)
	}
	if ready != nil {
		ready()
	}
	return w.run(ctx, e, fn, func() { delete(e.watchers, w) })
}

// Setting returns the value of the named setting.
func (e *Engine) Setting(ctx context.Context, name string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	value, ok := e.settings[name]
	if !ok {
		return "", herald.Errorf(herald.ENOTFOUND, "setting %q not found", name)
	}
	return value, nil
}

// PutSetting stores the named setting, replacing any previous value.
func (e *Engine) PutSetting(ctx context.Context, name, value string) error {
	if name == "" || len(name) > herald.MaxNameBytes {
		return herald.Errorf(herald.EINVALID, "inmem: a setting's name must have 1 to %d bytes", herald.MaxNameBytes)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings[name] = value
	return nil
}

// CreateSetting stores the named setting unless it exists, and returns
// the value it holds.
func (e *Engine) CreateSetting(ctx context.Context, name, value string) (string, error) {
	if name == "" || len(name) > herald.MaxNameBytes {
		return "", herald.Errorf(herald.EINVALID, "inmem: a setting's name must have 1 to %d bytes", herald.MaxNameBytes)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.settings[name]; ok {
		return old, nil
	}
	e.settings[name] = value
	return value, nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// DeleteOrg deletes the org with the given uuid (not its keys, users or
// devices).
func (e *Engine) DeleteOrg(ctx context.Context, uuid string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.orgs[uuid]; !ok {
		return herald.Errorf(herald.ENOTFOUND, "org %q not found", uuid)
	}
	delete(e.orgs, uuid)
	e.revokeLocked(herald.Revocation{Org: uuid})
	return nil
}

// APIKeys returns every API key of org, sorted by name, then hash.
func (e *Engine) APIKeys(ctx context.Context, org string) ([]herald.APIKey, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var keys []herald.APIKey
	for _, key := range e.apiKeys {
		if key.Org == org {
			key.Scopes = slices.Clone(key.Scopes)
			keys = append(keys, key)
		}
	}
	slices.SortFunc(keys, func(a, b herald.APIKey) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Hash, b.Hash))
	})
	return keys, nil
}

// DeleteAPIKey deletes the API key with the given hash.
func (e *Engine) DeleteAPIKey(ctx context.Context, hash string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.apiKeys[hash]; !ok {
		return herald.Errorf(herald.ENOTFOUND, "API key not found")
	}
	delete(e.apiKeys, hash)
	e.revokeLocked(herald.Revocation{Credential: herald.KeyCredential(hash)})
	return nil
}

// Users returns every user of org, sorted by name.
func (e *Engine) Users(ctx context.Context, org string) ([]herald.User, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var users []herald.User
	for key, user := range e.users {
		if key.org == org {
			users = append(users, user)
		}
	}
	slices.SortFunc(users, func(a, b herald.User) int { return strings.Compare(a.Name, b.Name) })
	return users, nil
}

// DeleteUser deletes the user of org with the given name.
func (e *Engine) DeleteUser(ctx context.Context, org, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.users[scoped{org, name}]; !ok {
		return herald.Errorf(herald.ENOTFOUND, "user %q not found", name)
	}
	delete(e.users, scoped{org, name})
	e.revokeLocked(herald.Revocation{Org: org, Credential: herald.UserCredential(name)})
	return nil
}

// DeleteDevice deletes the device of org with the given uuid.
func (e *Engine) DeleteDevice(ctx context.Context, org, uuid string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.devices[scoped{org, uuid}]; !ok {
		return herald.Errorf(herald.ENOTFOUND, "device %q not found", uuid)
	}
	delete(e.devices, scoped{org, uuid})
	for w := range e.watchers {
		w.pushLocked(herald.Device{Org: org, UUID: uuid, Deleted: true})
	}
	return nil
}

func (e *Engine) revokeLocked(r herald.Revocation) {
	for w := range e.revokers {
		w.pushLocked(r)
	}
}

// WatchRevocations passes every revocation from now on to fn (see
// herald.Registry).
func (e *Engine) WatchRevocations(ctx context.Context, fn func(herald.Revocation), ready func()) error {
	w := newWatcher[herald.Revocation]()
	e.mu.Lock()
	e.revokers[w] = struct{}{}
	e.mu.Unlock()
	if ready != nil {
		ready()
	}
	return w.run(ctx, e, fn, func() { delete(e.revokers, w) })
}
