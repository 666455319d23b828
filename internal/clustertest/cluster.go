// Package clustertest runs real `morax start` processes on loopback as one
// cluster, sharing a fresh PostgreSQL database and a fresh key prefix in
// the dev MinIO bucket, and gives the cluster tests of cmd/morax what their
// scenarios share: process control (node.go, binary.go), what the cluster
// reports about itself (view.go), client workloads (produce.go, group.go,
// wal.go) and the invariants read straight from the metadata database
// (invariants.go).
//
// It needs the dev servers (dev/up.sh, then `set -a; . dev/.env; set +a`):
// New skips the test without them, or fails it under
// MORAX_REQUIRE_INTEGRATION=1. Every helper takes or holds the test's
// testing.TB and fails it on error, so only tests may use the package.
package clustertest

import (
	"bufio"
	"cmp"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/objstore"
)

// Lease timing of the test nodes: short, so a killed node's partitions are
// taken over within seconds, and still more than twice the heartbeat (the
// config validation rule).
const (
	leaseTTL  = 2 * time.Second
	heartbeat = 500 * time.Millisecond
)

// devBucket is the bucket dev/up.sh creates; every cluster test writes
// under its own prefix in it.
const devBucket = "morax"

// EnvLogDir, when set, names a folder the node logs of every cluster
// test are copied to, kept after the test (the temp dir is not).
const EnvLogDir = "MORAX_TEST_CLUSTER_LOG_DIR"

// Cluster is a set of node processes sharing one metadata database and
// object prefix.
type Cluster struct {
	t      testing.TB
	bin    string
	pgURL  string
	s3     itest.S3Config
	prefix string
	dir    string
	// db is a pool, not one connection, so the harness's checks survive
	// a restart of PostgreSQL by the fault tests.
	db *pgxpool.Pool
	// nodePG and nodeS3 are what the nodes are configured with: the
	// servers themselves, or fault proxies in front of them.
	nodePG string
	nodeS3 string
	nodes  []*Node
	ports  map[string]bool // listen addresses given to nodes
	// stopWait bounds a node's graceful stop (Node.Stop), set from the
	// binary's own shutdown bound.
	stopWait time.Duration
}

// New prepares an empty cluster: a fresh database, a fresh prefix in the
// dev bucket (its objects deleted at the end), no node yet. It fails the
// test (or skips it without MORAX_REQUIRE_INTEGRATION=1) when the dev
// servers are not configured. shutdownTimeout is the longest the binary
// itself takes to stop gracefully (cmd/morax's bound): Node.Stop fails a
// node that takes much longer.
func New(t testing.TB, shutdownTimeout time.Duration) *Cluster {
	t.Helper()
	return NewWithBackends(t, shutdownTimeout, Backends{PostgresURL: itest.PostgresURL(t), S3: itest.S3(t)})
}

// Backends names the servers a cluster runs on: the harness reaches them
// at PostgresURL and S3.Endpoint, the nodes at NodePostgresURL and
// NodeS3Endpoint when set (a fault proxy in front of the same server), or
// at the same addresses.
type Backends struct {
	PostgresURL     string
	S3              itest.S3Config
	NodePostgresURL string
	NodeS3Endpoint  string
	// PrivateStore: the object store is the test's own and goes with it,
	// so the test's objects are not deleted one by one at the end (a soak
	// leaves tens of thousands).
	PrivateStore bool
}

// NewWithBackends is New on the given servers instead of the dev ones:
// the fault tests' private PostgreSQL and MinIO, reached by the nodes
// through fault proxies. The database must exist and be empty (the nodes
// create the schema).
func NewWithBackends(t testing.TB, shutdownTimeout time.Duration, b Backends) *Cluster {
	t.Helper()
	pgURL, s3 := b.PostgresURL, b.S3
	c := &Cluster{
		nodePG: cmp.Or(b.NodePostgresURL, pgURL),
		nodeS3: cmp.Or(b.NodeS3Endpoint, s3.Endpoint),
		t:      t,
		bin:    Binary(t),
		pgURL:  pgURL,
		s3:     s3,
		prefix: "cluster-test-" + itest.RandomName(12) + "/",
		dir:    t.TempDir(),
		// shutdownTimeout bounds the node's own stop; the rest is slack
		// for a loaded machine.
		stopWait: shutdownTimeout + 10*time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objects, err := c.openObjects(ctx)
	if err != nil {
		t.Fatalf("open the dev bucket: %v", err)
	}
	if err := objects.EnsureBucket(ctx); err != nil {
		t.Fatalf("create the dev bucket: %v", err)
	}
	objects.Close()
	// The nodes create the schema on start; the harness's own connection
	// only reads it.
	db, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		t.Fatalf("connect %s: %v", pgURL, err)
	}
	c.db = db
	// Cleanups run last-registered first: nodes die before the objects are
	// removed and before itest drops the database.
	if !b.PrivateStore {
		t.Cleanup(c.deletePrefix)
	}
	t.Cleanup(db.Close)
	t.Cleanup(c.shutdown)
	return c
}

