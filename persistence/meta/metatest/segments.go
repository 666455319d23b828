package metatest

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/morax-dev/morax/persistence/meta"
)

// threeSegments commits [0,10), [10,20), [20,30) with max timestamps 100,
// 300, 200 and sizes 100, 200, 300.
func threeSegments(t testing.TB, s meta.Store) (meta.Topic, []meta.FlushCommit) {
	tp := createTopic(t, s, "t", 1)
	l := acquire(t, s, tp.ID, 0, "n1", longTTL)
	var cs []meta.FlushCommit
	for i, ts := range []int64{100, 300, 200} {
		c := commit(tp.ID, 0, l, int64(i)*10, 10)
		c.Segment.MaxTimestamp = ts
		c.Segment.Size = int64(i+1) * 100
		must(t, meta.CommitFlush(ctxFor(t), s, c), "commit")
		cs = append(cs, c)
	}
	return tp, cs
}

func testSegments(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp, cs := threeSegments(t, s)
	bases := func(from int64, limit int) []int64 {
		t.Helper()
		segs, err := s.Segments(ctx, tp.ID, 0, from, limit)
		must(t, err, "segments")
		var out []int64
		for _, sg := range segs {
			out = append(out, sg.BaseOffset)
		}
		return out
	}
	cases := []struct {
		from  int64
		limit int
		want  []int64
	}{
		{0, 0, []int64{0, 10, 20}},
		{-5, 0, []int64{0, 10, 20}},
		{9, 0, []int64{0, 10, 20}},
		{10, 0, []int64{10, 20}}, // [0,10) ends at 10, not above it
		{15, 0, []int64{10, 20}},
		{29, 0, []int64{20}},
		{30, 0, nil},
		{1000, 0, nil},
		{0, 1, []int64{0}},
		{0, 2, []int64{0, 10}},
		{12, 1, []int64{10}},
		{0, -1, []int64{0, 10, 20}},
	}
	for _, c := range cases {
		if got := bases(c.from, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("Segments(from %d, limit %d) bases = %v, want %v", c.from, c.limit, got, c.want)
		}
	}
	if segs, err := s.Segments(ctx, tp.ID, 1, 0, 0); err != nil || len(segs) != 0 {
		t.Fatalf("segments of a missing partition: %v, %v", segs, err)
	}

	for ts, want := range map[int64]int64{0: 0, 100: 0, 101: 10, 250: 10, 300: 10} {
		sg, err := s.SegmentByTimestamp(ctx, tp.ID, 0, ts)
		must(t, err, fmt.Sprintf("segment by timestamp %d", ts))
		if sg.BaseOffset != want {
			t.Errorf("SegmentByTimestamp(%d) = [%d, %d), want base %d", ts, sg.BaseOffset, sg.EndOffset, want)
		}
		if sg.ObjectKey != cs[want/10].Segment.ObjectKey || sg.TopicID != tp.ID {
			t.Errorf("SegmentByTimestamp(%d) = %+v", ts, sg)
		}
	}
	_, err := s.SegmentByTimestamp(ctx, tp.ID, 0, 301)
	wantErr(t, err, meta.ErrNotFound, "timestamp after every segment")
	_, err = s.SegmentByTimestamp(ctx, tp.ID, 1, 0)
	wantErr(t, err, meta.ErrNotFound, "timestamp in a missing partition")
}

func testAdvanceLogStart(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp, cs := threeSegments(t, s)
	key := func(i int) string { return cs[i].Segment.ObjectKey }
	advance := func(to, wantStart int64, wantKeys ...string) {
		t.Helper()
		start, keys, err := s.AdvanceLogStart(ctx, tp.ID, 0, to)
		must(t, err, fmt.Sprintf("advance to %d", to))
		sort.Strings(keys)
		sort.Strings(wantKeys)
		if start != wantStart || !slices.Equal(keys, wantKeys) {
			t.Fatalf("AdvanceLogStart(%d) = %d, %q; want %d, %q", to, start, keys, wantStart, wantKeys)
		}
		if pt := partition(t, s, tp.ID, 0); pt.LogStartOffset != wantStart {
			t.Fatalf("log start offset %d, want %d", pt.LogStartOffset, wantStart)
		}
	}
	advance(5, 5) // inside the first segment: nothing is wholly below
	advance(15, 15, key(0))
	if pt := partition(t, s, tp.ID, 0); pt.Bytes != 500 || pt.NextOffset != 30 {
		t.Fatalf("partition after dropping the first segment: %+v", pt)
	}
	if got := segments(t, s, tp.ID, 0); len(got) != 2 || got[0].BaseOffset != 10 {
		t.Fatalf("segments after advance: %+v", got)
	}
	advance(3, 15) // never backwards
	advance(20, 20, key(1))
	advance(1000, 30, key(2)) // never past the next offset
	if pt := partition(t, s, tp.ID, 0); pt.Bytes != 0 || pt.NextOffset != 30 || pt.LogStartOffset != 30 {
		t.Fatalf("partition after dropping everything: %+v", pt)
	}
	advance(31, 30)

	// The log continues after the start.
	l, err := s.AcquireLease(ctx, meta.PartitionResource(tp.ID, 0), "n1", longTTL)
	must(t, err, "lease")
	must(t, meta.CommitFlush(ctx, s, commit(tp.ID, 0, l, 30, 5)), "commit after truncation")
	checkDense(t, s, tp.ID, 0)

	_, _, err = s.AdvanceLogStart(ctx, tp.ID, 1, 0)
	wantErr(t, err, meta.ErrNotFound, "missing partition")
}

