package objstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/persistence/objstore/objstoretest"
)

func newMetered(t *testing.T, reg prometheus.Registerer) *objstore.Metered {
	t.Helper()
	m, err := objstore.NewMetered(newFS(t), reg)
	if err != nil {
		t.Fatalf("NewMetered: %v", err)
	}
	return m
}

func TestMeteredIsTransparent(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return newMetered(t, prometheus.NewRegistry()) })
}

// metric returns the value of the counter, or the sample count of the
// histogram, named name with the given labels; -1 when absent.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			match := true
			for _, l := range m.GetLabel() {
				match = match && labels[l.GetName()] == l.GetValue()
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func TestMeteredCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetered(t, reg)
	ctx := t.Context()
	if err := m.Put(ctx, "a", make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, "a", make([]byte, 100)); !errors.Is(err, objstore.ErrExists) {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "a", 10, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "missing", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	_ = m.Put(ctx, "b", nil)
	if err := m.List(ctx, "", func(objstore.ObjectInfo) error { return stop }); !errors.Is(err, stop) {
		t.Fatal(err)
	}

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"morax_objstore_requests_total", map[string]string{"op": "put"}, 3},
		{"morax_objstore_requests_total", map[string]string{"op": "get"}, 2},
		{"morax_objstore_requests_total", map[string]string{"op": "delete"}, 1},
		{"morax_objstore_requests_total", map[string]string{"op": "list"}, 1},
		{"morax_objstore_errors_total", map[string]string{"op": "put", "kind": "exists"}, 1},
		{"morax_objstore_errors_total", map[string]string{"op": "get", "kind": "not_found"}, 1},
		// A listing the caller's callback stopped is not a store error.
		{"morax_objstore_errors_total", map[string]string{"op": "list", "kind": "other"}, -1},
		{"morax_objstore_put_bytes_total", nil, 100},
		{"morax_objstore_get_bytes_total", nil, 30},
		{"morax_objstore_request_duration_seconds", map[string]string{"op": "put"}, 3},
		{"morax_objstore_request_duration_seconds", map[string]string{"op": "get"}, 2},
	}
	for _, c := range checks {
		if got := metric(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestMeteredSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newMetered(t, reg)
	b := newMetered(t, reg) // must not fail: it shares a's metrics
	if err := a.Put(t.Context(), "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, reg, "morax_objstore_requests_total", map[string]string{"op": "put"}); got != 2 {
		t.Fatalf("puts across two stores = %v, want 2", got)
	}
	// A nil registry registers nothing, and still works.
	if _, err := objstore.NewMetered(newFS(t), nil); err != nil {
		t.Fatal(err)
	}
}

// TestMeteredRemoveStaleTemps checks the sweep reaches an FS's leftovers
// through the Metered wrapper the node puts around every store, and that
// a wrapped store without temporary files is simply left alone.
func TestMeteredRemoveStaleTemps(t *testing.T) {
	fs := newFS(t)
	m, err := objstore.NewMetered(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(fs.Dir(), ".morax-tmp-crashed")
	if err := os.WriteFile(stale, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, past, past); err != nil {
		t.Fatal(err)
	}
	if n, err := m.RemoveStaleTemps(t.Context(), time.Hour); err != nil || n != 1 {
		t.Fatalf("RemoveStaleTemps through Metered = %d, %v; want 1, nil", n, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp file survived: %v", err)
	}

	// Faulty does not implement StaleTempRemover, like the S3 store.
	other, err := objstore.NewMetered(objstoretest.NewFaulty(newFS(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := other.RemoveStaleTemps(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("RemoveStaleTemps over a store without temp files = %d, %v; want 0, nil", n, err)
	}
}
