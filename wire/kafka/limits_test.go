package kafka

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/morax-dev/morax/actors"
)

// A refusal by a limit maps to the Kafka code its request's version knows:
// THROTTLING_QUOTA_EXCEEDED from CreateTopics v6 and CreatePartitions v3
// (KIP-599), POLICY_VIOLATION before; the caps map the same at every
// version.
func TestCreateErrorCode(t *testing.T) {
	throttled := fmt.Errorf("create x: %w", &actors.ThrottleError{Wait: time.Second})
	full := fmt.Errorf("%w: cluster full", actors.ErrLimitReached)
	big := fmt.Errorf("%w: 5000 partitions", actors.ErrTooManyPartitions)
	for _, tc := range []struct {
		name    string
		err     error
		version int16
		from    int16
		want    *kerr.Error
	}{
		{"CreateTopics v7 throttled", throttled, 7, 6, kerr.ThrottlingQuotaExceeded},
		{"CreateTopics v6 throttled", throttled, 6, 6, kerr.ThrottlingQuotaExceeded},
		{"CreateTopics v5 throttled", throttled, 5, 6, kerr.PolicyViolation},
		{"CreateTopics v0 throttled", throttled, 0, 6, kerr.PolicyViolation},
		{"CreatePartitions v3 throttled", throttled, 3, 3, kerr.ThrottlingQuotaExceeded},
		{"CreatePartitions v2 throttled", throttled, 2, 3, kerr.PolicyViolation},
		{"cluster cap, old version", full, 0, 6, kerr.PolicyViolation},
		{"cluster cap, new version", full, 7, 6, kerr.PolicyViolation},
		{"per-topic cap", big, 1, 3, kerr.InvalidPartitions},
	} {
		if got := createErrorCode(tc.err, tc.version, tc.from); got != tc.want.Code {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(got), tc.want)
		}
	}
}

func TestThrottleMillis(t *testing.T) {
	for _, tc := range []struct {
		ms   int32
		d    time.Duration
		want int32
	}{
		{0, 0, 0},
		{0, 1500 * time.Millisecond, 1500},
		{2000, 1500 * time.Millisecond, 2000},
		{0, math.MaxInt64, math.MaxInt32},
	} {
		if got := throttleMillis(tc.ms, tc.d); got != tc.want {
			t.Errorf("throttleMillis(%d, %s) = %d, want %d", tc.ms, tc.d, got, tc.want)
		}
	}
}
