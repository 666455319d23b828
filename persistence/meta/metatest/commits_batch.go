package metatest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/morax-dev/morax/persistence/meta"
)

// testCommitSharedObject: segments of different partitions, and
// consecutive segments of one partition, may share an object at different
// positions, and read back with their positions.
func testCommitSharedObject(t *testing.T, s meta.Store) {
	tp := createTopic(t, s, "t", 2)
	l0 := acquire(t, s, tp.ID, 0, "n1", longTTL)
	l1 := acquire(t, s, tp.ID, 1, "n1", longTTL)
	cs := []meta.FlushCommit{
		commit(tp.ID, 0, l0, 0, 5),
		commit(tp.ID, 1, l1, 0, 3),
		commit(tp.ID, 0, l0, 5, 2),
	}
	key := packed(cs)
	commitAll(t, s, cs, "commit one object's three slices")
	// A later, separate call may add a slice to an object already
	// referenced (a retry that rebuilt its object the same way would not,
	// but the store has no reason to refuse it).
	late := commit(tp.ID, 1, l1, 3, 1)
	late.Segment.ObjectKey, late.Segment.Position = key, 10_000
	must(t, meta.CommitFlush(ctxFor(t), s, late), "commit another slice of the object later")

	want := map[int32][]meta.Segment{0: {cs[0].Segment, cs[2].Segment}, 1: {cs[1].Segment, late.Segment}}
	for p, ws := range want {
		segs := checkDense(t, s, tp.ID, p)
		if len(segs) != len(ws) {
			t.Fatalf("partition %d: %d segments, want %d", p, len(segs), len(ws))
		}
		for i, sg := range segs {
			w := ws[i]
			if sg.ObjectKey != key || sg.Position != w.Position || sg.Size != w.Size ||
				sg.BaseOffset != w.BaseOffset || sg.EndOffset != w.EndOffset {
				t.Fatalf("partition %d segment %d\n got %+v\nwant %+v", p, i, sg, w)
			}
		}
	}
	sg, err := s.SegmentByTimestamp(ctxFor(t), tp.ID, 0, cs[2].Segment.MaxTimestamp)
	must(t, err, "segment by timestamp")
	if sg.Position != cs[2].Segment.Position || sg.ObjectKey != key {
		t.Fatalf("SegmentByTimestamp = %+v, want position %d of %s", sg, cs[2].Segment.Position, key)
	}
	if !committed(t, s, key)[key] {
		t.Fatal("shared object is not committed")
	}
}

// testCommitFlushesMixed: in one call, a fenced flush, one at the wrong
// offset and one to a missing partition store nothing, and the good one
// commits anyway; each flush's result says what happened to it.
func testCommitFlushesMixed(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 3)
	var ls [3]meta.Lease
	for p := range int32(3) {
		ls[p] = acquire(t, s, tp.ID, p, "n1", longTTL)
	}
	ghost := meta.TopicID{0xee}
	gl := acquire(t, s, ghost, 0, "n1", longTTL)
	var before [3]meta.Partition
	for p := range int32(3) {
		before[p] = partition(t, s, tp.ID, p)
	}

	// Out of partition order on purpose: results follow cs, whatever order
	// the store works in.
	cs := []meta.FlushCommit{
		refused(commit(tp.ID, 2, ls[2], 7, 4)),                                           // wrong base offset
		commit(tp.ID, 0, ls[0], 0, 5),                                                    // good
		refused(commit(tp.ID, 1, meta.Lease{Owner: "n2", Epoch: ls[1].Epoch}, 0, 3)),     // fenced: other owner
		refused(commit(ghost, 0, gl, 0, 1)),                                              // missing partition
		refused(commit(tp.ID, 1, meta.Lease{Owner: "n1", Epoch: ls[1].Epoch + 1}, 0, 3)), // fenced: other epoch
	}
	key := packed(cs)
	cs[1].Producers = []meta.ProducerState{{ProducerID: 5, LastUpdate: 1}}
	res, err := s.CommitFlushes(ctx, cs)
	must(t, err, "mixed call")
	if len(res) != len(cs) {
		t.Fatalf("%d results for %d flushes: %v", len(res), len(cs), res)
	}
	wantErr(t, res[0], meta.ErrOffsetMismatch, "flush at the wrong offset")
	if res[1] != nil {
		t.Fatalf("good flush: %v", res[1])
	}
	wantErr(t, res[2], meta.ErrFenced, "flush of another owner")
	wantErr(t, res[3], meta.ErrNotFound, "flush to a missing partition")
	wantErr(t, res[4], meta.ErrFenced, "flush at another epoch")

	segs := checkDense(t, s, tp.ID, 0)
	if len(segs) != 1 || segs[0].ObjectKey != key || segs[0].Position != cs[1].Segment.Position ||
		segs[0].Size != cs[1].Segment.Size || segs[0].EndOffset != 5 {
		t.Fatalf("good flush's segments: %+v (want position %d)", segs, cs[1].Segment.Position)
	}
	ps, err := s.Producers(ctx, tp.ID, 0)
	must(t, err, "producers")
	sameProducers(t, ps, cs[1].Producers)
	for _, i := range []int{0, 2, 4} {
		p := cs[i].Segment.Partition
		nothingWrittenShared(t, s, cs[i], before[p], 0)
	}
	if !committed(t, s, key)[key] {
		t.Fatal("the object the good flush is in is not committed")
	}
}

