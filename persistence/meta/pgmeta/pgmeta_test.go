package pgmeta_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/metatest"
	"github.com/morax-dev/morax/persistence/meta/pgmeta"
	"github.com/morax-dev/morax/persistence/segment"
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
		commitAt, acqAt   time.Time
		commitErr, acqErr error
		l2                meta.Lease
		wg                sync.WaitGroup
	)
	wg.Go(func() {
		commitErr = meta.CommitFlush(ctx, s, meta.FlushCommit{LeaseEpoch: l1.Epoch, Owner: "n1", Segment: meta.Segment{
			TopicID: tp.ID, BaseOffset: 0, EndOffset: 5, ObjectKey: "n1-0", Size: 1}})
		commitAt = time.Now()
	})
	waitFor(1) // the commit is parked on the partition row
	time.Sleep(time.Until(acquired.Add(ttl + 200*time.Millisecond)))
	wg.Go(func() {
		l2, acqErr = s.AcquireLease(ctx, res, "n2", time.Minute)
		acqAt = time.Now()
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
	// A takeover that did not wait for the commit would have finished
	// before the blocker let the commit go, at least the 100 ms slept
	// above earlier than the commit; a few milliseconds either way are
	// only the two goroutines waking in either order.
	switch {
	case commitErr == nil && acqAt.Before(commitAt.Add(-50*time.Millisecond)):
		t.Fatalf("the old owner's commit succeeded %v after another node took the lease over", commitAt.Sub(acqAt))
	case commitErr != nil && !errors.Is(commitErr, meta.ErrFenced):
		t.Fatalf("commit: %v", commitErr)
	}
	t.Logf("commit finished %v after the takeover (err %v)", commitAt.Sub(acqAt), commitErr)
}

// execModes are every way pgx can send a batch; WithPoolConfig lets an
// operator pick one (a transaction pooler needs one without prepared
// statements), and CommitFlushes' atomicity must hold in each.
var execModes = map[string]pgx.QueryExecMode{
	"cache statement": pgx.QueryExecModeCacheStatement,
	"cache describe":  pgx.QueryExecModeCacheDescribe,
	"describe exec":   pgx.QueryExecModeDescribeExec,
	"exec":            pgx.QueryExecModeExec,
	"simple protocol": pgx.QueryExecModeSimpleProtocol,
}

// TestBatchIsOneTransaction checks what CommitFlushes relies on, against
// the real server: pgx runs a batch's statements in one implicit
// transaction, so when a later statement fails, an earlier one's effects
// are rolled back; and when none fails, all of them are committed.
func TestBatchIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	url := itest.PostgresURL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE kv (k text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for name, mode := range execModes {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = mode
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		run := func(keys ...string) error {
			b := &pgx.Batch{}
			for _, k := range keys {
				b.Queue(`INSERT INTO kv (k) VALUES ($1)`, k)
			}
			return c.SendBatch(ctx, b).Close()
		}
		stored := func(k string) bool {
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM kv WHERE k = $1`, k).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		}
		// The third insert repeats the first: a unique violation, after
		// two inserts that succeeded.
		first, second := name+"/a", name+"/b"
		if err := run(first, second, first); err == nil {
			t.Fatalf("%s: batch with a duplicate key succeeded", name)
		}
		if stored(first) || stored(second) {
			t.Fatalf("%s: a failed batch left the earlier statements' rows", name)
		}
		if err := run(first, second); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !stored(first) || !stored(second) {
			t.Fatalf("%s: a successful batch did not commit", name)
		}
		c.Close(ctx)
	}
}

// TestCommitFlushesExecModes runs the store's batched commit in every
// QueryExecMode: per-flush results come back right, and a call that fails
// stores none of its flushes.
func TestCommitFlushesExecModes(t *testing.T) {
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := pgmeta.Open(ctx, itest.PostgresURL(t), pgmeta.WithPoolConfig(func(c *pgxpool.Config) {
				c.ConnConfig.DefaultQueryExecMode = mode
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tp, err := s.CreateTopic(ctx, meta.Topic{Name: "t", Kind: meta.KindKafka, Partitions: 2})
			if err != nil {
				t.Fatal(err)
			}
			// Topic config is JSON, which some modes would send as bytea.
			if err := s.SetTopicConfig(ctx, "t", map[string]string{"retention.ms": "1"}); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Topic(ctx, "t"); err != nil || got.Config["retention.ms"] != "1" {
				t.Fatalf("topic after setting its config: %+v, %v", got, err)
			}
			var ls [2]meta.Lease
			for p := range int32(2) {
				if ls[p], err = s.AcquireLease(ctx, meta.PartitionResource(tp.ID, p), "n1", time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			flush := func(p int32, owner string, base, pos int64) meta.FlushCommit {
				return meta.FlushCommit{LeaseEpoch: ls[p].Epoch, Owner: owner, Segment: meta.Segment{
					TopicID: tp.ID, Partition: p, BaseOffset: base, EndOffset: base + 2, ObjectKey: "obj", Position: pos, Size: 10,
					Index: []segment.IndexEntry{{Offset: base, Position: 0}}},
					Producers: []meta.ProducerState{{ProducerID: 1, Batches: []meta.ProducerBatch{{LastSeq: 1}}}}}
			}
			// Partition 1's flush comes first, and partition 0's two
			// flushes are consecutive.
			res, err := s.CommitFlushes(ctx, []meta.FlushCommit{
				flush(1, "n2", 0, 0), flush(0, "n1", 0, 10), flush(0, "n1", 2, 20), flush(0, "n1", 9, 30)})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 4 || !errors.Is(res[0], meta.ErrFenced) || res[1] != nil || res[2] != nil ||
				!errors.Is(res[3], meta.ErrOffsetMismatch) {
				t.Fatalf("results %v, want fenced, nil, nil, mismatch", res)
			}
			segs, err := s.Segments(ctx, tp.ID, 0, 0, 0)
			if err != nil || len(segs) != 2 || segs[0].Position != 10 || segs[1].Position != 20 {
				t.Fatalf("segments %+v, %v", segs, err)
			}
			// Partition 1's flush is fine, partition 0's reuses a slice.
			if _, err := s.CommitFlushes(ctx, []meta.FlushCommit{flush(1, "n1", 0, 40), flush(0, "n1", 4, 20)}); err == nil {
				t.Fatal("reusing a slice succeeded")
			}
			if p, err := s.Partition(ctx, tp.ID, 1); err != nil || p.NextOffset != 0 {
				t.Fatalf("a failed call stored a flush: %+v, %v", p, err)
			}
		})
	}
}

func BenchmarkCommitFlush(b *testing.B) {
	metatest.BenchCommitFlush(b, func(b *testing.B) meta.Store { return open(b) })
}

// TestCommitFlushesWaves commits one call over many partitions, in every
// QueryExecMode, where some flushes are fenced, some mismatched, one names
// a missing partition and two partitions have two flushes each (the second
// checked against what the first did), and checks every result and what
// was stored. A second call reusing a slice fails whole and names it.
func TestCommitFlushesWaves(t *testing.T) {
	for name, mode := range execModes {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := pgmeta.Open(ctx, itest.PostgresURL(t), pgmeta.WithPoolConfig(func(c *pgxpool.Config) {
				c.ConnConfig.DefaultQueryExecMode = mode
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const parts, missing = 40, 99
			tp, err := s.CreateTopic(ctx, meta.Topic{Name: "t", Kind: meta.KindKafka, Partitions: parts})
			if err != nil {
				t.Fatal(err)
			}
			ls := map[int32]meta.Lease{}
			for _, p := range append(seq(parts), missing) {
				if ls[p], err = s.AcquireLease(ctx, meta.PartitionResource(tp.ID, p), "n1", time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			pos := int64(0)
			flush := func(p int32, base int64) meta.FlushCommit {
				pos += 10
				return meta.FlushCommit{LeaseEpoch: ls[p].Epoch, Owner: "n1", Segment: meta.Segment{
					TopicID: tp.ID, Partition: p, BaseOffset: base, EndOffset: base + 2, ObjectKey: "obj", Position: pos, Size: 10,
					Index: []segment.IndexEntry{{Offset: base, Position: 0}}},
					Producers: []meta.ProducerState{
						{ProducerID: int64(p), ProducerEpoch: 3, LastUpdate: base, Batches: []meta.ProducerBatch{{LastSeq: int32(base)}}},
						{ProducerID: 1000, LastUpdate: base, Batches: []meta.ProducerBatch{{LastSeq: int32(base)}}},
					}}
			}
			fenced := map[int32]bool{3: true, 8: true, 17: true, 30: true}
			mismatched := map[int32]bool{5: true, 12: true, 26: true}
			var cs []meta.FlushCommit
			want := map[int]error{}
			// Descending, so the call's order is not resource order.
			for p := int32(parts - 1); p >= 0; p-- {
				base := int64(0)
				if mismatched[p] {
					base = 7
				}
				f := flush(p, base)
				switch {
				case fenced[p] && p%2 == 0:
					f.Owner = "n2"
					want[len(cs)] = meta.ErrFenced
				case fenced[p]:
					f.LeaseEpoch--
					want[len(cs)] = meta.ErrFenced
				case mismatched[p]:
					want[len(cs)] = meta.ErrOffsetMismatch
				}
				cs = append(cs, f)
				if p == 20 {
					want[len(cs)] = meta.ErrNotFound
					cs = append(cs, flush(missing, 0))
				}
			}
			// Partition 0 commits twice in a row; partition 1's second flush
			// is mismatched, and a fenced partition's second flush, with the
			// right owner, still applies after its first was refused.
			want[len(cs)] = nil
			cs = append(cs, flush(0, 2))
			want[len(cs)] = meta.ErrOffsetMismatch
			cs = append(cs, flush(1, 0))
			want[len(cs)] = nil
			cs = append(cs, flush(8, 0))
			res, err := s.CommitFlushes(ctx, cs)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(cs) {
				t.Fatalf("%d results for %d flushes", len(res), len(cs))
			}
			for i, r := range res {
				if w := want[i]; (w == nil) != (r == nil) || w != nil && !errors.Is(r, w) {
					t.Errorf("flush %d (partition %d): %v, want %v", i, cs[i].Segment.Partition, r, w)
				}
			}
			for p := range int32(parts) {
				wantNext, wantSegs := int64(2), 1
				switch {
				case p == 0:
					wantNext, wantSegs = 4, 2
				case fenced[p] && p != 8 || mismatched[p]:
					wantNext, wantSegs = 0, 0
				}
				got, err := s.Partition(ctx, tp.ID, p)
				if err != nil || got.NextOffset != wantNext || got.Bytes != int64(wantSegs)*10 {
					t.Errorf("partition %d: %+v, %v; want next %d", p, got, err, wantNext)
				}
				segs, err := s.Segments(ctx, tp.ID, p, 0, 0)
				if err != nil || len(segs) != wantSegs {
					t.Errorf("partition %d segments %+v, %v; want %d", p, segs, err, wantSegs)
				}
				for i, sg := range segs {
					if sg.BaseOffset != int64(2*i) || sg.Epoch != ls[p].Epoch || sg.CreatedAt.IsZero() {
						t.Errorf("partition %d segment %d: %+v", p, i, sg)
					}
				}
				ps, err := s.Producers(ctx, tp.ID, p)
				if err != nil || len(ps) != 2*min(wantSegs, 1) {
					t.Errorf("partition %d producers %+v, %v", p, ps, err)
				}
				for _, st := range ps {
					if st.LastUpdate != wantNext-2 || len(st.Batches) != 1 || st.Batches[0].LastSeq != int32(wantNext-2) {
						t.Errorf("partition %d producer %+v, want the last flush's", p, st)
					}
				}
			}

			// A reused slice in a later wave fails the call, names the
			// flush, and stores nothing.
			reuse := []meta.FlushCommit{flush(2, 2), flush(4, 2), flush(2, 4)}
			reuse[2].Segment.Position = cs[0].Segment.Position
			if _, err := s.CommitFlushes(ctx, reuse); err == nil {
				t.Fatal("reusing a slice succeeded")
			} else if want := fmt.Sprintf("=(obj, %d) already exists", cs[0].Segment.Position); !strings.Contains(err.Error(), want) {
				t.Errorf("reuse error %q does not contain %q", err, want)
			}
			for _, p := range []int32{2, 4} {
				if got, err := s.Partition(ctx, tp.ID, p); err != nil || got.NextOffset != 2 {
					t.Errorf("a failed call stored a flush of partition %d: %+v, %v", p, got, err)
				}
			}
		})
	}
}

func seq(n int32) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(i)
	}
	return s
}
