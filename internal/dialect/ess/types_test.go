package ess

import (
	"fmt"
	"slices"
	"testing"
)

// The name-based types a node learned are per org: another org neither
// names them nor lists them, and one org's many names do not push out
// another's.
func TestLearnedTypesPerOrg(t *testing.T) {
	const orgA, orgB = "org-learn-a", "org-learn-b"
	door := Learn(orgA, "DOOR_FORCED")
	if door.ID != TypeGUID("DOOR_FORCED") || door.DisplayName != "Door Forced" {
		t.Fatalf("learned %+v", door)
	}
	if got := LookupType(orgA, door.ID); got != door {
		t.Fatalf("org A's lookup: %v", got)
	}
	if got := LookupType(orgB, door.ID); got != nil {
		t.Fatalf("org B names org A's type: %+v", got)
	}
	names := func(org string) []string {
		var list []string
		for _, t := range KnownTypes(org) {
			list = append(list, t.Entity)
		}
		return list
	}
	if slices.Contains(names(orgB), "DOOR_FORCED") || !slices.Contains(names(orgA), "DOOR_FORCED") {
		t.Fatalf("org A lists %v, org B %v", names(orgA), names(orgB))
	}
	if got := LookupType(orgB, TypeGUID("MOTION_STARTED")); got == nil || got.Entity != "MOTION_STARTED" {
		t.Fatalf("a well-known type for any org: %v", got)
	}

	for i := range maxLearnedPerOrg + 10 {
		Learn(orgB, fmt.Sprintf("FLOOD_%d", i))
	}
	if got := LookupType(orgA, door.ID); got != door {
		t.Fatal("org B's flood pushed out org A's type")
	}
	if n := len(KnownTypes(orgB)) - len(wellKnown); n != maxLearnedPerOrg {
		t.Fatalf("org B holds %d learned types, want the bound %d", n, maxLearnedPerOrg)
	}
	if LookupType(orgB, TypeGUID("FLOOD_0")) != nil || LookupType(orgB, TypeGUID(fmt.Sprintf("FLOOD_%d", maxLearnedPerOrg+9))) == nil {
		t.Fatal("the oldest should go first")
	}
}
