package server

import (
	"context"
	"testing"

	"github.com/herald-gw/herald"
)

// numberRegistry answers Device with a fixed number; nothing else is used.
type numberRegistry struct {
	herald.Registry
	calls int
}

func (r *numberRegistry) Device(_ context.Context, org, uuid string) (herald.Device, error) {
	r.calls++
	return herald.Device{Org: org, UUID: uuid, Number: 7}, nil
}

// TestDeviceNumbersCachedWithoutAllocating: the delivery path's lookup
// asks the registry once and then allocates nothing.
func TestDeviceNumbersCachedWithoutAllocating(t *testing.T) {
	reg := &numberRegistry{}
	d := newDeviceNumbers(reg)
	org, uuid := "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30", "9d1e0f7a-1111-4c2b-8a3e-000000000001"
	if n := d.number(org, uuid); n != 7 {
		t.Fatalf("number = %d, want 7", n)
	}
	if allocs := testing.AllocsPerRun(100, func() { d.number(org, uuid) }); allocs != 0 && !raceEnabled {
		t.Fatalf("%.1f allocations per cached lookup", allocs)
	}
	if reg.calls != 1 {
		t.Fatalf("registry asked %d times, want once", reg.calls)
	}
}
