package metatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

func testCommitFlush(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 2)
	l := acquire(t, s, tp.ID, 1, "n1", longTTL)

	c := commit(tp.ID, 1, l, 0, 5)
	c.Segment.Size = 4096
	c.Segment.Position = 1 << 33 // past 32 bits: the column must hold an int64
	c.Segment.MaxTimestamp = 1_700_000_000_123
	c.Segment.Index = []segment.IndexEntry{{Offset: 0, Position: 0}, {Offset: 2, Position: 1500}, {Offset: 4, Position: 3000}}
	c.Producers = []meta.ProducerState{
		{ProducerID: 42, ProducerEpoch: 3, LastUpdate: 1_700_000_000_000, Batches: []meta.ProducerBatch{
			{FirstSeq: 0, LastSeq: 1, BaseOffset: 0, LastOffset: 1, Timestamp: 10},
			{FirstSeq: 2, LastSeq: 4, BaseOffset: 2, LastOffset: 4, Timestamp: 11},
		}},
		{ProducerID: 7, ProducerEpoch: 0, LastUpdate: 5},
	}
	must(t, meta.CommitFlush(ctx, s, c), "commit")

	pt := partition(t, s, tp.ID, 1)
	if pt.NextOffset != 5 || pt.Bytes != 4096 || pt.LogStartOffset != 0 {
		t.Fatalf("partition after commit: %+v", pt)
	}
	if other := partition(t, s, tp.ID, 0); other.NextOffset != 0 {
		t.Fatalf("other partition moved: %+v", other)
	}
	segs := segments(t, s, tp.ID, 1)
	if len(segs) != 1 {
		t.Fatalf("segments: %+v", segs)
	}
	sg := segs[0]
	want := c.Segment
	if sg.TopicID != want.TopicID || sg.Partition != 1 || sg.BaseOffset != 0 || sg.EndOffset != 5 ||
		sg.ObjectKey != want.ObjectKey || sg.Position != want.Position || sg.Size != 4096 || sg.Epoch != l.Epoch ||
		sg.MaxTimestamp != want.MaxTimestamp {
		t.Fatalf("segment\n got %+v\nwant %+v", sg, want)
	}
	if !slices.Equal(sg.Index, want.Index) {
		t.Fatalf("index round trip: got %v, want %v", sg.Index, want.Index)
	}
	if sg.CreatedAt.IsZero() || time.Since(sg.CreatedAt) > time.Hour {
		t.Fatalf("segment created at %v", sg.CreatedAt)
	}
	ps, err := s.Producers(ctx, tp.ID, 1)
	must(t, err, "producers")
	sameProducers(t, ps, []meta.ProducerState{c.Producers[1], c.Producers[0]})

	// The next commit continues where the last ended.
	c2 := commit(tp.ID, 1, l, 5, 3)
	c2.Segment.Index = nil // an empty index round-trips as empty
	must(t, meta.CommitFlush(ctx, s, c2), "second commit")
	segs = checkDense(t, s, tp.ID, 1)
	if len(segs) != 2 || len(segs[1].Index) != 0 {
		t.Fatalf("after second commit: %+v", segs)
	}
}

// nothingWritten checks that a refused commit left no trace.
func nothingWritten(t testing.TB, s meta.Store, c meta.FlushCommit, before meta.Partition, segsBefore int) {
	t.Helper()
	id, p := c.Segment.TopicID, c.Segment.Partition
	if after := partition(t, s, id, p); after != before {
		t.Fatalf("refused commit changed the partition: %+v -> %+v", before, after)
	}
	if n := len(segments(t, s, id, p)); n != segsBefore {
		t.Fatalf("refused commit changed the segment count: %d -> %d", segsBefore, n)
	}
	got, err := s.CommittedKeys(ctxFor(t), []string{c.Segment.ObjectKey})
	must(t, err, "committed keys")
	if got[c.Segment.ObjectKey] {
		t.Fatal("refused commit's object key is committed")
	}
	ps, err := s.Producers(ctxFor(t), id, p)
	must(t, err, "producers")
	for _, st := range ps {
		if st.ProducerID == 999 {
			t.Fatal("refused commit saved producer state")
		}
	}
}

