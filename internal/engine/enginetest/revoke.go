package enginetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

// testDeletes: each kind of registry entry can be listed by org and
// deleted; deleting what is not there is ENOTFOUND.
func testDeletes(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)
	for _, org := range []string{"org-a", "org-b"} {
		must(t, e.PutOrg(ctx, herald.Org{UUID: org, Name: org}))
	}
	for _, k := range []herald.APIKey{
		{Hash: "0b", Org: "org-a", Name: "z", Scopes: []string{herald.ScopeSubscribe}},
		{Hash: "0a", Org: "org-a", Name: "z", Scopes: []string{herald.ScopePublish}},
		{Hash: "0c", Org: "org-a", Name: "a", Scopes: []string{herald.ScopeAdmin}},
		{Hash: "0d", Org: "org-b", Name: "b", Scopes: []string{herald.ScopeSubscribe}},
	} {
		must(t, e.PutAPIKey(ctx, k))
	}
	keys, err := e.APIKeys(ctx, "org-a")
	if hashes := keyHashes(keys); err != nil || !slices.Equal(hashes, []string{"0c", "0a", "0b"}) {
		t.Fatalf("APIKeys(org-a) = %v, %v; want 0c 0a 0b (by name, then hash)", hashes, err)
	}
	for _, name := range []string{"bob", "ann"} {
		must(t, e.PutUser(ctx, herald.User{Org: "org-a", Name: name, PasswordHash: "x"}))
	}
	must(t, e.PutUser(ctx, herald.User{Org: "org-b", Name: "cid", PasswordHash: "x"}))
	users, err := e.Users(ctx, "org-a")
	if err != nil || len(users) != 2 || users[0].Name != "ann" || users[1].Name != "bob" {
		t.Fatalf("Users(org-a) = %+v, %v", users, err)
	}
	must(t, e.PutDevice(ctx, herald.Device{Org: "org-a", UUID: "cam-1", Name: "Lobby"}))

	must(t, e.DeleteAPIKey(ctx, "0b"))
	must(t, e.DeleteUser(ctx, "org-a", "bob"))
	must(t, e.DeleteDevice(ctx, "org-a", "cam-1"))
	must(t, e.DeleteOrg(ctx, "org-b"))
	_, err = e.APIKey(ctx, "0b")
	wantCode(t, err, herald.ENOTFOUND)
	_, err = e.User(ctx, "org-a", "bob")
	wantCode(t, err, herald.ENOTFOUND)
	_, err = e.Device(ctx, "org-a", "cam-1")
	wantCode(t, err, herald.ENOTFOUND)
	_, err = e.Org(ctx, "org-b")
	wantCode(t, err, herald.ENOTFOUND)
	if keys, err := e.APIKeys(ctx, "org-a"); err != nil || len(keys) != 2 {
		t.Fatalf("APIKeys after a delete = %v, %v", keyHashes(keys), err)
	}
	if users, err := e.Users(ctx, "org-a"); err != nil || len(users) != 1 {
		t.Fatalf("Users after a delete = %+v, %v", users, err)
	}
	if devices, err := e.Devices(ctx, "org-a"); err != nil || len(devices) != 0 {
		t.Fatalf("Devices after a delete = %+v, %v", devices, err)
	}
	if orgs, err := e.Orgs(ctx); err != nil || len(orgs) != 1 {
		t.Fatalf("Orgs after a delete = %+v, %v", orgs, err)
	}
	// Deleting the org left its entries: the caller deletes them first.
	if _, err := e.User(ctx, "org-b", "cid"); err != nil {
		t.Fatalf("the deleted org's user: %v", err)
	}

	wantCode(t, e.DeleteAPIKey(ctx, "0b"), herald.ENOTFOUND)
	wantCode(t, e.DeleteAPIKey(ctx, "not hex"), herald.ENOTFOUND)
	wantCode(t, e.DeleteUser(ctx, "org-a", "bob"), herald.ENOTFOUND)
	wantCode(t, e.DeleteDevice(ctx, "org-a", "cam-1"), herald.ENOTFOUND)
	wantCode(t, e.DeleteOrg(ctx, "org-b"), herald.ENOTFOUND)
	wantCode(t, e.DeleteOrg(ctx, "org.b"), herald.ENOTFOUND)
}

func keyHashes(keys []herald.APIKey) []string {
	var hashes []string
	for _, k := range keys {
		hashes = append(hashes, k.Hash)
	}
	return hashes
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testWatchRevocations: deleting a key, a user or an org, and storing a
// key without the subscribe scope, reach the watch, in order; other
// changes do not.
func testWatchRevocations(t *testing.T, storage Storage) {
	e := storage(t, Limits{})
	ctx := testContext(t)
	must(t, e.PutOrg(ctx, herald.Org{UUID: "org-a", Name: "A"}))
	must(t, e.PutAPIKey(ctx, herald.APIKey{Hash: "aa", Org: "org-a", Scopes: []string{herald.ScopeSubscribe}}))
	must(t, e.PutUser(ctx, herald.User{Org: "org-a", Name: "ann", PasswordHash: "x"}))
	// Deleted before the watch: not reported.
	must(t, e.PutAPIKey(ctx, herald.APIKey{Hash: "ff", Org: "org-a", Scopes: []string{herald.ScopeSubscribe}}))
	must(t, e.DeleteAPIKey(ctx, "ff"))

	got := make(chan herald.Revocation, 16)
	ready := make(chan struct{})
	watchCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- e.WatchRevocations(watchCtx, func(r herald.Revocation) { got <- r }, func() { close(ready) })
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the watch was not ready")
	}

	must(t, e.PutAPIKey(ctx, herald.APIKey{Hash: "aa", Org: "org-a", Name: "renamed", Scopes: []string{herald.ScopeSubscribe}}))
	must(t, e.PutUser(ctx, herald.User{Org: "org-a", Name: "ann", PasswordHash: "y"}))
	must(t, e.PutOrg(ctx, herald.Org{UUID: "org-a", Name: "A renamed"}))
	must(t, e.PutAPIKey(ctx, herald.APIKey{Hash: "aa", Org: "org-a", Scopes: []string{herald.ScopePublish}}))
	must(t, e.DeleteAPIKey(ctx, "aa"))
	must(t, e.DeleteUser(ctx, "org-a", "ann"))
	must(t, e.DeleteOrg(ctx, "org-a"))
	// Each bucket is watched on its own: the order holds within one only.
	want := []herald.Revocation{
		{Credential: herald.KeyCredential("aa")}, // lost the subscribe scope
		{Credential: herald.KeyCredential("aa")}, // deleted
		{Org: "org-a", Credential: herald.UserCredential("ann")},
		{Org: "org-a"},
	}
	var revoked []herald.Revocation
	for range want {
		select {
		case r := <-got:
			revoked = append(revoked, r)
		case <-time.After(30 * time.Second):
			t.Fatalf("revocations %+v, want %+v", revoked, want)
		}
	}
	order := func(a, b herald.Revocation) int {
		return strings.Compare(a.Org+" "+a.Credential, b.Org+" "+b.Credential)
	}
	slices.SortFunc(revoked, order)
	slices.SortFunc(want, order)
	if !slices.Equal(revoked, want) {
		t.Fatalf("revocations %+v, want %+v", revoked, want)
	}
	select {
	case r := <-got:
		t.Fatalf("an extra revocation %+v", r)
	default:
	}
}
