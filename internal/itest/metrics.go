package itest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WaitForGauge polls the gauge called name in g until it is at least min,
// failing t after 10 s. Tests use it to wait for a state the broker
// reports (a reader parked, bytes buffered) instead of sleeping.
func WaitForGauge(t testing.TB, g prometheus.Gatherer, name string, min float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := -1.0
	for {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatalf("gather metrics: %v", err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name && len(mf.GetMetric()) > 0 {
				last = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		if last >= min {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gauge %s is %v after 10s, want at least %v", name, last, min)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
