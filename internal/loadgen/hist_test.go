package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketIndexRoundTrip(t *testing.T) {
	// Every value falls in a bucket whose bounds contain it, buckets are
	// contiguous, and a bucket is never wider than 1/subCount of its lower
	// bound: the precision promised.
	prevHi := int64(-1)
	for i := 0; i < numBuckets; i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if lo >= subCount && float64(hi-lo+1) > float64(lo)/subCount {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d of its start", i, lo, hi, subCount)
		}
		for _, v := range []int64{lo, hi, lo + (hi-lo)/2} {
			if got := bucketIndex(v); got != i {
				t.Fatalf("bucketIndex(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = hi
	}
	if prevHi != maxValue {
		t.Fatalf("last bucket ends at %d, want maxValue %d", prevHi, maxValue)
	}
}

func TestHistogramEmpty(t *testing.T) {
	h := NewHistogram()
	if h.Count() != 0 || h.Quantile(0.99) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Fatalf("empty histogram: count %d p99 %v max %v min %v mean %v", h.Count(), h.Quantile(.99), h.Max(), h.Min(), h.Mean())
	}
}

func TestHistogramUniform(t *testing.T) {
	// 1..100000 µs, once each: quantile q is q*100000 µs, within the 1%
	// bucket precision.
	h := NewHistogram()
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		want := q * 100000 * float64(time.Microsecond)
		got := float64(h.Quantile(q))
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("p%g = %v, want %v within 1%%", q*100, time.Duration(got), time.Duration(want))
		}
	}
	if h.Max() != 100*time.Millisecond || h.Min() != time.Microsecond {
		t.Errorf("max %v min %v, want 100ms and 1µs exactly", h.Max(), h.Min())
	}
	if h.Quantile(1) != h.Max() {
		t.Errorf("p100 %v != max %v", h.Quantile(1), h.Max())
	}
	if want := 50000500 * time.Nanosecond; h.Mean() != want {
		t.Errorf("mean %v, want %v", h.Mean(), want)
	}
}

func TestHistogramMatchesSortedSample(t *testing.T) {
	// Against the exact percentile of a sorted sample of a heavy-tailed
	// distribution, the shape of real latencies.
	r := rand.New(rand.NewPCG(1, 2))
	h := NewHistogram()
	var vals []time.Duration
	for range 50000 {
		v := time.Duration(math.Exp(r.NormFloat64()*1.5+13)) + time.Microsecond
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.99, 0.999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		if math.Abs(float64(got-exact))/float64(exact) > 0.01 {
			t.Errorf("p%g = %v, exact %v: off by more than 1%%", q*100, got, exact)
		}
	}
}

func TestHistogramRecordNAndClamp(t *testing.T) {
	h := NewHistogram()
	h.RecordN(3*time.Millisecond, 99)
	h.RecordN(time.Second, 1)
	h.RecordN(time.Hour, 0) // no values: ignored
	h.Record(-time.Second)  // clock oddity: counted as 0
	h.Record(1000 * time.Hour)
	if h.Count() != 102 {
		t.Fatalf("count %d, want 102", h.Count())
	}
	if p := h.Quantile(0.5); p < 3*time.Millisecond || p > 3*time.Millisecond*101/100 {
		t.Errorf("p50 %v, want 3ms", p)
	}
	if h.Min() != 0 {
		t.Errorf("min %v, want 0 (the negative value)", h.Min())
	}
	if h.Max() != time.Duration(maxValue) {
		t.Errorf("max %v, want clamped to %v", h.Max(), time.Duration(maxValue))
	}
}

func TestHistogramMergeAndConcurrency(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				a.Record(time.Duration(w*1000+i+1) * time.Microsecond)
			}
		})
	}
	// Reading while recording must be safe (the progress reporter does).
	wg.Go(func() {
		for range 100 {
			_ = a.Quantile(0.99)
		}
	})
	wg.Wait()
	b.Record(time.Nanosecond)
	b.Record(time.Minute)
	a.Merge(b)
	if a.Count() != 4002 {
		t.Fatalf("count %d, want 4002", a.Count())
	}
	if a.Min() != time.Nanosecond || a.Max() != time.Minute {
		t.Errorf("min %v max %v after merge, want 1ns and 1m", a.Min(), a.Max())
	}
	if p := a.Quantile(0.5); p < 1990*time.Microsecond || p > 2030*time.Microsecond {
		t.Errorf("p50 %v, want about 2ms", p)
	}
}
