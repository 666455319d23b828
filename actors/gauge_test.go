package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/morax-dev/morax/actors"
)

// metric reads a gauge or counter of the node's registry by name (the
// first series of it).
func metric(t *testing.T, opts actors.Options, name string) float64 {
	t.Helper()
	mfs, err := opts.Metrics.(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}

// gauge and counter read a metric of the node's registry by name.
func gauge(t *testing.T, opts actors.Options, name string) float64 {
	t.Helper()
	return metric(t, opts, name)
}
func counter(t *testing.T, opts actors.Options, name string) float64 {
	t.Helper()
	return metric(t, opts, name)
}

// waitGauge polls a gauge until it equals want.
func waitGauge(t *testing.T, opts actors.Options, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := gauge(t, opts, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestParkedReadersGaugeIsNodeWide stops one partition while readers are
// parked in two: the node-wide gauge must count only the partition still
// holding one, and come back to zero (not below) when that reader leaves.
// A stopping partition used to reset the gauge to zero, and the other
// partition's later decrement drove it negative.
func TestParkedReadersGaugeIsNodeWide(t *testing.T) {
	be := embedded(t)
	opts := testOptions("node-a")
	b := startBroker(t, be, opts)
	doomed := createTopic(t, b, "doomed", 1, nil)
	kept := createTopic(t, b, "kept", 1, nil)

	keptDone := make(chan error, 1)
	go func() {
		_, err := b.Fetch(context.Background(), kept, 0, actors.Fetch{Offset: 0, MaxBytes: 1 << 10, MaxWait: 2 * time.Second})
		keptDone <- err
	}()
	doomedDone := make(chan error, 1)
	go func() {
		_, err := b.Fetch(context.Background(), doomed, 0, actors.Fetch{Offset: 0, MaxBytes: 1 << 10, MaxWait: time.Minute})
		doomedDone <- err
	}()
	waitGauge(t, opts, "morax_parked_readers", 2)

	if err := b.DeleteTopic(context.Background(), doomed.Name); err != nil {
		t.Fatal(err)
	}
	if err := <-doomedDone; err == nil {
		t.Fatal("the reader parked in a deleted topic was answered without an error")
	}
	if got := gauge(t, opts, "morax_parked_readers"); got != 1 {
		t.Fatalf("after one partition stopped, morax_parked_readers = %v, want 1 (the other partition's reader)", got)
	}
	if err := <-keptDone; err != nil {
		t.Fatalf("parked read in the kept topic: %v", err)
	}
	waitGauge(t, opts, "morax_parked_readers", 0)
}