// refused is a commit carrying producer 999, which nothingWritten looks for.
func refused(c meta.FlushCommit) meta.FlushCommit {
	c.Producers = []meta.ProducerState{{ProducerID: 999, Batches: []meta.ProducerBatch{{LastSeq: 1}}}}
	return c
}

func testCommitOffsetMismatch(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 1)
	l := acquire(t, s, tp.ID, 0, "n1", longTTL)
	must(t, meta.CommitFlush(ctx, s, commit(tp.ID, 0, l, 0, 10)), "commit")
	before := partition(t, s, tp.ID, 0)
	for _, base := range []int64{0, 5, 9, 11, 100} {
		c := refused(commit(tp.ID, 0, l, base, 3))
		wantErr(t, meta.CommitFlush(ctx, s, c), meta.ErrOffsetMismatch, fmt.Sprintf("commit at %d", base))
		nothingWritten(t, s, c, before, 1)
	}
	must(t, meta.CommitFlush(ctx, s, commit(tp.ID, 0, l, 10, 1)), "commit at next offset")

	// A commit to a partition that does not exist, under a lease someone
	// holds for it, is not found.
	ghost := meta.TopicID{0xee}
	gl := acquire(t, s, ghost, 0, "n1", longTTL)
	wantErr(t, meta.CommitFlush(ctx, s, commit(ghost, 0, gl, 0, 1)), meta.ErrNotFound, "commit to missing partition")
}

func testCommitFenced(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 1)
	l1 := acquire(t, s, tp.ID, 0, "n1", longTTL)
	must(t, meta.CommitFlush(ctx, s, commit(tp.ID, 0, l1, 0, 10)), "commit")
	before := partition(t, s, tp.ID, 0)

	// No lease row at all for another partition's resource.
	wantErr(t, meta.CommitFlush(ctx, s, commit(tp.ID, 1, l1, 0, 1)), meta.ErrFenced, "commit without a lease")

	cases := map[string]meta.FlushCommit{
		"wrong epoch": refused(commit(tp.ID, 0, meta.Lease{Owner: "n1", Epoch: 2}, 10, 5)),
		"other owner": refused(commit(tp.ID, 0, meta.Lease{Owner: "n2", Epoch: 1}, 10, 5)),
		// Fencing wins over an offset mismatch: a stale writer must stop,
		// not retry at another offset.
		"wrong epoch and offset": refused(commit(tp.ID, 0, meta.Lease{Owner: "n1", Epoch: 0}, 3, 5)),
	}
	for name, c := range cases {
		wantErr(t, meta.CommitFlush(ctx, s, c), meta.ErrFenced, name)
		nothingWritten(t, s, c, before, 1)
	}

	// Another node takes over after a release: the old epoch is fenced, the
	// new owner continues at the same offset.
	must(t, s.ReleaseLease(ctx, meta.PartitionResource(tp.ID, 0), "n1", l1.Epoch), "release")
	c := refused(commit(tp.ID, 0, l1, 10, 5))
	wantErr(t, meta.CommitFlush(ctx, s, c), meta.ErrFenced, "commit after release")
	nothingWritten(t, s, c, before, 1)
	l2 := acquire(t, s, tp.ID, 0, "n2", longTTL)
	if l2.Epoch != l1.Epoch+1 {
		t.Fatalf("takeover epoch %d after %d", l2.Epoch, l1.Epoch)
	}
	c = refused(commit(tp.ID, 0, l1, 10, 5))
	wantErr(t, meta.CommitFlush(ctx, s, c), meta.ErrFenced, "commit by the old owner after takeover")
	nothingWritten(t, s, c, before, 1)
	c = refused(commit(tp.ID, 0, meta.Lease{Owner: "n1", Epoch: l2.Epoch}, 10, 5))
	wantErr(t, meta.CommitFlush(ctx, s, c), meta.ErrFenced, "old owner with the new epoch")
	nothingWritten(t, s, c, before, 1)
	must(t, meta.CommitFlush(ctx, s, commit(tp.ID, 0, l2, 10, 5)), "commit by the new owner")
	segs := checkDense(t, s, tp.ID, 0)
	if len(segs) != 2 || segs[0].Epoch != l1.Epoch || segs[1].Epoch != l2.Epoch {
		t.Fatalf("segments: %+v", segs)
	}
}