// testCommitFlushesSamePartition: several flushes of one partition in one
// call are checked in order, each against the state the ones before it
// left.
func testCommitFlushesSamePartition(t *testing.T, s meta.Store) {
	tp := createTopic(t, s, "t", 2)
	l0 := acquire(t, s, tp.ID, 0, "n1", longTTL)
	l1 := acquire(t, s, tp.ID, 1, "n1", longTTL)
	// Interleaved partitions: each partition's flushes keep their order.
	cs := []meta.FlushCommit{
		commit(tp.ID, 1, l1, 0, 2),
		commit(tp.ID, 0, l0, 0, 5),
		commit(tp.ID, 1, l1, 2, 2),
		commit(tp.ID, 0, l0, 5, 3),
		commit(tp.ID, 1, l1, 4, 1),
	}
	packed(cs)
	commitAll(t, s, cs, "consecutive flushes in one call")
	if segs := checkDense(t, s, tp.ID, 0); len(segs) != 2 || segs[1].EndOffset != 8 {
		t.Fatalf("partition 0: %+v", segs)
	}
	if segs := checkDense(t, s, tp.ID, 1); len(segs) != 3 || segs[2].EndOffset != 5 {
		t.Fatalf("partition 1: %+v", segs)
	}

	// A flush that does not follow the one before it fails alone, and the
	// next one is checked against what the call has committed so far.
	before := partition(t, s, tp.ID, 0)
	cs = []meta.FlushCommit{
		commit(tp.ID, 0, l0, 8, 2),           // [8, 10)
		refused(commit(tp.ID, 0, l0, 11, 2)), // a gap after 10
		commit(tp.ID, 0, l0, 10, 3),          // [10, 13) follows the first
		refused(commit(tp.ID, 0, l0, 10, 1)), // overlaps the third
	}
	packed(cs)
	res, err := s.CommitFlushes(ctxFor(t), cs)
	must(t, err, "call with a gap")
	if len(res) != 4 || res[0] != nil || res[2] != nil {
		t.Fatalf("results %v, want nil, mismatch, nil, mismatch", res)
	}
	wantErr(t, res[1], meta.ErrOffsetMismatch, "flush after a gap")
	wantErr(t, res[3], meta.ErrOffsetMismatch, "overlapping flush")
	segs := checkDense(t, s, tp.ID, 0)
	if pt := partition(t, s, tp.ID, 0); pt.NextOffset != 13 || pt.Bytes != before.Bytes+500 || len(segs) != 4 {
		t.Fatalf("after the call with a gap: %+v, %d segments", pt, len(segs))
	}
	ps, err := s.Producers(ctxFor(t), tp.ID, 0)
	must(t, err, "producers")
	if len(ps) != 0 {
		t.Fatalf("refused flushes saved producers: %+v", ps)
	}
}

