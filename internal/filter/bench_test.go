package filter

import (
	"github.com/herald-gw/herald"
	"strconv"
	"testing"
)

// BenchmarkSet compares scanning with strings.EqualFold and the hashed
// lookup, for lists around smallSet and values that need folding or not.
func BenchmarkSet(b *testing.B) {
	for _, n := range []int{2, 4, 8, 16, 256} {
		list := values("motion_", n)
		scan := Set{small: list, n: n}
		hashed := NewSet(append(values("x", smallSet+1), list...))
		for _, v := range []string{"MOTION_HUMAN", "motion_human", "9d1e0f7a-1111-4c2b-8a3e-000000000001"} {
			b.Run("n="+strconv.Itoa(n)+"/"+v[:6]+"/scan", func(b *testing.B) {
				for b.Loop() {
					scan.Contains(v)
				}
			})
			b.Run("n="+strconv.Itoa(n)+"/"+v[:6]+"/hash", func(b *testing.B) {
				for b.Loop() {
					hashed.Contains(v)
				}
			})
		}
	}
}

// BenchmarkMatch compares Match with the scan it replaced (naiveMatch)
// on a subscription's trigger list against an event's triggers, up to the
// defect's shape: a 1,635-value list and a 200,000-trigger alert, which
// New and ingest now refuse but a Set still matches in time linear in
// the event.
func BenchmarkMatch(b *testing.B) {
	for _, c := range []struct{ list, triggers int }{{2, 2}, {8, 4}, {256, 64}, {1635, 200000}} {
		spec := Spec{Entities: []string{"policy_alert"}, Triggers: values("motion_", c.list)}
		e := &herald.Event{Entity: "POLICY_ALERT", Type: "CREATE", Triggers: values("OTHER_", c.triggers)}
		name := "list=" + strconv.Itoa(c.list) + "/triggers=" + strconv.Itoa(c.triggers)
		b.Run(name+"/naive", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if naiveMatch(&spec, e) {
					b.Fatal("match")
				}
			}
		})
		b.Run(name+"/compiled", func(b *testing.B) {
			f := compile(spec)
			b.ReportAllocs()
			for b.Loop() {
				if f.Match(e) {
					b.Fatal("match")
				}
			}
		})
	}
}
