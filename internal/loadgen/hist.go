package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram layout: values (nanoseconds) below subCount are counted
// exactly; above, each power-of-two range is split into subCount equal
// buckets, so any value is known to within 1/subCount (under 1%) of itself,
// the way HdrHistogram works, at a fixed size and with no allocation per
// value.
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxValueBits caps recorded values at 2^40 ns (about 18 minutes):
	// longer latencies are not worth a bigger table and are clamped.
	maxValueBits = 40
	maxValue     = int64(1)<<maxValueBits - 1
	numBuckets   = (maxValueBits - subBits + 1) * subCount
)

// Histogram counts durations in log-linear buckets with a relative error
// under 1%. It is safe for concurrent use: Record is a few atomic adds, so
// many producer goroutines can share one without a lock, and the progress
// reporter can read quantiles while they record.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
	min    atomic.Int64 // holds min+1 so that the zero value means "none"
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{} }

// bucketIndex returns the bucket of v (0 <= v <= maxValue).
func bucketIndex(v int64) int {
	if v < subCount {
		return int(v)
	}
	// Shift so that the top subBits+1 bits remain: v>>shift is in
	// [subCount, 2*subCount).
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// bucketBounds returns the smallest and largest value bucket i holds.
func bucketBounds(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i)
	}
	shift := i/subCount - 1
	m := int64(i%subCount + subCount)
	return m << shift, (m+1)<<shift - 1
}

// clamp keeps v in the recordable range.
func clamp(v int64) int64 {
	if v < 0 {
		return 0
	}
	if v > maxValue {
		return maxValue
	}
	return v
}

// Record counts one duration.
func (h *Histogram) Record(d time.Duration) { h.RecordN(d, 1) }

// RecordN counts n values of d at once, e.g. every record of a batch that
// was acknowledged together.
func (h *Histogram) RecordN(d time.Duration, n int) {
	if n <= 0 {
		return
	}
	v := clamp(int64(d))
	h.counts[bucketIndex(v)].Add(uint64(n))
	h.total.Add(uint64(n))
	h.sum.Add(v * int64(n))
	h.raiseMax(v)
	h.lowerMin(v + 1)
}

// raiseMax makes max at least v, racing safely with other writers.
func (h *Histogram) raiseMax(v int64) {
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			return
		}
	}
}

// lowerMin makes the stored min+1 at most v1 (which is a value plus one).
func (h *Histogram) lowerMin(v1 int64) {
	for {
		cur := h.min.Load()
		if (cur != 0 && v1 >= cur) || h.min.CompareAndSwap(cur, v1) {
			return
		}
	}
}

// Merge adds every count of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.sum.Add(o.sum.Load())
	h.raiseMax(o.max.Load())
	if m := o.min.Load(); m != 0 {
		h.lowerMin(m)
	}
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest value recorded, exactly (0 when empty).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min is the smallest value recorded, exactly (0 when empty).
func (h *Histogram) Min() time.Duration {
	if m := h.min.Load(); m > 0 {
		return time.Duration(m - 1)
	}
	return 0
}

// Mean is the average of the values recorded (0 when empty).
func (h *Histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile returns the value at or below which a fraction q (0..1) of the
// recorded values lie: the upper bound of the bucket holding that rank,
// never more than Max. While values are being recorded the answer is a
// consistent-enough estimate, good for live progress.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	q = math.Max(0, math.Min(1, q))
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			_, hi := bucketBounds(i)
			if m := h.max.Load(); hi > m {
				hi = m
			}
			if lo := h.Min(); time.Duration(hi) < lo {
				return lo
			}
			return time.Duration(hi)
		}
	}
	// Counts still being added by a concurrent Record: the rank is
	// beyond what the buckets show yet, so the maximum is the best answer.
	return h.Max()
}