func (c *Cluster) openObjects(ctx context.Context) (*objstore.S3, error) {
	return objstore.NewS3(ctx, objstore.S3Config{
		Bucket: devBucket, Region: c.s3.Region, Endpoint: c.s3.Endpoint,
		AccessKeyID: c.s3.AccessKey, SecretAccessKey: c.s3.SecretKey, PathStyle: true,
		Prefix: c.prefix,
	})
}

// deletePrefix removes the test's objects, so the shared dev bucket does
// not grow with every run.
func (c *Cluster) deletePrefix() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	objects, err := c.openObjects(ctx)
	if err != nil {
		c.t.Logf("cleanup: open bucket: %v", err)
		return
	}
	defer objects.Close()
	var keys []string
	if err := objects.List(ctx, "", func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		c.t.Logf("cleanup: list %s: %v", c.prefix, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, k := range keys {
		g.Go(func() error { return objects.Delete(gctx, k) })
	}
	if err := g.Wait(); err != nil {
		c.t.Logf("cleanup: delete objects under %s: %v", c.prefix, err)
	}
}

// shutdown kills every node still running (there is nothing left to
// check), then dumps their logs if the test failed.
func (c *Cluster) shutdown() {
	for _, n := range c.nodes {
		n.forceStop()
	}
	if dir := os.Getenv(EnvLogDir); dir != "" {
		dst := filepath.Join(dir, strings.NewReplacer("/", "_").Replace(c.t.Name()))
		if err := os.MkdirAll(dst, 0o755); err == nil {
			for _, n := range c.nodes {
				if b, err := os.ReadFile(n.logPath); err == nil {
					_ = os.WriteFile(filepath.Join(dst, n.id+".log"), b, 0o644)
				}
			}
			c.t.Logf("node logs copied to %s", dst)
		}
	}
	if !c.t.Failed() {
		return
	}
	for _, n := range c.nodes {
		c.t.Logf("---- last lines of %s's log (%s) ----\n%s", n.id, n.logPath, tailFile(n.logPath, 150, 64<<10))
	}
}

// tailFile returns at most the last lines lines (and maxBytes bytes) of a
// file, for failure reports.
func tailFile(path string, lines, maxBytes int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > int64(maxBytes) {
		_, _ = f.Seek(-int64(maxBytes), io.SeekEnd)
	}
	var all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// UseT makes t the test the cluster reports to (and fails) until the
// returned function restores the previous one: a suite that runs its
// scenarios as subtests of one test on one cluster hands each its own t,
// since a subtest may not fail its parent with FailNow.
func (c *Cluster) UseT(t testing.TB) (restore func()) {
	prev := c.t
	c.t = t
	return func() { c.t = prev }
}

// Node returns the node named id, failing the test if there is none.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %q", id)
	return nil
}

// live lists the nodes whose process runs and is not paused.
func (c *Cluster) live() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		n.mu.Lock()
		paused := n.paused
		n.mu.Unlock()
		if n.running() && !paused {
			out = append(out, n)
		}
	}
	return out
}

// Nodes returns every node added to the cluster, running or not, in the
// order they were added.
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// LiveIDs lists the ids of the nodes whose process runs and is not paused.
func (c *Cluster) LiveIDs() []string {
	var ids []string
	for _, n := range c.live() {
		ids = append(ids, n.id)
	}
	return ids
}

// seeds are the Kafka addresses of every configured node, dead or alive,
// as a client configured with the whole cluster would have them.
func (c *Cluster) seeds() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.kafkaAddr)
	}
	return out
}

// WaitFor polls cond until it reports done, failing the test with cond's
// last explanation after timeout (a bound on failure, not a performance
// assertion).
func (c *Cluster) WaitFor(what string, timeout time.Duration, cond func() (bool, string)) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not reached within %s: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