func testCommitExpiredLease(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 1)
	const ttl = 300 * time.Millisecond
	l := acquire(t, s, tp.ID, 0, "n1", ttl)
	time.Sleep(ttl + 100*time.Millisecond)
	before := partition(t, s, tp.ID, 0)
	c := refused(commit(tp.ID, 0, l, 0, 5))
	wantErr(t, meta.CommitFlush(ctx, s, c), meta.ErrFenced, "commit under an expired lease nobody took")
	nothingWritten(t, s, c, before, 0)
}

func testCommitInvalid(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 1)
	l := acquire(t, s, tp.ID, 0, "n1", longTTL)
	bad := map[string]func(*meta.FlushCommit){
		"empty range":       func(c *meta.FlushCommit) { c.Segment.EndOffset = c.Segment.BaseOffset },
		"negative range":    func(c *meta.FlushCommit) { c.Segment.EndOffset = c.Segment.BaseOffset - 1 },
		"negative base":     func(c *meta.FlushCommit) { c.Segment.BaseOffset = -1 },
		"no key":            func(c *meta.FlushCommit) { c.Segment.ObjectKey = "" },
		"no owner":          func(c *meta.FlushCommit) { c.Owner = "" },
		"negative size":     func(c *meta.FlushCommit) { c.Segment.Size = -1 },
		"negative position": func(c *meta.FlushCommit) { c.Segment.Position = -1 },
		"index not ascending": func(c *meta.FlushCommit) {
			c.Segment.Index = []segment.IndexEntry{{Offset: 0, Position: 0}, {Offset: 3, Position: 100}, {Offset: 2, Position: 200}}
		},
		"index outside the segment": func(c *meta.FlushCommit) {
			c.Segment.Index = []segment.IndexEntry{{Offset: 0, Position: 0}, {Offset: 5, Position: 100}}
		},
	}
	for name, f := range bad {
		c := commit(tp.ID, 0, l, 0, 5)
		f(&c)
		wantErr(t, meta.CommitFlush(ctx, s, c), meta.ErrInvalid, name)
	}
	// One invalid flush fails the whole call, the valid ones with it.
	for name, f := range bad {
		c := commit(tp.ID, 0, l, 0, 5)
		f(&c)
		// Alone, good would commit: the check below the loop shows it did
		// not.
		good := commit(tp.ID, 0, l, 0, 5)
		res, err := s.CommitFlushes(ctx, []meta.FlushCommit{good, c})
		wantErr(t, err, meta.ErrInvalid, "call with one flush "+name)
		if res != nil {
			t.Fatalf("call with one flush %s: results %v beside the error", name, res)
		}
	}
	for _, cs := range [][]meta.FlushCommit{nil, {}} {
		_, err := s.CommitFlushes(ctx, cs)
		wantErr(t, err, meta.ErrInvalid, fmt.Sprintf("call with %#v", cs))
	}
	if pt := partition(t, s, tp.ID, 0); pt.NextOffset != 0 {
		t.Fatalf("invalid commits moved the partition: %+v", pt)
	}

	// Reusing an object's slice (its key at the same position) is refused
	// and stores nothing.
	c := commit(tp.ID, 0, l, 0, 5)
	c.Segment.Position = 64
	must(t, meta.CommitFlush(ctx, s, c), "commit")
	before := partition(t, s, tp.ID, 0)
	dup := refused(commit(tp.ID, 0, l, 5, 5))
	dup.Segment.ObjectKey, dup.Segment.Position = c.Segment.ObjectKey, c.Segment.Position
	if err := meta.CommitFlush(ctx, s, dup); err == nil {
		t.Fatal("commit reusing an object slice succeeded")
	}
	nothingWrittenShared(t, s, dup, before, 1)
	// The same key at another position is another slice: allowed.
	next := commit(tp.ID, 0, l, 5, 5)
	next.Segment.ObjectKey, next.Segment.Position = c.Segment.ObjectKey, c.Segment.Position+c.Segment.Size
	must(t, meta.CommitFlush(ctx, s, next), "commit at another position of the same object")
	checkDense(t, s, tp.ID, 0)
}