// testCommitFlushesAllOrNothing: a flush whose slice of its object is
// already committed, or named twice in one call, fails the whole call,
// and none of its flushes is stored, not even those that passed their
// checks before it.
func testCommitFlushesAllOrNothing(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 3)
	var ls [3]meta.Lease
	for p := range int32(3) {
		ls[p] = acquire(t, s, tp.ID, p, "n1", longTTL)
	}
	first := commit(tp.ID, 2, ls[2], 0, 1)
	must(t, meta.CommitFlush(ctx, s, first), "first commit")
	var before [3]meta.Partition
	for p := range int32(3) {
		before[p] = partition(t, s, tp.ID, p)
	}
	segsBefore := [3]int{0, 0, 1}
	check := func(what string, cs []meta.FlushCommit) {
		t.Helper()
		res, err := s.CommitFlushes(ctx, cs)
		if err == nil {
			t.Fatalf("%s: call succeeded with results %v", what, res)
		}
		for _, c := range cs {
			p := c.Segment.Partition
			nothingWrittenShared(t, s, c, before[p], segsBefore[p])
		}
	}

	// The last flush reuses the committed slice: the ones before it, in
	// other partitions and in its own, passed their checks and were
	// applied, and must be undone.
	cs := []meta.FlushCommit{
		refused(commit(tp.ID, 0, ls[0], 0, 5)),
		refused(commit(tp.ID, 1, ls[1], 0, 5)),
		refused(commit(tp.ID, 2, ls[2], 1, 5)),
		refused(commit(tp.ID, 2, ls[2], 6, 5)),
	}
	packed(cs)
	cs[3].Segment.ObjectKey, cs[3].Segment.Position = first.Segment.ObjectKey, first.Segment.Position
	check("reusing a committed slice", cs)

	// Two flushes of the call name the same slice.
	cs = []meta.FlushCommit{
		refused(commit(tp.ID, 0, ls[0], 0, 5)),
		refused(commit(tp.ID, 1, ls[1], 0, 5)),
	}
	packed(cs)
	cs[1].Segment.Position = cs[0].Segment.Position
	check("one slice twice in a call", cs)

	// The call can be made again, right, and commits.
	cs = []meta.FlushCommit{commit(tp.ID, 0, ls[0], 0, 5), commit(tp.ID, 1, ls[1], 0, 5)}
	packed(cs)
	commitAll(t, s, cs, "the call made right")
}

// testCommitFlushesConcurrent has two writers (both holding every lease, a
// bug the store must survive) commit calls over overlapping sets of
// partitions at once, in opposite orders, while the owner renews all its
// leases: calls that name rows in different orders must not deadlock, and
// each partition ends up one dense log. The sets rotate, so calls do not
// all start with the same partition (which would serialize them).
func testCommitFlushesConcurrent(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const parts, span, rounds = 12, 6, 40 // 12: "10" and "11" sort before "2" as text
	tp := createTopic(t, s, "t", parts)
	ls := make([]meta.Lease, parts)
	for p := range int32(parts) {
		ls[p] = acquire(t, s, tp.ID, p, "n1", longTTL)
	}
	var (
		wg        sync.WaitGroup
		committed atomic.Int64
	)
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.RenewLeases(ctx, "n1", longTTL); err != nil {
				t.Errorf("renew leases: %v", err)
				return
			}
		}
	})
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for r := range int32(rounds) {
				cs := make([]meta.FlushCommit, 0, span)
				for i := range int32(span) {
					p := (r*5 + int32(w)*3 + i) % parts
					if w == 1 {
						p = (r*5 + int32(w)*3 + span - 1 - i) % parts
					}
					pt, err := s.Partition(ctx, tp.ID, p)
					if err != nil {
						t.Errorf("partition: %v", err)
						return
					}
					cs = append(cs, commit(tp.ID, p, ls[p], pt.NextOffset, 1+int64(w)))
				}
				packed(cs)
				res, err := s.CommitFlushes(ctx, cs)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				for i, r := range res {
					switch {
					case r == nil:
						committed.Add(1)
					case !errors.Is(r, meta.ErrOffsetMismatch):
						t.Errorf("writer %d flush %d: %v", w, i, r)
					}
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	var segs int64
	for p := range int32(parts) {
		segs += int64(len(checkDense(t, s, tp.ID, p)))
	}
	if segs != committed.Load() {
		t.Fatalf("%d segments for %d committed flushes", segs, committed.Load())
	}
	t.Logf("%d of %d flushes committed", committed.Load(), 2*rounds*span)
}
