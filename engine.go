package herald

import "context"

// EventLog is the durable, ordered log of every event of every org.
// Ids are log sequences: dense per log, increasing, never reused.
type EventLog interface {
	// Append stores records, all of one org, in order. It returns only
	// once every one is durable, with their ids in order. It is not
	// all-or-none: when it fails, some of the records may be stored, and a
	// retry with the same Keys stores none of them twice. A record whose
	// Key was already stored within the dedupe window is not stored again;
	// its id is the original one.
	Append(ctx context.Context, records []Record) ([]uint64, error)

	// Replay calls fn, in order, for every stored event of org with
	// after < id <= until (until 0 means the log's end when Replay starts).
	// It returns the id of the last event it passed to fn, or after when
	// there was none. If events after `after` were already removed by
	// retention, it returns an error with code ECONFLICT before calling fn.
	// An error from fn stops the replay and is returned.
	Replay(ctx context.Context, org string, after, until uint64, fn func(*Event) error) (uint64, error)

	// Follow calls fn, in order and from one goroutine, for every event of
	// every org with id > after, as they are appended, until ctx is done.
	// It returns ctx.Err() then, or an error if the log became unreadable.
	Follow(ctx context.Context, after uint64, fn func(*Event)) error

	// LastID returns the id of the newest stored event (0 for an empty log).
	LastID(ctx context.Context) (uint64, error)
}

// StateView keeps the latest event per device and kind, beyond the log's
// retention.
type StateView interface {
	// Latest returns the newest stored event of org that matches the given
	// fields; an empty field matches anything. ENOTFOUND if there is none.
	Latest(ctx context.Context, org string, q StateQuery) (*Event, error)

	// States calls fn, from one goroutine and in no particular order, with
	// the newest stored event of each subject of org whose Entity is one of
	// entities (exact names), as the state view holds it. It returns copied:
	// every event of the log up to copied is reflected in what fn saw (an
	// event fn saw may be newer than copied, and events after copied may
	// be missing), so a caller that needs the state as of a log position
	// replays the log after copied on top of what fn saw. An error from fn
	// stops the walk and is returned.
	States(ctx context.Context, org string, entities []string, fn func(*Event) error) (copied uint64, err error)
}

// StateQuery selects events for StateView.Latest. Empty fields match all.
type StateQuery struct {
	Channel    string
	Entity     string
	DeviceUUID string
	EntityUUID string
}

// Registry stores orgs, API keys, users and devices, shared by every node.
// Lookups of things that do not exist return an error with code ENOTFOUND.
type Registry interface {
	// Deleting something that does not exist is ENOTFOUND. Deleting an
	// org deletes only the org: its keys, users and devices are the
	// caller's to delete first.
	PutOrg(ctx context.Context, org Org) error
	Org(ctx context.Context, uuid string) (Org, error)
	Orgs(ctx context.Context) ([]Org, error)
	DeleteOrg(ctx context.Context, uuid string) error

	PutAPIKey(ctx context.Context, key APIKey) error
	APIKey(ctx context.Context, hash string) (APIKey, error)
	APIKeys(ctx context.Context, org string) ([]APIKey, error) // sorted by name, then hash
	DeleteAPIKey(ctx context.Context, hash string) error

	PutUser(ctx context.Context, user User) error
	User(ctx context.Context, org, name string) (User, error)
	Users(ctx context.Context, org string) ([]User, error) // sorted by name
	DeleteUser(ctx context.Context, org, name string) error

	PutDevice(ctx context.Context, device Device) error
	Device(ctx context.Context, org, uuid string) (Device, error)
	Devices(ctx context.Context, org string) ([]Device, error)
	DeleteDevice(ctx context.Context, org, uuid string) error
	// WatchDevices calls fn, from one goroutine, with every stored device
	// of every org, then with each device as it is put, or as it is
	// deleted (a Device with Org, UUID and Deleted only), until ctx is done;
	// it returns ctx.Err() then. ready, if not nil, is called once, after
	// the devices stored when the watch began were passed to fn. A watch
	// that falls behind may skip a version of a device that was replaced
	// before it was passed, as the engine keeps only the newest; the
	// versions it passes come in the order they were put, and the newest
	// version of every device always comes.
	WatchDevices(ctx context.Context, fn func(Device), ready func()) error

	// WatchRevocations calls fn, from one goroutine, with every credential
	// revoked (see Revocation) on any node from when the watch begins,
	// until ctx is done; it returns ctx.Err() then, or an error when the
	// watch broke (revocations until the next watch may then be missed,
	// so a caller checks the credentials it holds again). ready, if not
	// nil, is called once the watch is in place.
	WatchRevocations(ctx context.Context, fn func(Revocation), ready func()) error

	// Setting and PutSetting keep small named values of the installation
	// (for example that the first-start bootstrap has run).
	Setting(ctx context.Context, name string) (string, error)
	PutSetting(ctx context.Context, name, value string) error
	// CreateSetting stores value under name only if the setting does not
	// exist yet, and returns the value the setting holds afterwards: value,
	// or what an earlier (or concurrent, on another node) call stored.
	// Racing callers all get the same answer.
	CreateSetting(ctx context.Context, name, value string) (string, error)
}