func testCommittedKeys(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	_, cs := threeSegments(t, s)
	got, err := s.CommittedKeys(ctx, []string{cs[0].Segment.ObjectKey, "orphan", cs[2].Segment.ObjectKey})
	must(t, err, "committed keys")
	want := map[string]bool{cs[0].Segment.ObjectKey: true, "orphan": false, cs[2].Segment.ObjectKey: true}
	if len(got) != len(want) {
		t.Fatalf("CommittedKeys = %v, want %v", got, want)
	}
	for k, v := range want {
		if b, ok := got[k]; !ok || b != v {
			t.Fatalf("CommittedKeys = %v, want %v", got, want)
		}
	}
	got, err = s.CommittedKeys(ctx, nil)
	must(t, err, "committed keys of nothing")
	if len(got) != 0 {
		t.Fatalf("CommittedKeys(nil) = %v", got)
	}
	// Many keys at once (the orphan sweep lists objects a page at a time).
	many := make([]string, 0, 1000)
	for i := range 1000 {
		many = append(many, fmt.Sprintf("k-%d", i))
	}
	many = append(many, cs[1].Segment.ObjectKey)
	got, err = s.CommittedKeys(ctx, many)
	must(t, err, "committed keys, many")
	n := 0
	for _, v := range got {
		if v {
			n++
		}
	}
	if len(got) != len(many) || n != 1 || !got[cs[1].Segment.ObjectKey] {
		t.Fatalf("CommittedKeys(many): %d entries, %d true", len(got), n)
	}
}

// testSharedObjectDeletion: deleting segments returns an object's key only
// once no segment references it, and then exactly once.
func testSharedObjectDeletion(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	a := createTopic(t, s, "a", 1)
	b := createTopic(t, s, "b", 1)
	la := acquire(t, s, a.ID, 0, "n1", longTTL)
	lb := acquire(t, s, b.ID, 0, "n1", longTTL)

	// shared holds a/0 [0, 5), b/0 [0, 3) and a/0 [5, 10).
	cs := []meta.FlushCommit{commit(a.ID, 0, la, 0, 5), commit(b.ID, 0, lb, 0, 3), commit(a.ID, 0, la, 5, 5)}
	shared := packed(cs)
	commitAll(t, s, cs, "commit the shared object")
	// own holds only a/0 [10, 12) and [12, 14).
	cs = []meta.FlushCommit{commit(a.ID, 0, la, 10, 2), commit(a.ID, 0, la, 12, 2)}
	own := packed(cs)
	commitAll(t, s, cs, "commit a's own object")
	// last holds a/0 [14, 15), which stays.
	commitAll(t, s, []meta.FlushCommit{commit(a.ID, 0, la, 14, 1)}, "commit a's last segment")

	keysAre := func(what string, got []string, want ...string) {
		t.Helper()
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s returned keys %q, want %q", what, got, want)
		}
	}
	if got := committed(t, s, shared, own); !got[shared] || !got[own] {
		t.Fatalf("CommittedKeys before any deletion: %v", got)
	}

	// Dropping all of a's segments in both objects frees own (once, though
	// two segments were in it) but not shared, which b still uses.
	start, keys, err := s.AdvanceLogStart(ctx, a.ID, 0, 14)
	must(t, err, "advance a")
	if start != 14 {
		t.Fatalf("log start %d, want 14", start)
	}
	keysAre("AdvanceLogStart past a's segments", keys, own)
	if got := committed(t, s, shared, own); !got[shared] || got[own] {
		t.Fatalf("CommittedKeys after advancing a: %v", got)
	}
	if segs := checkDense(t, s, a.ID, 0); len(segs) != 1 || segs[0].BaseOffset != 14 {
		t.Fatalf("a's segments after advancing: %+v", segs)
	}

	// Deleting b drops the last segment in shared: its key, once.
	keys, err = s.DeleteTopic(ctx, "b")
	must(t, err, "delete b")
	keysAre("DeleteTopic(b)", keys, shared)
	if got := committed(t, s, shared, own); got[shared] || got[own] {
		t.Fatalf("CommittedKeys after deleting b: %v", got)
	}

	// A topic whose segments share one object with each other only.
	c := createTopic(t, s, "c", 2)
	lc0 := acquire(t, s, c.ID, 0, "n1", longTTL)
	lc1 := acquire(t, s, c.ID, 1, "n1", longTTL)
	cs = []meta.FlushCommit{commit(c.ID, 0, lc0, 0, 1), commit(c.ID, 1, lc1, 0, 1), commit(c.ID, 0, lc0, 1, 1)}
	cKey := packed(cs)
	commitAll(t, s, cs, "commit c")
	keys, err = s.DeleteTopic(ctx, "c")
	must(t, err, "delete c")
	keysAre("DeleteTopic(c)", keys, cKey)

	// Nothing freed, nothing returned.
	_, keys, err = s.AdvanceLogStart(ctx, a.ID, 0, 14)
	must(t, err, "advance a again")
	keysAre("AdvanceLogStart dropping nothing", keys)
}
