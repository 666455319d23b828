package pgmeta_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/metatest"
	"github.com/morax-dev/morax/persistence/meta/pgmeta"
)

func open(t testing.TB) meta.Store {
	t.Helper()
	s, err := pgmeta.Open(context.Background(), itest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store { return open(t) })
}

// TestOpenConcurrent starts several nodes on a fresh database at once: the
// advisory lock must let exactly one apply each migration.
func TestOpenConcurrent(t *testing.T) {
	url := itest.PostgresURL(t)
	ctx := context.Background()
	const nodes = 4
	stores := make([]*pgmeta.Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range nodes {
		wg.Go(func() {
			<-gate
			stores[i], errs[i] = pgmeta.Open(ctx, url)
		})
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: open: %v", i, err)
		}
		defer stores[i].Close()
	}
	// Every node works on the one schema.
	tp, err := stores[0].CreateTopic(ctx, meta.Topic{Name: "t", Kind: meta.KindKafka, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if _, err := s.TopicByID(ctx, tp.ID); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	versions := appliedVersions(t, url)
	if len(versions) == 0 || versions[0] != 1 {
		t.Fatalf("schema_migrations: %v", versions)
	}
	for i, v := range versions {
		if v != int32(i+1) {
			t.Fatalf("schema_migrations: %v", versions)
		}
	}

	// Opening again applies nothing and keeps the data.
	s, err := pgmeta.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.TopicByID(ctx, tp.ID); err != nil {
		t.Fatal(err)
	}
	if again := appliedVersions(t, url); len(again) != len(versions) {
		t.Fatalf("reopen changed schema_migrations: %v -> %v", versions, again)
	}
}

// TestOpenNewerSchema refuses a database migrated by a newer binary.
func TestOpenNewerSchema(t *testing.T) {
	url := itest.PostgresURL(t)
	ctx := context.Background()
	s, err := pgmeta.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (9999, 'future.sql')`); err != nil {
		t.Fatal(err)
	}
	if s, err := pgmeta.Open(ctx, url); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	}
}

func appliedVersions(t *testing.T, url string) []int32 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestPoolConfig checks that WithPoolConfig reaches the pool.
func TestPoolConfig(t *testing.T) {
	called := false
	s, err := pgmeta.Open(context.Background(), itest.PostgresURL(t), pgmeta.WithPoolConfig(func(c *pgxpool.Config) {
		called = true
		c.MaxConns = 2
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !called {
		t.Fatal("pool config hook not called")
	}
}

// TestCommitHoldsLeaseAgainstTakeover widens the window inside one commit
// that timing alone rarely hits: the commit has checked the lease but not
// yet advanced the partition (another transaction holds the partition row),
// the lease expires, and another node tries to take over. The takeover must
// not complete while the commit can still succeed; either the commit holds
// the lease row until it ends (this implementation) or it must fail.
func TestCommitHoldsLeaseAgainstTakeover(t *testing.T) {
	url := itest.PostgresURL(t)
	ctx := context.Background()
	s, err := pgmeta.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tp, err := s.CreateTopic(ctx, meta.Topic{Name: "t", Kind: meta.KindKafka, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second
	res := meta.PartitionResource(tp.ID, 0)
	acquired := time.Now()
	l1, err := s.AcquireLease(ctx, res, "n1", ttl)
	if err != nil {
		t.Fatal(err)
	}

	blocker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	btx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer btx.Rollback(ctx)
	if tag, err := btx.Exec(ctx, `SELECT 1 FROM partitions WHERE topic_id = $1 AND partition = 0 FOR UPDATE`, tp.ID.String()); err != nil {
		t.Fatal(err)
	} else if tag.RowsAffected() != 1 {
		t.Fatalf("locked %d partition rows", tag.RowsAffected())
	}
	// pg_stat_activity is read from its own connection: inside the
	// blocker's transaction it would be a snapshot frozen at first use.
	monitor, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer monitor.Close(ctx)
	waiting := func() int {
		var n int
		if err := monitor.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor := func(n int) {
		deadline := time.Now().Add(5 * time.Second)
		for waiting() < n {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d sessions waiting for a lock", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	var (
		order             atomic.Int32
		commitAt, acqAt   int32
		commitErr, acqErr error
		l2                meta.Lease
		wg                sync.WaitGroup
	)
	wg.Go(func() {
		commitErr = s.CommitFlush(ctx, meta.FlushCommit{LeaseEpoch: l1.Epoch, Owner: "n1", Segment: meta.Segment{
			TopicID: tp.ID, BaseOffset: 0, EndOffset: 5, ObjectKey: "n1-0", Size: 1}})
		commitAt = order.Add(1)
	})
	waitFor(1) // the commit is parked on the partition row
	time.Sleep(time.Until(acquired.Add(ttl + 200*time.Millisecond)))
	wg.Go(func() {
		l2, acqErr = s.AcquireLease(ctx, res, "n2", time.Minute)
		acqAt = order.Add(1)
	})
	waitFor(2) // the takeover is parked on the lease row (or already done)
	time.Sleep(100 * time.Millisecond)
	if err := btx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	if acqErr != nil {
		t.Fatalf("takeover: %v", acqErr)
	}
	if l2.Epoch != l1.Epoch+1 {
		t.Fatalf("takeover epoch %d after %d", l2.Epoch, l1.Epoch)
	}
	switch {
	case commitErr == nil && acqAt < commitAt:
		t.Fatal("the old owner's commit succeeded after another node took the lease over")
	case commitErr != nil && !errors.Is(commitErr, meta.ErrFenced):
		t.Fatalf("commit: %v", commitErr)
	}
	t.Logf("commit finished %d (err %v), takeover finished %d", commitAt, commitErr, acqAt)
}

func BenchmarkCommitFlush(b *testing.B) {
	metatest.BenchCommitFlush(b, func(b *testing.B) meta.Store { return open(b) })
}
