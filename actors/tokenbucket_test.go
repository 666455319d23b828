package actors

import (
	"testing"
	"time"
)

// The creation token bucket admits the burst at once, then one creation per
// 1/rate, and says how long until the next token.
func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name     string
		rate     float64
		burst    int
		at       []time.Duration // when each take happens, from t0
		want     []bool
		lastWait time.Duration // the wait the last take reports
	}{
		{name: "burst then refused", rate: 1, burst: 3, at: []time.Duration{0, 0, 0, 0}, want: []bool{true, true, true, false}, lastWait: time.Second},
		{name: "refills at the rate", rate: 2, burst: 1, at: []time.Duration{0, 0, 500 * time.Millisecond, 600 * time.Millisecond}, want: []bool{true, false, true, false}, lastWait: 400 * time.Millisecond},
		{name: "never more than the burst", rate: 10, burst: 2, at: []time.Duration{time.Hour, time.Hour, time.Hour}, want: []bool{true, true, false}, lastWait: 100 * time.Millisecond},
		{name: "a clock going back refills nothing", rate: 1, burst: 1, at: []time.Duration{time.Second, 0}, want: []bool{true, false}, lastWait: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTokenBucket(tc.rate, tc.burst, t0)
			var wait time.Duration
			for i, at := range tc.at {
				var ok bool
				wait, ok = tb.take(t0.Add(at))
				if ok != tc.want[i] {
					t.Fatalf("take %d at %s: %v, want %v", i, at, ok, tc.want[i])
				}
				if ok && wait != 0 {
					t.Fatalf("take %d admitted with a wait of %s", i, wait)
				}
			}
			if d := wait - tc.lastWait; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("last wait %s, want %s", wait, tc.lastWait)
			}
		})
	}
}