// nothingWrittenShared is nothingWritten for a refused commit whose object
// key other segments hold: the key stays committed, everything else must
// be unchanged.
func nothingWrittenShared(t testing.TB, s meta.Store, c meta.FlushCommit, before meta.Partition, segsBefore int) {
	t.Helper()
	id, p := c.Segment.TopicID, c.Segment.Partition
	if after := partition(t, s, id, p); after != before {
		t.Fatalf("refused commit changed the partition: %+v -> %+v", before, after)
	}
	segs := segments(t, s, id, p)
	if len(segs) != segsBefore {
		t.Fatalf("refused commit changed the segment count: %d -> %d", segsBefore, len(segs))
	}
	for _, sg := range segs {
		if sg.BaseOffset == c.Segment.BaseOffset {
			t.Fatalf("refused commit's segment is stored: %+v", sg)
		}
	}
	ps, err := s.Producers(ctxFor(t), id, p)
	must(t, err, "producers")
	for _, st := range ps {
		if st.ProducerID == 999 {
			t.Fatal("refused commit saved producer state")
		}
	}
}

// testCommitCanceled: a commit whose context is already done is refused
// and leaves nothing behind, so a caller that gave up before calling can
// retry safely.
func testCommitCanceled(t *testing.T, s meta.Store) {
	tp := createTopic(t, s, "t", 1)
	l := acquire(t, s, tp.ID, 0, "n1", longTTL)
	before := partition(t, s, tp.ID, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := refused(commit(tp.ID, 0, l, 0, 5))
	if err := meta.CommitFlush(ctx, s, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit with a canceled context: %v", err)
	}
	nothingWritten(t, s, c, before, 0)
	c2 := refused(commit(tp.ID, 0, l, 5, 5))
	if _, err := s.CommitFlushes(ctx, []meta.FlushCommit{c, c2}); !errors.Is(err, context.Canceled) {
		t.Fatalf("call of two flushes with a canceled context: %v", err)
	}
	nothingWritten(t, s, c, before, 0)
	nothingWritten(t, s, c2, before, 0)
	must(t, meta.CommitFlush(ctxFor(t), s, commit(tp.ID, 0, l, 0, 5)), "commit after the canceled one")
}

// testCommitRace has many writers, all holding the lease (a bug the store
// must survive), commit the same offset at once: exactly one wins.
func testCommitRace(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 1)
	l := acquire(t, s, tp.ID, 0, "n1", longTTL)
	must(t, meta.CommitFlush(ctx, s, commit(tp.ID, 0, l, 0, 7)), "first commit")

	const n = 16
	var (
		wg       sync.WaitGroup
		won      atomic.Int32
		mismatch atomic.Int32
	)
	gate := make(chan struct{})
	for range n {
		wg.Go(func() {
			c := commit(tp.ID, 0, l, 7, 3)
			<-gate
			err := meta.CommitFlush(ctx, s, c)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, meta.ErrOffsetMismatch):
				mismatch.Add(1)
			default:
				t.Errorf("racing commit: %v", err)
			}
		})
	}
	close(gate)
	wg.Wait()
	if won.Load() != 1 || mismatch.Load() != n-1 {
		t.Fatalf("%d commits won and %d lost with a mismatch, want 1 and %d", won.Load(), mismatch.Load(), n-1)
	}
	segs := checkDense(t, s, tp.ID, 0)
	if len(segs) != 2 || partition(t, s, tp.ID, 0).NextOffset != 10 {
		t.Fatalf("after the race: %+v", segs)
	}
}

