package devices

import (
	"context"
	"testing"
	"time"

	"github.com/herald-gw/herald"
)

// watchRegistry is a herald.Registry whose WatchDevices passes what the
// test sends on puts.
type watchRegistry struct {
	herald.Registry
	stored []herald.Device
	puts   chan herald.Device
}

func (r *watchRegistry) WatchDevices(ctx context.Context, fn func(herald.Device), ready func()) error {
	for _, d := range r.stored {
		fn(d)
	}
	ready()
	for {
		select {
		case d := <-r.puts:
			fn(d)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func TestFollow(t *testing.T) {
	reg := &watchRegistry{
		stored: []herald.Device{{Org: "a", UUID: "cam-1", Number: 7}, {Org: "b", UUID: "cam-1", Number: 9}},
		puts:   make(chan herald.Device),
	}
	d := New()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- d.Follow(ctx, reg, func() { close(ready) }, nil) }()
	<-ready
	if got := d.Number("a", "cam-1"); got != 7 {
		t.Fatalf("a/cam-1 number %d, want 7", got)
	}
	if got := d.Number("b", "cam-1"); got != 9 {
		t.Fatalf("b/cam-1 number %d, want 9 (orgs are separate)", got)
	}
	reg.puts <- herald.Device{Org: "a", UUID: "cam-2", Number: 3}
	deadline := time.Now().Add(10 * time.Second)
	for d.Number("a", "cam-2") != 3 {
		if time.Now().After(deadline) {
			t.Fatal("a put device never showed up")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Follow returned %v", err)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	d := New()
	d.Put(herald.Device{Org: "org", UUID: "cam-1", Number: 1})
	org, uuid := string([]byte("org")), string([]byte("cam-1"))
	if n := testing.AllocsPerRun(1000, func() { d.Number(org, uuid) }); n != 0 {
		t.Fatalf("Number allocates %v times", n)
	}
}

// TestAlso: every device put reaches the functions given to New, after
// the directory has it.
func TestAlso(t *testing.T) {
	var d *Directory
	var seen []herald.Device
	d = New(func(dev herald.Device) {
		if _, ok := d.Device(dev.Org, dev.UUID); !ok {
			t.Errorf("%+v was passed before the directory had it", dev)
		}
		seen = append(seen, dev)
	})
	puts := []herald.Device{{Org: "a", UUID: "cam-1", Name: "lobby"}, {Org: "a", UUID: "cam-1", Name: "lobby east"}}
	for _, dev := range puts {
		d.Put(dev)
	}
	if len(seen) != 2 || seen[0] != puts[0] || seen[1] != puts[1] {
		t.Fatalf("passed %+v, want %+v", seen, puts)
	}
}

// TestByNumber: a device is found by its number within its org only; a
// renumbered device leaves its old number; of two devices given one
// number the last put has it.
func TestByNumber(t *testing.T) {
	d := New()
	d.Put(herald.Device{Org: "a", UUID: "cam-1", Number: 7, Name: "Lobby"})
	d.Put(herald.Device{Org: "b", UUID: "cam-9", Number: 7})
	if dev, ok := d.ByNumber("a", 7); !ok || dev.UUID != "cam-1" || dev.Name != "Lobby" {
		t.Fatalf("a/7 = %+v, %v", dev, ok)
	}
	if dev, _ := d.ByNumber("b", 7); dev.UUID != "cam-9" {
		t.Fatalf("b/7 = %+v: orgs are separate", dev)
	}
	d.Put(herald.Device{Org: "a", UUID: "cam-1", Number: 8, Name: "Lobby"})
	if _, ok := d.ByNumber("a", 7); ok {
		t.Fatal("a renumbered device kept its old number")
	}
	if dev, _ := d.ByNumber("a", 8); dev.UUID != "cam-1" {
		t.Fatalf("a/8 = %+v", dev)
	}
	d.Put(herald.Device{Org: "a", UUID: "cam-2", Number: 8})
	d.Put(herald.Device{Org: "a", UUID: "cam-1", Number: 0, Name: "Lobby"})
	if dev, _ := d.ByNumber("a", 8); dev.UUID != "cam-2" {
		t.Fatalf("a/8 = %+v after cam-2 took it and cam-1 dropped its number", dev)
	}
	if _, ok := d.ByNumber("a", 0); ok {
		t.Fatal("0 is no number")
	}
}

// A deleted device is forgotten, number and all, and the index beside
// the directory hears of it.
func TestDeletedDeviceIsForgotten(t *testing.T) {
	var told []herald.Device
	d := New(func(dev herald.Device) { told = append(told, dev) })
	d.Put(herald.Device{Org: "org-a", UUID: "cam-1", Name: "Lobby", Number: 7})
	d.Put(herald.Device{Org: "org-a", UUID: "cam-1", Deleted: true})
	if dev, ok := d.Device("org-a", "cam-1"); ok {
		t.Fatalf("a deleted device is still found: %+v", dev)
	}
	if dev, ok := d.ByNumber("org-a", 7); ok {
		t.Fatalf("a deleted device's number still finds %+v", dev)
	}
	if len(told) != 2 || !told[1].Deleted {
		t.Fatalf("the index was told %+v", told)
	}
}
