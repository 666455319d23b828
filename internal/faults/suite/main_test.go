// Package suite holds the fault tests: a Morax cluster of real `morax
// start` processes on a private PostgreSQL and MinIO, reached through
// fault proxies, under mixed recorded load (idempotent Kafka producers,
// WAL appenders, a consumer group committing offsets) while PostgreSQL,
// MinIO, the network or a node fails; the history checker then judges
// every answer the clients were given.
//
// The short suite (TestFaults) runs in CI. The long suite is the same test
// with longer randomized schedules, chosen by -faults.duration (or
// MORAX_FAULTS_DURATION), e.g. `go test -run TestFaults ./internal/faults/suite
// -faults.duration 10m`. The soak (soak_test.go) is behind the build tag
// soak. Every randomized schedule comes from a seed that is logged and can
// be set again with -faults.seed (or MORAX_FAULTS_SEED) to replay it.
package suite

import (
	"flag"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/morax-dev/morax/internal/clustertest"
)

var (
	flagSeed     = flag.Int64("faults.seed", 0, "seed of the randomized fault schedules (0: from the clock, or MORAX_FAULTS_SEED)")
	flagDuration = flag.Duration("faults.duration", 0, "run the long suite: repeat each fault with randomized timings for this long in all (0: the short suite, or MORAX_FAULTS_DURATION)")
)

// seed returns the seed of this run's schedules: the flag, the
// environment, or the clock, logged so a failure can be replayed.
func seed(t testing.TB) int64 {
	t.Helper()
	s := *flagSeed
	if s == 0 {
		if v := os.Getenv("MORAX_FAULTS_SEED"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("MORAX_FAULTS_SEED=%q: %v", v, err)
			}
			s = n
		}
	}
	if s == 0 {
		s = time.Now().UnixNano()
	}
	t.Logf("fault seed %d (replay with -faults.seed %d)", s, s)
	return s
}

// longDuration is how long the long suite runs; 0 selects the short one.
func longDuration(t testing.TB) time.Duration {
	t.Helper()
	d := *flagDuration
	if d == 0 {
		if v := os.Getenv("MORAX_FAULTS_DURATION"); v != "" {
			var err error
			if d, err = time.ParseDuration(v); err != nil {
				t.Fatalf("MORAX_FAULTS_DURATION=%q: %v", v, err)
			}
		}
	}
	return d
}

// TestMain removes the morax binary the tests share once they have run.
func TestMain(m *testing.M) {
	code := m.Run()
	clustertest.RemoveBinary()
	os.Exit(code)
}