// testCommitDenseChain has several writers race to extend one partition,
// each retrying from the committed next offset after losing; the result is
// one dense log holding exactly the commits that succeeded.
func testCommitDenseChain(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 1)
	l := acquire(t, s, tp.ID, 0, "n1", longTTL)
	const writers, target = 4, 40
	var (
		wg       sync.WaitGroup
		won      atomic.Int32
		records  atomic.Int64
		attempts atomic.Int32
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; won.Load() < target; i++ {
				pt, err := s.Partition(ctx, tp.ID, 0)
				if err != nil {
					t.Errorf("partition: %v", err)
					return
				}
				n := int64(1 + (w+i)%4)
				attempts.Add(1)
				err = meta.CommitFlush(ctx, s, commit(tp.ID, 0, l, pt.NextOffset, n))
				switch {
				case err == nil:
					won.Add(1)
					records.Add(n)
				case errors.Is(err, meta.ErrOffsetMismatch):
				default:
					t.Errorf("commit: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	segs := checkDense(t, s, tp.ID, 0)
	if int32(len(segs)) != won.Load() {
		t.Fatalf("%d segments for %d successful commits", len(segs), won.Load())
	}
	if len(segs) == 0 || segs[0].BaseOffset != 0 || segs[len(segs)-1].EndOffset != records.Load() {
		t.Fatalf("log covers [%d, %d), %d records were committed", segs[0].BaseOffset, segs[len(segs)-1].EndOffset, records.Load())
	}
	t.Logf("%d commits succeeded of %d attempts", won.Load(), attempts.Load())
}

// testCommitTakeover has a writer commit in a loop, never renewing, while
// another node waits for its lease to expire and takes over. Once the
// takeover has returned, no commit of the old owner may land: the database
// fences it, whatever the old owner's timing.
func testCommitTakeover(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 1)
	// The old owner commits once under a long lease, then shortens it with
	// a renewal, so the test does not depend on how fast the first commit
	// is under load.
	l1 := acquire(t, s, tp.ID, 0, "n1", longTTL)
	must(t, meta.CommitFlush(ctx, s, commit(tp.ID, 0, l1, 0, 2)), "first commit")
	_, err := s.RenewLease(ctx, meta.PartitionResource(tp.ID, 0), "n1", l1.Epoch, 500*time.Millisecond)
	must(t, err, "shorten the lease")

	var (
		wg      sync.WaitGroup
		fenced  atomic.Bool
		commits atomic.Int32
	)
	commits.Add(1)
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			pt, err := s.Partition(ctx, tp.ID, 0)
			if err != nil {
				t.Errorf("partition: %v", err)
				return
			}
			err = meta.CommitFlush(ctx, s, commit(tp.ID, 0, l1, pt.NextOffset, 2))
			switch {
			case err == nil:
				if fenced.Load() {
					t.Errorf("old owner committed after being fenced")
				}
				commits.Add(1)
			case errors.Is(err, meta.ErrFenced):
				fenced.Store(true)
			case errors.Is(err, meta.ErrOffsetMismatch):
				// The new owner committed between our read and our commit.
			default:
				t.Errorf("old owner commit: %v", err)
				return
			}
		}
	})

	var l2 meta.Lease
	eventually(t, 10*time.Second, "takeover", func() bool {
		l, err := s.AcquireLease(ctx, meta.PartitionResource(tp.ID, 0), "n2", longTTL)
		if errors.Is(err, meta.ErrLeaseHeld) {
			return false
		}
		must(t, err, "takeover")
		l2 = l
		return true
	})
	// Everything the old owner will ever commit is committed by now.
	frontier := partition(t, s, tp.ID, 0).NextOffset
	for i := range 3 {
		pt := partition(t, s, tp.ID, 0)
		must(t, meta.CommitFlush(ctx, s, commit(tp.ID, 0, l2, pt.NextOffset, 3)), fmt.Sprintf("new owner commit %d", i))
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if !fenced.Load() {
		// The loop may not have tried again after the takeover; make sure.
		pt := partition(t, s, tp.ID, 0)
		wantErr(t, meta.CommitFlush(ctx, s, commit(tp.ID, 0, l1, pt.NextOffset, 1)), meta.ErrFenced, "old owner after takeover")
	}
	segs := checkDense(t, s, tp.ID, 0)
	for _, sg := range segs {
		if sg.Epoch == l1.Epoch && sg.EndOffset > frontier {
			t.Fatalf("old owner's segment [%d, %d) landed after the takeover (frontier %d)", sg.BaseOffset, sg.EndOffset, frontier)
		}
		if sg.Epoch == l2.Epoch && sg.BaseOffset < frontier {
			t.Fatalf("new owner's segment [%d, %d) is below the frontier %d", sg.BaseOffset, sg.EndOffset, frontier)
		}
	}
	t.Logf("old owner committed %d times before the takeover at offset %d", commits.Load(), frontier)
}
