// Package teststores opens the two deployments every broker test runs on,
// with real servers: embedded (SQLite metadata and objects in files under
// the test's temp dir) and PostgreSQL + MinIO (the dev servers dev/up.sh
// starts). Each call gives fresh, empty stores, closed when the test ends.
package teststores

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/litemeta"
	"github.com/morax-dev/morax/persistence/meta/pgmeta"
	"github.com/morax-dev/morax/persistence/objstore"
)

// Backend opens the stores a node runs on.
type Backend struct {
	// Name names the deployment in subtest names.
	Name string
	// Open returns fresh stores, registering their Close with t; it skips
	// (or, under MORAX_REQUIRE_INTEGRATION=1, fails) t when its servers are
	// unavailable.
	Open func(t testing.TB) (meta.Store, objstore.Store)
}

// Embedded is the zero-config deployment.
func Embedded() Backend { return Backend{Name: "embedded", Open: OpenEmbedded} }

// PostgresMinIO is the cluster deployment.
func PostgresMinIO() Backend { return Backend{Name: "pg+minio", Open: OpenPostgresMinIO} }

// All lists both deployments, for tests that must pass on each.
func All() []Backend { return []Backend{Embedded(), PostgresMinIO()} }

// OpenEmbedded opens SQLite metadata and a filesystem object store in a
// fresh temp dir.
func OpenEmbedded(t testing.TB) (meta.Store, objstore.Store) {
	t.Helper()
	dir := t.TempDir()
	store, err := litemeta.Open(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatalf("open embedded metadata: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	objects, err := objstore.NewFS(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatalf("open filesystem objects: %v", err)
	}
	t.Cleanup(func() { objects.Close() })
	return store, objects
}

// OpenPostgresMinIO opens a fresh PostgreSQL database and MinIO bucket on
// the dev servers.
func OpenPostgresMinIO(t testing.TB) (meta.Store, objstore.Store) {
	t.Helper()
	url := itest.PostgresURL(t)
	ctx := context.Background()
	store, err := pgmeta.Open(ctx, url)
	if err != nil {
		t.Fatalf("open postgres metadata: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return store, OpenBucket(t)
}

// OpenBucket creates a fresh bucket on the dev MinIO.
func OpenBucket(t testing.TB) *objstore.S3 {
	t.Helper()
	s3 := itest.S3(t)
	ctx := context.Background()
	objects, err := objstore.NewS3(ctx, objstore.S3Config{
		Bucket: "t-" + itest.RandomName(10), Region: s3.Region, Endpoint: s3.Endpoint,
		AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey, PathStyle: true,
	})
	if err != nil {
		t.Fatalf("open s3 objects: %v", err)
	}
	if err := objects.EnsureBucket(ctx); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	t.Cleanup(func() { objects.Close() })
	return objects
}
