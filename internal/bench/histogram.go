package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// The histogram is log-linear: values below linearBuckets each have their
// own bucket; above, every power of two is split into halfBuckets equal
// buckets, so a bucket's width is at most 1/halfBuckets (1.6%) of its
// values. Values at or above 2^maxBits are counted in the last bucket.
const (
	subBits       = 7
	linearBuckets = 1 << subBits                                      // 128
	halfBuckets   = linearBuckets / 2                                 // 64 per power of two
	maxBits       = 40                                                // 2^40 ns ≈ 18 minutes
	numBuckets    = linearBuckets + (maxBits-subBits)*halfBuckets + 1 // +1: overflow
)

// Histogram counts non-negative int64 values (nanoseconds here) in fixed
// log-linear buckets. Record is safe for concurrent use, allocates nothing
// and takes constant time; the zero value is ready. A Histogram is about
// 18 KB and must not be copied after first use.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Int64
}

// bucketOf returns the bucket index of v ≥ 0.
func bucketOf(v int64) int {
	if v < linearBuckets {
		return int(v)
	}
	msb := bits.Len64(uint64(v)) - 1 // ≥ subBits
	if msb >= maxBits {
		return numBuckets - 1
	}
	shift := msb - (subBits - 1)
	mantissa := int(uint64(v) >> shift) // in [halfBuckets, linearBuckets)
	return linearBuckets + (msb-subBits)*halfBuckets + mantissa - halfBuckets
}

// bucketHigh returns the largest value that falls in bucket i.
func bucketHigh(i int) int64 {
	if i < linearBuckets {
		return int64(i)
	}
	if i >= numBuckets-1 {
		return math.MaxInt64
	}
	octave := (i - linearBuckets) / halfBuckets
	mantissa := int64((i-linearBuckets)%halfBuckets + halfBuckets)
	shift := octave + 1
	return (mantissa+1)<<shift - 1
}

// Record counts v; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest recorded value, exactly (0 when empty).
func (h *Histogram) Max() int64 { return h.max.Load() }

// Mean returns the mean of the recorded values (0 when empty).
func (h *Histogram) Mean() float64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Quantile returns a value v such that at least a fraction q of the
// recorded values are ≤ v: the upper bound of the bucket holding the q-th
// value, never above Max. It reads the counters without stopping
// recorders, so while they run it is approximate.
func (h *Histogram) Quantile(q float64) int64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(bucketHigh(i), h.max.Load())
		}
	}
	return h.max.Load()
}

// Reset forgets every recorded value. It must not run concurrently with
// Record.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.total.Store(0)
	h.sum.Store(0)
	h.max.Store(0)
}

// Merge adds o's counts to h. It must not run concurrently with Record on
// h; o may be recording (its newest values may then be missed).
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}
