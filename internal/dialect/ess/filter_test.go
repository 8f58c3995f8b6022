package ess

import (
	"testing"

	"github.com/herald-gw/herald"
)

type kinds map[string]string

func (k kinds) Device(org, uuid string) (herald.Device, bool) {
	kind, ok := k[uuid]
	return herald.Device{Org: org, UUID: uuid, Kind: kind}, ok
}

const (
	lobby  = "25d08c6a-cc08-4498-8772-242111f9840c"
	mic    = "11111111-2222-4333-8444-555555555555"
	motion = "6eb95dd6-7ccc-4bce-99f8-af0d0b582d77"
	stop   = "6f55a7a7-d21c-4629-ac18-af1975e395a2"
)

// keyFor renders e's filter key the way the delivery path does.
func keyFor(t *testing.T, entity, device string) eventKey {
	t.Helper()
	e, err := herald.DecodeEvent(1, []byte(`{"org":"o","entity":"`+entity+`","deviceUuid":"`+device+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	return newRenderer(kinds{lobby: "camera", mic: "microphone"}, 10).keyOf(e)
}

func include(rt, src, typ []string) FilterSpec {
	return FilterSpec{ResourceTypes: rt, SourceIDs: src, EventTypes: typ}
}

func exclude(rt, src, typ []string) FilterSpec {
	f := include(rt, src, typ)
	f.Exclude = true
	return f
}

var all = []string{"*"}

// TestSubscriptionRule is the rule of protocols.md §1.2, case by case.
func TestSubscriptionRule(t *testing.T) {
	cases := []struct {
		name   string
		specs  []FilterSpec
		entity string
		device string
		want   bool
	}{
		{"everything", []FilterSpec{include(all, all, all)}, "MOTION_STARTED", lobby, true},
		{"no filters: nothing", nil, "MOTION_STARTED", lobby, false},
		{"resource type", []FilterSpec{include([]string{"cameras"}, all, all)}, "MOTION_STARTED", lobby, true},
		{"resource type any case", []FilterSpec{include([]string{"Cameras"}, all, all)}, "MOTION_STARTED", lobby, true},
		{"other resource type", []FilterSpec{include([]string{"cameras"}, all, all)}, "MOTION_STARTED", mic, false},
		{"source id upper case", []FilterSpec{include(all, []string{"25D08C6A-CC08-4498-8772-242111F9840C"}, all)}, "MOTION_STARTED", lobby, true},
		{"other source", []FilterSpec{include(all, []string{mic}, all)}, "MOTION_STARTED", lobby, false},
		{"event type GUID", []FilterSpec{include(all, all, []string{motion})}, "MOTION_STARTED", lobby, true},
		{"event type GUID upper case", []FilterSpec{include(all, all, []string{"6EB95DD6-7CCC-4BCE-99F8-AF0D0B582D77"})}, "MOTION_STARTED", lobby, true},
		{"other event type", []FilterSpec{include(all, all, []string{stop})}, "MOTION_STARTED", lobby, false},
		{"entity name", []FilterSpec{include(all, all, []string{"MOTION_STARTED"})}, "MOTION_STARTED", lobby, true},
		{"entity name lower case", []FilterSpec{include(all, all, []string{"motion_started"})}, "MOTION_STARTED", lobby, true},
		{"custom entity by name", []FilterSpec{include(all, all, []string{"DOOR_FORCED"})}, "DOOR_FORCED", lobby, true},
		{"wildcard among entries", []FilterSpec{include([]string{"outputs", "*"}, all, all)}, "MOTION_STARTED", lobby, true},
		{"empty list matches nothing", []FilterSpec{include([]string{}, all, all)}, "MOTION_STARTED", lobby, false},
		{"all three must match", []FilterSpec{include([]string{"cameras"}, []string{mic}, all)}, "MOTION_STARTED", lobby, false},
		{"any include", []FilterSpec{include(all, []string{mic}, all), include(all, []string{lobby}, all)}, "MOTION_STARTED", lobby, true},
		{"exclude wins", []FilterSpec{include(all, all, all), exclude(all, all, []string{motion})}, "MOTION_STARTED", lobby, false},
		{"exclude first wins too", []FilterSpec{exclude(all, []string{lobby}, all), include(all, all, all)}, "MOTION_STARTED", lobby, false},
		{"exclude elsewhere", []FilterSpec{include(all, all, all), exclude(all, all, []string{stop})}, "MOTION_STARTED", lobby, true},
		{"exclude alone: nothing", []FilterSpec{exclude(all, all, []string{stop})}, "MOTION_STARTED", lobby, false},
		{"unregistered device by entity", []FilterSpec{include([]string{"cameras"}, all, all)}, "RECORDING_STARTED", "unknown-cam", true},
		{"unregistered other entity is hardware", []FilterSpec{include([]string{"hardware"}, all, all)}, "POLICY_ALERT", "unknown-cam", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSubscription("s", c.specs)
			if got := s.match(keyFor(t, c.entity, c.device)); got != c.want {
				t.Fatalf("match = %v, want %v", got, c.want)
			}
		})
	}
}

// TestSessionIsTheUnion: an exclude of one subscription does not hide
// what another includes; removing a subscription removes what it added.
func TestSessionIsTheUnion(t *testing.T) {
	k := keyFor(t, "MOTION_STARTED", lobby)
	onlyStop := newSubscription("A", []FilterSpec{include(all, all, all), exclude(all, all, []string{motion})})
	cams := newSubscription("B", []FilterSpec{include([]string{"cameras"}, all, all)})
	ss := (&subscriptions{}).with(onlyStop)
	if ss.match(k) {
		t.Fatal("A excludes motion")
	}
	ss = ss.with(cams)
	if !ss.match(k) || ss.filters != 3 {
		t.Fatalf("A∪B: match %v, %d filters", ss.match(k), ss.filters)
	}
	ss, ok := ss.without("b") // ids compare in any case
	if !ok || ss.match(k) || len(ss.list) != 1 || ss.filters != 2 {
		t.Fatalf("without B: %v %v %d", ok, ss.match(k), ss.filters)
	}
	if _, ok := ss.without("nope"); ok {
		t.Fatal("without an unknown id")
	}
}

// TestMatchAllocatesNothing: the delivery path's filter costs no
// allocation per event and session.
func TestMatchAllocatesNothing(t *testing.T) {
	k := keyFor(t, "MOTION_STARTED", lobby)
	ss := (&subscriptions{}).with(newSubscription("s", []FilterSpec{
		include([]string{"cameras"}, []string{lobby, mic}, []string{motion, stop}), exclude(all, []string{mic}, all)}))
	if n := testing.AllocsPerRun(1000, func() { ss.match(k) }); n != 0 {
		t.Fatalf("%v allocations per match", n)
	}
}
