package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

// Registry keys. A KV key may hold only [-/_=.a-zA-Z0-9] and "." splits
// it into tokens, so free-form names are base64url-encoded (injective,
// no dots) and scoped keys are "{org}.{encoded}": one org's entries are
// then exactly the keys matching "{org}.*".

func encodeKey(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func scopedKey(org, name string) string { return org + "." + encodeKey(name) }

// parseScopedKey undoes scopedKey; ok is false for a key it did not make.
func parseScopedKey(key string) (org, name string, ok bool) {
	org, encoded, found := strings.Cut(key, ".")
	decoded, err := base64.RawURLEncoding.DecodeString(encoded)
	return org, string(decoded), found && err == nil
}

// PutOrg stores org under its uuid, replacing any previous version.
func (e *Engine) PutOrg(ctx context.Context, org herald.Org) error {
	if err := checkOrg(org.UUID); err != nil {
		return err
	}
	return e.put(ctx, e.orgs, org.UUID, org)
}

// Org returns the org with the given uuid.
func (e *Engine) Org(ctx context.Context, uuid string) (herald.Org, error) {
	var org herald.Org
	if checkOrg(uuid) != nil {
		return org, herald.Errorf(herald.ENOTFOUND, "org %q not found", uuid)
	}
	return org, e.get(ctx, e.orgs, uuid, "org "+uuid, &org)
}

// Orgs returns every org, sorted by uuid.
func (e *Engine) Orgs(ctx context.Context) ([]herald.Org, error) {
	orgs, err := list[herald.Org](ctx, e.orgs, ">")
	slices.SortFunc(orgs, func(a, b herald.Org) int { return strings.Compare(a.UUID, b.UUID) })
	return orgs, err
}

// PutAPIKey stores key under its hash, replacing any previous version.
func (e *Engine) PutAPIKey(ctx context.Context, key herald.APIKey) error {
	if !isHex(key.Hash) {
		return herald.Errorf(herald.EINVALID, "engine: API key hash must be hex")
	}
	if err := checkOrg(key.Org); err != nil {
		return err
	}
	return e.put(ctx, e.keys, key.Hash, key)
}

// APIKey returns the API key with the given hash.
func (e *Engine) APIKey(ctx context.Context, hash string) (herald.APIKey, error) {
	var key herald.APIKey
	if !isHex(hash) {
		return key, herald.Errorf(herald.ENOTFOUND, "API key not found")
	}
	return key, e.get(ctx, e.keys, hash, "API key", &key)
}

// PutUser stores user under its org and name, replacing any previous version.
func (e *Engine) PutUser(ctx context.Context, user herald.User) error {
	if err := checkOrg(user.Org); err != nil {
		return err
	}
	if user.Name == "" || len(user.Name) > herald.MaxNameBytes {
		return herald.Errorf(herald.EINVALID, "engine: a user's name must have 1 to %d bytes", herald.MaxNameBytes)
	}
	return e.put(ctx, e.users, scopedKey(user.Org, user.Name), user)
}

// User returns the user of org with the given name.
func (e *Engine) User(ctx context.Context, org, name string) (herald.User, error) {
	var user herald.User
	if checkOrg(org) != nil || name == "" || len(name) > herald.MaxNameBytes {
		return user, herald.Errorf(herald.ENOTFOUND, "user not found")
	}
	return user, e.get(ctx, e.users, scopedKey(org, name), "user "+name, &user)
}

// PutDevice stores device under its org and uuid, replacing any previous
// version. Two orgs may register the same device uuid.
func (e *Engine) PutDevice(ctx context.Context, device herald.Device) error {
	if err := checkOrg(device.Org); err != nil {
		return err
	}
	if device.UUID == "" || len(device.UUID) > herald.MaxNameBytes {
		return herald.Errorf(herald.EINVALID, "engine: a device's uuid must have 1 to %d bytes", herald.MaxNameBytes)
	}
	return e.put(ctx, e.devices, scopedKey(device.Org, device.UUID), device)
}

// Device returns the device of org with the given uuid.
func (e *Engine) Device(ctx context.Context, org, uuid string) (herald.Device, error) {
	var device herald.Device
	if checkOrg(org) != nil || uuid == "" || len(uuid) > herald.MaxNameBytes {
		return device, herald.Errorf(herald.ENOTFOUND, "device not found")
	}
	return device, e.get(ctx, e.devices, scopedKey(org, uuid), "device "+uuid, &device)
}

// Devices returns every device of org, sorted by uuid.
func (e *Engine) Devices(ctx context.Context, org string) ([]herald.Device, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	devices, err := list[herald.Device](ctx, e.devices, org+".*")
	slices.SortFunc(devices, func(a, b herald.Device) int { return strings.Compare(a.UUID, b.UUID) })
	return devices, err
}

// Setting returns the value of the named setting.
func (e *Engine) Setting(ctx context.Context, name string) (string, error) {
	if name == "" || len(name) > herald.MaxNameBytes {
		return "", herald.Errorf(herald.ENOTFOUND, "setting not found")
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	entry, err := e.settings.Get(ctx, encodeKey(name))
	if err != nil {
		return "", kvError("setting "+name, err)
	}
	return string(entry.Value()), nil
}

// PutSetting stores the named setting, replacing any previous value.
func (e *Engine) PutSetting(ctx context.Context, name, value string) error {
	if name == "" || len(name) > herald.MaxNameBytes {
		return herald.Errorf(herald.EINVALID, "engine: a setting's name must have 1 to %d bytes", herald.MaxNameBytes)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := e.settings.Put(ctx, encodeKey(name), []byte(value))
	return engineError("put setting", err)
}

// CreateSetting stores the named setting unless it exists (a KV create,
// which JetStream refuses when the key is there), then returns the value
// it holds.
func (e *Engine) CreateSetting(ctx context.Context, name, value string) (string, error) {
	if name == "" || len(name) > herald.MaxNameBytes {
		return "", herald.Errorf(herald.EINVALID, "engine: a setting's name must have 1 to %d bytes", herald.MaxNameBytes)
	}
	cctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := e.settings.Create(cctx, encodeKey(name), []byte(value))
	if err == nil {
		return value, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", engineError("create setting", err)
	}
	return e.Setting(ctx, name)
}

func (e *Engine) put(ctx context.Context, kv jetstream.KeyValue, key string, value any) error {
	data, err := json.Marshal(value)
	if err != nil {
		return herald.Errorf(herald.EINTERNAL, "engine: encode %s: %v", key, err)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err = kv.Put(ctx, key, data)
	return engineError("put "+kv.Bucket(), err)
}

// get decodes the value under key; what names it in errors.
func (e *Engine) get(ctx context.Context, kv jetstream.KeyValue, key, what string, value any) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	entry, err := kv.Get(ctx, key)
	if err != nil {
		return kvError(what, err)
	}
	if err := json.Unmarshal(entry.Value(), value); err != nil {
		return herald.Errorf(herald.EINTERNAL, "engine: stored %s is unreadable: %v", what, err)
	}
	return nil
}

// list decodes every current value of the keys matching filter. A watcher
// delivers the values themselves (one round trip, not one per key) and a
// nil entry once it has sent them all.
func list[T any](ctx context.Context, kv jetstream.KeyValue, filter string) ([]T, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	watcher, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, engineError("list "+kv.Bucket(), err)
	}
	defer watcher.Stop()
	var values []T
	for {
		select {
		case entry, ok := <-watcher.Updates():
			if !ok {
				return nil, herald.Errorf(herald.EUNAVAILABLE, "engine: list %s: watcher closed", kv.Bucket())
			}
			if entry == nil {
				return values, nil
			}
			var v T
			if err := json.Unmarshal(entry.Value(), &v); err != nil {
				return nil, herald.Errorf(herald.EINTERNAL, "engine: stored %s is unreadable: %v", entry.Key(), err)
			}
			values = append(values, v)
		case <-ctx.Done():
			return nil, engineError("list "+kv.Bucket(), ctx.Err())
		}
	}
}

func kvError(what string, err error) error {
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return herald.Errorf(herald.ENOTFOUND, "%s not found", what)
	}
	return engineError("get "+what, err)
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

// WatchDevices passes every stored device, then each one put or deleted
// later, to fn (see herald.Registry). It follows the devices bucket through one KV
// watcher; a value that cannot be decoded is logged and skipped.
func (e *Engine) WatchDevices(ctx context.Context, fn func(herald.Device), ready func()) error {
	watcher, err := e.devices.WatchAll(ctx)
	if err != nil {
		return engineError("watch devices", err)
	}
	initial := true // until ready: a deleted device then is one the watch need not report
	defer watcher.Stop()
	for {
		select {
		case entry, ok := <-watcher.Updates():
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return herald.Errorf(herald.EUNAVAILABLE, "engine: watch devices: watcher closed")
			}
			if entry == nil {
				initial = false
				if ready != nil {
					ready()
					ready = nil
				}
				continue
			}
			if entry.Operation() != jetstream.KeyValuePut {
				if org, uuid, ok := parseScopedKey(entry.Key()); ok && !initial {
					fn(herald.Device{Org: org, UUID: uuid, Deleted: true})
				}
				continue
			}
			var device herald.Device
			if err := json.Unmarshal(entry.Value(), &device); err != nil {
				e.cfg.Logger.Warn("stored device is unreadable", "key", entry.Key(), "err", err)
				continue
			}
			fn(device)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// DeleteOrg deletes the org with the given uuid (not its keys, users or
// devices).
func (e *Engine) DeleteOrg(ctx context.Context, uuid string) error {
	if checkOrg(uuid) != nil {
		return herald.Errorf(herald.ENOTFOUND, "org %q not found", uuid)
	}
	return e.delete(ctx, e.orgs, uuid, "org "+uuid)
}

// APIKeys returns every API key of org, sorted by name, then hash.
func (e *Engine) APIKeys(ctx context.Context, org string) ([]herald.APIKey, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	// Keys are stored by hash alone (an API key is looked up without its
	// org), so listing one org's reads them all.
	all, err := list[herald.APIKey](ctx, e.keys, ">")
	keys := slices.DeleteFunc(all, func(k herald.APIKey) bool { return k.Org != org })
	slices.SortFunc(keys, func(a, b herald.APIKey) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Hash, b.Hash)
	})
	return keys, err
}

// DeleteAPIKey deletes the API key with the given hash.
func (e *Engine) DeleteAPIKey(ctx context.Context, hash string) error {
	if !isHex(hash) {
		return herald.Errorf(herald.ENOTFOUND, "API key not found")
	}
	return e.delete(ctx, e.keys, hash, "API key")
}

// Users returns every user of org, sorted by name.
func (e *Engine) Users(ctx context.Context, org string) ([]herald.User, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	users, err := list[herald.User](ctx, e.users, org+".*")
	slices.SortFunc(users, func(a, b herald.User) int { return strings.Compare(a.Name, b.Name) })
	return users, err
}

// DeleteUser deletes the user of org with the given name.
func (e *Engine) DeleteUser(ctx context.Context, org, name string) error {
	if checkOrg(org) != nil || name == "" || len(name) > herald.MaxNameBytes {
		return herald.Errorf(herald.ENOTFOUND, "user not found")
	}
	return e.delete(ctx, e.users, scopedKey(org, name), "user "+name)
}

// DeleteDevice deletes the device of org with the given uuid.
func (e *Engine) DeleteDevice(ctx context.Context, org, uuid string) error {
	if checkOrg(org) != nil || uuid == "" || len(uuid) > herald.MaxNameBytes {
		return herald.Errorf(herald.ENOTFOUND, "device not found")
	}
	return e.delete(ctx, e.devices, scopedKey(org, uuid), "device "+uuid)
}

// delete removes key, ENOTFOUND when it holds nothing. The check and the
// delete are two steps: of two racing deletes both may succeed.
func (e *Engine) delete(ctx context.Context, kv jetstream.KeyValue, key, what string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if _, err := kv.Get(ctx, key); err != nil {
		return kvError(what, err)
	}
	return engineError("delete "+what, kv.Delete(ctx, key))
}

// WatchRevocations passes every revocation from now on to fn (see
// herald.Registry): deletes in the orgs, keys and users buckets, and API
// keys stored without the subscribe scope. One watcher per bucket feeds
// one loop.
func (e *Engine) WatchRevocations(ctx context.Context, fn func(herald.Revocation), ready func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	buckets := []jetstream.KeyValue{e.orgs, e.keys, e.users}
	watchers := make([]jetstream.KeyWatcher, len(buckets))
	for i, kv := range buckets {
		w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
		if err != nil {
			return engineError("watch "+kv.Bucket(), err)
		}
		defer w.Stop()
		watchers[i] = w
	}
	if ready != nil {
		ready()
	}
	for {
		var entry jetstream.KeyValueEntry
		var ok bool
		select {
		case entry, ok = <-watchers[0].Updates():
		case entry, ok = <-watchers[1].Updates():
		case entry, ok = <-watchers[2].Updates():
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return herald.Errorf(herald.EUNAVAILABLE, "engine: watch revocations: watcher closed")
		}
		if entry == nil {
			continue
		}
		if r, revoked := e.revocation(entry); revoked {
			fn(r)
		}
	}
}

// revocation reads one registry change: whether it revokes a credential.
func (e *Engine) revocation(entry jetstream.KeyValueEntry) (herald.Revocation, bool) {
	deleted := entry.Operation() != jetstream.KeyValuePut
	switch entry.Bucket() {
	case bucketOrgs:
		return herald.Revocation{Org: entry.Key()}, deleted
	case bucketKeys:
		r := herald.Revocation{Credential: herald.KeyCredential(entry.Key())}
		if deleted {
			return r, true
		}
		var key herald.APIKey
		if err := json.Unmarshal(entry.Value(), &key); err != nil {
			e.cfg.Logger.Warn("stored API key is unreadable", "err", err)
			return r, true
		}
		return r, !slices.Contains(key.Scopes, herald.ScopeSubscribe)
	case bucketUsers:
		org, name, ok := parseScopedKey(entry.Key())
		if !deleted || !ok {
			return herald.Revocation{}, false
		}
		return herald.Revocation{Org: org, Credential: herald.UserCredential(name)}, true
	}
	return herald.Revocation{}, false
}
