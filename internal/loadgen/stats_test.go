package loadgen

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestWarmupLeavesEarlyRecordsOutOfLatency: records stamped before the
// warmup ends count for throughput but not for either latency histogram.
func TestWarmupLeavesEarlyRecordsOutOfLatency(t *testing.T) {
	s := newStats(64, time.Second)
	value := func(ts int64) []byte {
		v := make([]byte, 64)
		binary.BigEndian.PutUint64(v[0:8], s.runID)
		binary.BigEndian.PutUint64(v[8:16], uint64(ts))
		return v
	}
	early, late := int64(500*time.Millisecond), int64(1500*time.Millisecond)
	s.acked(early, 3, 192)
	s.acked(late, 2, 128)
	s.gotValue(value(early), 0)
	s.gotValue(value(late), 0)
	if got := s.produced.Load(); got != 5 {
		t.Errorf("produced %d records, want 5 (warmup records count for throughput)", got)
	}
	if got := s.consumed.Load(); got != 2 {
		t.Errorf("consumed %d records, want 2", got)
	}
	if got := s.produceLat.Count(); got != 2 {
		t.Errorf("produce latency holds %d samples, want the 2 sent after the warmup", got)
	}
	if got := s.e2eLat.Count(); got != 1 {
		t.Errorf("end-to-end latency holds %d samples, want 1", got)
	}
}

func TestWarmupValidation(t *testing.T) {
	for _, tc := range []struct {
		warmup time.Duration
		ok     bool
	}{{0, true}, {2 * time.Second, true}, {-time.Second, false}, {10 * time.Second, false}} {
		c := DefaultConfig()
		c.Warmup = tc.warmup
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("warmup %s: Validate() = %v", tc.warmup, err)
		}
	}
}
