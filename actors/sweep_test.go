package actors_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/objstore"
)

// TestOrphanSweepRemovesStaleTemps plants the temporary files a crashed
// filesystem Put leaves and checks that the sweep deletes those older than
// OrphanMinAge and keeps a younger one, which may belong to a live Put. The
// store is wrapped in objstore.Metered, as `morax start` wraps it, so the
// test also proves the sweep reaches the files through the wrapper.
func TestOrphanSweepRemovesStaleTemps(t *testing.T) {
	be := embedded(t)
	fs, ok := be.objects.(*objstore.FS)
	if !ok {
		t.Fatalf("embedded backend stores objects in %T, want *objstore.FS", be.objects)
	}
	metered, err := objstore.NewMetered(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	be.objects = metered
	opts := testOptions("node-1")
	opts.OrphanMinAge = time.Minute
	b := startBroker(t, be, opts)

	// The FS names its temporary files .morax-tmp-* next to the object.
	dir := filepath.Join(fs.Dir(), "seg", "crashed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".morax-tmp-crashed")
	fresh := filepath.Join(dir, ".morax-tmp-writing")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial object"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * opts.OrphanMinAge)
	if err := os.Chtimes(stale, past, past); err != nil {
		t.Fatal(err)
	}

	n, err := b.SweepOrphans(t.Context())
	if err != nil || n != 0 {
		t.Fatalf("SweepOrphans = %d, %v; want 0 objects, nil", n, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("temporary file older than OrphanMinAge survived the sweep: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("temporary file younger than OrphanMinAge was removed: %v", err)
	}
}
