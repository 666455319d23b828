package actors_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/config"
)

// A broker and a group coordinator built from zero options run with the
// defaults of config.Default(), the one place defaults live; the node
// package checks its own mapping of config against the same values.
func TestZeroOptionsTakeConfigDefaults(t *testing.T) {
	be := embedded(t)
	b := startBroker(t, be, actors.Options{})
	got := b.Options()
	want := actors.DefaultOptions()
	// Runtime wiring, not defaults: withDefaults supplies a discarding
	// logger, and functions do not compare.
	got.Logger, got.Now, want.Now = nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("broker from zero Options runs with\n%+v\nwant DefaultOptions\n%+v", got, want)
	}
	noZeroFields(t, "DefaultOptions", want, "Logger", "Metrics", "Now")
	c := config.Default()
	if got.Linger != c.Partition.Linger.Duration() || got.LeaseTTL != c.Cluster.LeaseTTL.Duration() {
		t.Errorf("linger %s, lease TTL %s; config.Default has %s, %s", got.Linger, got.LeaseTTL, c.Partition.Linger, c.Cluster.LeaseTTL)
	}

	g := actors.NewGroups(b, actors.GroupOptions{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Close(ctx)
	})
	if got, want := g.Options(), actors.DefaultGroupOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("groups from zero GroupOptions run with\n%+v\nwant DefaultGroupOptions\n%+v", got, want)
	}
	noZeroFields(t, "DefaultGroupOptions", actors.DefaultGroupOptions(), "OwnsSlot")
	noZeroFields(t, "DefaultClusterOptions", actors.DefaultClusterOptions(), "Self", "LiveWithin", "Slots", "OnSlotLost")
}

// noZeroFields fails for each field of v left zero, except those named in
// skip: a default that is zero means a withDefaults that forgot a field.
func noZeroFields(t *testing.T, name string, v any, skip ...string) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if rv.Field(i).IsZero() && !slices.Contains(skip, f.Name) {
			t.Errorf("%s leaves %s zero", name, f.Name)
		}
	}
}
