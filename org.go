package herald

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// Org is a tenant. Every event, key, user and device belongs to one.
type Org struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
}

// MaxNameBytes bounds the names the Registry stores things under: device
// uuids, user names and setting names. A longer name is refused when put
// (EINVALID) and not found when looked up (ENOTFOUND): the engine turns
// names into subjects, and NATS closes a connection whose request line is
// too long.
const MaxNameBytes = 512

// Scopes an API key or token can carry.
const (
	ScopeSubscribe = "subscribe"
	ScopePublish   = "publish"
	ScopeAdmin     = "admin"
)

// AllScopes lists every scope, for the bootstrap key.
var AllScopes = []string{ScopeSubscribe, ScopePublish, ScopeAdmin}

// ValidScope reports whether s names a scope.
func ValidScope(s string) bool { return slices.Contains(AllScopes, s) }

// APIKey is a stored API key. The key itself is never stored: Hash is
// HashAPIKey of it.
type APIKey struct {
	Hash   string   `json:"hash"`
	Org    string   `json:"org"`
	Name   string   `json:"name,omitempty"`
	Scopes []string `json:"scopes"`
}

// HashAPIKey returns the stored form of an API key. Keys are looked up by
// hash, so the hash is deterministic; keys are meant to be long random
// strings, which makes a fast hash sufficient.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte("herald-api-key\x00" + key))
	return hex.EncodeToString(sum[:])
}

// User is a person of an org, used by dialects with password or user auth.
type User struct {
	Org          string `json:"org"`
	Name         string `json:"name"`
	PasswordHash string `json:"passwordHash"` // bcrypt
}

// Device is a registered device. Unregistered devices still work with defaults.
type Device struct {
	Org    string `json:"org"`
	UUID   string `json:"uuid"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`             // camera | sensor | door | microphone | input | output | …
	Number int64  `json:"number,omitempty"` // optional numeric id (0 = none)
	// Deleted marks a device Registry.WatchDevices reports as deleted:
	// only Org and UUID are set then. Never stored.
	Deleted bool `json:"-"`
}

// Principal is who is on the other end of a connection or request: an org
// and what it may do there.
type Principal struct {
	Org    string
	User   string // "" for API keys
	Scopes []string
	// Credential is what the principal authenticated with, as far as
	// herald can revoke it: KeyCredential of an API key (used directly or
	// traded for a token), UserCredential of a registered user, or "" (a
	// token of another issuer, which only deleting the org revokes).
	Credential string
}

// KeyCredential names an API key, by hash, as a Principal's Credential.
func KeyCredential(hash string) string { return "key:" + hash }

// UserCredential names a registered user of the principal's org as a
// Principal's Credential.
func UserCredential(name string) string { return "user:" + name }

// Revocation is a credential that stopped being valid: an org deleted
// (Credential ""), or an API key deleted or no longer allowed to
// subscribe, or a user deleted (Credential names it, as in Principal).
// Connections that authenticated with it must end.
type Revocation struct {
	Org        string // "" for an API key: its hash names it across orgs
	Credential string
}

// Can reports whether the principal holds scope.
func (p Principal) Can(scope string) bool { return slices.Contains(p.Scopes, scope) }
