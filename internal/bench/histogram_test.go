package bench

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestBucketBounds(t *testing.T) {
	// Every value lands in a bucket whose upper bound is ≥ it, and whose
	// predecessor's upper bound is < it; bucket widths stay within 1/64.
	check := func(v int64) {
		t.Helper()
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		if high := bucketHigh(i); high < v {
			t.Fatalf("bucketHigh(bucketOf(%d)) = %d < value", v, high)
		}
		if i > 0 && i < numBuckets-1 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d (high %d)", v, i-1, bucketHigh(i-1))
		}
		if v >= linearBuckets && v < 1<<maxBits {
			low := bucketHigh(i-1) + 1
			if width := bucketHigh(i) - low + 1; float64(width) > float64(low)/halfBuckets {
				t.Fatalf("bucket %d of %d is %d wide from %d", i, v, width, low)
			}
		}
	}
	for v := int64(0); v < 1<<16; v++ {
		check(v)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		check(r.Int64N(1 << 45))
	}
	for _, v := range []int64{1<<maxBits - 1, 1 << maxBits, 1<<63 - 1} {
		check(v)
	}
	for i := 1; i < numBuckets; i++ {
		if bucketHigh(i) <= bucketHigh(i-1) {
			t.Fatalf("bucket bounds not increasing at %d", i)
		}
	}
}

func TestQuantileAccuracy(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) int64
	}{
		{"uniform-1ms", func(r *rand.Rand) int64 { return r.Int64N(1_000_000) }},
		{"exponential-200us", func(r *rand.Rand) int64 { return int64(r.ExpFloat64() * 200_000) }},
		{"small", func(r *rand.Rand) int64 { return r.Int64N(300) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			var h Histogram
			values := make([]int64, 50000)
			for i := range values {
				values[i] = tt.gen(r)
				h.Record(values[i])
			}
			slices.Sort(values)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				exact := values[max(int(q*float64(len(values)))-1, 0)]
				got := h.Quantile(q)
				if got < exact || float64(got-exact) > float64(exact)/halfBuckets+1 {
					t.Errorf("q%v = %d, exact %d", q, got, exact)
				}
			}
			if h.Max() != values[len(values)-1] {
				t.Errorf("max = %d, want %d", h.Max(), values[len(values)-1])
			}
			if h.Count() != uint64(len(values)) {
				t.Errorf("count = %d", h.Count())
			}
		})
	}
}

func TestHistogramEmptyNegativeHuge(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram not zero")
	}
	h.Record(-5)
	if h.Quantile(1) != 0 {
		t.Fatalf("negative recorded as %d", h.Quantile(1))
	}
	h.Record(1 << 62)
	if got := h.Quantile(1); got != 1<<62 {
		t.Fatalf("huge value: q1 = %d", got)
	}
}

func TestHistogramMergeAndConcurrentRecord(t *testing.T) {
	shards := make([]Histogram, 4)
	var wg sync.WaitGroup
	for s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10000 {
				shards[s].Record(int64(i))
			}
		}()
	}
	wg.Wait()
	var all Histogram
	for i := range shards {
		all.Merge(&shards[i])
	}
	if all.Count() != 40000 || all.Max() != 9999 {
		t.Fatalf("merged count %d max %d", all.Count(), all.Max())
	}
	if q := all.Quantile(0.5); q < 4999 || q > 5100 {
		t.Fatalf("merged median %d", q)
	}
	all.Reset()
	if all.Count() != 0 || all.Quantile(0.5) != 0 {
		t.Fatal("reset left values")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	v := int64(0)
	if n := testing.AllocsPerRun(1000, func() { v += 12345; h.Record(v) }); n != 0 {
		t.Fatalf("Record allocates %v times", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := range b.N {
		h.Record(int64(i) * 997)
	}
}
