package filter

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/herald-gw/herald"
)

// TestFoldIsEqualFold checks, for every rune, what makes a folded key
// equivalent to strings.EqualFold: two runes fold alike exactly when
// EqualFold takes them as equal, that is when they share a SimpleFold
// orbit.
func TestFoldIsEqualFold(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			if validRune(r) != utf8.RuneError {
				t.Fatalf("invalid rune %U is not read as U+FFFD", r)
			}
			continue
		}
		f := fold(r)
		s := string(r)
		if !strings.EqualFold(s, string(f)) {
			t.Fatalf("fold(%U) = %U, not equal under EqualFold", r, f)
		}
		if utf8.RuneLen(f) > utf8.RuneLen(r) {
			t.Fatalf("fold(%U) = %U is longer in UTF-8", r, f)
		}
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			if fold(o) != f {
				t.Fatalf("fold(%U) = %U but fold(%U) = %U: one orbit, two keys", r, f, o, fold(o))
			}
			if !strings.EqualFold(s, string(o)) {
				t.Fatalf("%U and %U share an orbit but are not EqualFold", r, o)
			}
		}
	}
	// And runes of different orbits differ under EqualFold: the ones that
	// fold to different runes but are neighbours in case tables.
	for _, pair := range [][2]string{{"k", "\u212a"}, {"s", "\u017f"}, {"i", "\u0130"}, {"i", "\u0131"}, {"ß", "ss"}, {"\xff", "\ufffd"}, {"\xff", "\xfe"}} {
		want := strings.EqualFold(pair[0], pair[1])
		if got := foldString(pair[0]) == foldString(pair[1]); got != want {
			t.Errorf("%q vs %q: folded equal %v, EqualFold %v", pair[0], pair[1], got, want)
		}
	}
}

// naiveMatch is Match as it was before Sets: a scan of every list with
// strings.EqualFold, O(event triggers × list length). FuzzMatch holds the
// compiled Filter to it.
func naiveMatch(s *Spec, e *herald.Event) bool {
	if !OneOf(s.Entities, e.Entity) || !OneOf(s.Types, e.Type) ||
		!OneOf(s.Devices, e.DeviceUUID) || !OneOf(s.Channels, e.Channel) || !OneOf(s.Severities, e.Severity) {
		return false
	}
	if len(s.Triggers) == 0 {
		return true
	}
	for _, t := range e.Triggers {
		if OneOf(s.Triggers, t) {
			return true
		}
	}
	return false
}

// compile is New without the bounds, so that the fuzz test can reach
// Set's fallback for values New would refuse.
func compile(s Spec) Filter {
	return Filter{sets: &sets{entities: NewSet(s.Entities), types: NewSet(s.Types), devices: NewSet(s.Devices),
		triggers: NewSet(s.Triggers), channels: NewSet(s.Channels), severities: NewSet(s.Severities)}}
}

// containsRunes looks v up rune by rune, as the channels codec does with
// a JSON string.
func containsRunes(s *Set, v string) bool {
	var k Key
	for _, r := range v {
		k.AddRune(r)
	}
	return s.ContainsKey(&k)
}

// FuzzMatch holds the compiled Filter, and Set's Contains and
// ContainsKey, to the naive scan with strings.EqualFold: on short lists
// (scanned) and long ones (hashed by folded form), ASCII or not, valid
// UTF-8 or not, within New's bounds or beyond them.
func FuzzMatch(f *testing.F) {
	for _, seed := range []struct {
		entity, trigger, list string
		pad                   uint16
	}{
		{"POLICY_ALERT", "MOTION_HUMAN", "policy_alert,motion_human", 0},
		{"POLICY_ALERT", "MOTION_HUMAN", "policy_alert,motion_human", 40},
		{"DEVICE", "LOITERING", "policy_alert,MOTION_CAR", 300},
		{"\u212aelvin", "\u017fs", "kELVIN,SS", 20},
		{"İstanbul", "ıi", "istanbul,II", 20},
		{"straße", "STRASSE", "strasse,STRAßE", 9},
		{"\xff\xfe", "\xc3", "\ufffd\ufffd,\ufffd", 12},
		{"a", "b", "A,B", 8},
		{"", "", ",", 9},
		{strings.Repeat("é", 300), strings.Repeat("\xff", 300), strings.Repeat("É", 300) + "," + strings.Repeat("\ufffd", 300), 10},
		{strings.Repeat("x", 257), "y", strings.Repeat("X", 257), 0},
	} {
		f.Add(seed.entity, seed.trigger, seed.list, seed.pad)
	}
	f.Fuzz(func(t *testing.T, entity, trigger, list string, pad uint16) {
		items := strings.Split(list, ",")
		// Variants of the event's own values, which the list should hold.
		for _, v := range []string{entity, trigger} {
			items = append(items, strings.ToUpper(v), strings.ToLower(v), strings.ToTitle(v))
		}
		items = append(items, values("pad", int(pad%400))...)
		spec := Spec{Entities: items, Types: items[:1], Devices: items, Triggers: items, Channels: items[len(items)/2:]}
		if pad%2 == 1 {
			spec.Severities = items
		}
		events := []*herald.Event{
			{Entity: entity, Type: items[0], DeviceUUID: trigger, Channel: entity, Severity: trigger, Triggers: []string{trigger, entity}},
			{Entity: trigger, Type: entity, DeviceUUID: entity, Channel: trigger, Triggers: []string{list}},
			{Entity: strings.ToUpper(entity), Type: strings.ToLower(items[0]), Channel: strings.ToLower(items[len(items)-1])},
		}
		flt := compile(spec)
		for _, e := range events {
			if got, want := flt.Match(e), naiveMatch(&spec, e); got != want {
				t.Fatalf("Match(%+v) = %v, naive %v", e, got, want)
			}
		}
		if nf, err := New(spec); err == nil {
			for _, e := range events {
				if nf.Match(e) != naiveMatch(&spec, e) {
					t.Fatalf("New's Filter disagrees on %+v", e)
				}
			}
		} else if checkList("", items) == nil {
			t.Fatalf("New refused lists within bounds: %v", err)
		}
		for _, set := range []struct {
			values []string
		}{{items}, {items[:min(len(items), smallSet)]}, {items[:min(len(items), smallSet+1)]}} {
			s := NewSet(set.values)
			for _, v := range []string{entity, trigger, list, strings.ToUpper(trigger), strings.ToLower(entity), items[0]} {
				want := OneOf(set.values, v) && len(set.values) > 0
				if got := s.Contains(v); got != want {
					t.Fatalf("Set of %d: Contains(%q) = %v, naive %v", len(set.values), v, got, want)
				}
				var kb Key
				kb.AddBytes([]byte(v))
				if got := s.ContainsKey(&kb); got != containsRunes(&s, v) {
					t.Fatalf("Set of %d: AddBytes(%q) and AddRune disagree", len(set.values), v)
				}
				// A Key holds any value New accepts; past that, only Contains matches.
				if got := containsRunes(&s, v); got != want && (len(v) <= MaxValueBytes || got) {
					t.Fatalf("Set of %d: ContainsKey(%q) = %v, naive %v", len(set.values), v, got, want)
				}
			}
		}
	})
}

func TestKeyInvalidRunes(t *testing.T) {
	for _, s := range []Set{NewSet([]string{"\ufffdA"}), NewSet(append(values("x", 20), "\ufffdA"))} {
		// A surrogate or a negative rune stands for U+FFFD.
		for _, r := range []rune{0xD800, -1, utf8.MaxRune + 1} {
			var k Key
			k.AddRune(r)
			k.AddRune('a')
			if !s.ContainsKey(&k) {
				t.Errorf("rune %d not read as U+FFFD", r)
			}
		}
	}
}

func TestKeyReset(t *testing.T) {
	s := NewSet(append(values("x", 20), "motion_human"))
	var k Key
	k.AddString(strings.Repeat("é", foldBufBytes)) // overflows
	if s.ContainsKey(&k) {
		t.Fatal("an overflowed Key matched")
	}
	k.Reset()
	k.AddString("Motion_Human")
	if !s.ContainsKey(&k) {
		t.Fatal("Reset did not empty the Key")
	}
}

func TestSetDoesNotAllocate(t *testing.T) {
	small := NewSet([]string{"critical", "warning"})
	big := NewSet(append(values("x", 100), "9d1e0f7a-1111-4c2b-8a3e-000000000001", "Ünïcode"))
	for _, v := range []string{"CRITICAL", "9D1E0F7A-1111-4C2B-8A3E-000000000001", "ünïcode", "x7", "none", strings.Repeat("é", 400)} {
		for _, s := range []*Set{&small, &big} {
			if n := testing.AllocsPerRun(100, func() { s.Contains(v); containsRunes(s, v) }); n != 0 {
				t.Errorf("lookup of %q allocates %v times", v, n)
			}
		}
	}
}
