package metatest

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
)

func testTopicCreateGet(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	before := time.Now().Add(-time.Minute) // generous: the database clock may differ a little
	tp, err := s.CreateTopic(ctx, meta.Topic{Name: "orders", Kind: meta.KindKafka, Partitions: 3,
		Config: map[string]string{"retention.ms": "1000"}})
	must(t, err, "create")
	if tp.ID == (meta.TopicID{}) {
		t.Fatal("create left the id zero")
	}
	if tp.CreatedAt.Before(before) {
		t.Fatalf("created at %v, before %v", tp.CreatedAt, before)
	}
	for _, get := range []func() (meta.Topic, error){
		func() (meta.Topic, error) { return s.Topic(ctx, "orders") },
		func() (meta.Topic, error) { return s.TopicByID(ctx, tp.ID) },
	} {
		got, err := get()
		must(t, err, "get")
		sameTopic(t, got, tp)
	}
	for p := range int32(3) {
		pt := partition(t, s, tp.ID, p)
		if pt.NextOffset != 0 || pt.LogStartOffset != 0 || pt.Bytes != 0 {
			t.Fatalf("new partition %d: %+v", p, pt)
		}
	}
	_, err = s.Partition(ctx, tp.ID, 3)
	wantErr(t, err, meta.ErrNotFound, "partition past the count")

	_, err = s.CreateTopic(ctx, meta.Topic{Name: "orders", Kind: meta.KindKafka, Partitions: 1})
	wantErr(t, err, meta.ErrExists, "duplicate name")
	_, err = s.CreateTopic(ctx, meta.Topic{ID: tp.ID, Name: "other", Kind: meta.KindKafka, Partitions: 1})
	wantErr(t, err, meta.ErrExists, "duplicate id")

	// A caller-chosen id and creation time are kept (WAL topics name their
	// own ids).
	id := meta.TopicID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	at := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	wal, err := s.CreateTopic(ctx, meta.Topic{ID: id, Name: "wal-1", Kind: meta.KindWAL, Partitions: 1, CreatedAt: at})
	must(t, err, "create wal topic")
	got, err := s.TopicByID(ctx, id)
	must(t, err, "get wal topic")
	sameTopic(t, got, wal)
	if got.ID != id || !got.CreatedAt.Equal(at) || got.Kind != meta.KindWAL || len(got.Config) != 0 {
		t.Fatalf("wal topic: %+v", got)
	}

	_, err = s.Topic(ctx, "missing")
	wantErr(t, err, meta.ErrNotFound, "missing topic")
	_, err = s.TopicByID(ctx, meta.TopicID{9})
	wantErr(t, err, meta.ErrNotFound, "missing topic id")
	_, err = s.Partition(ctx, meta.TopicID{9}, 0)
	wantErr(t, err, meta.ErrNotFound, "missing partition")
}

func sameTopic(t testing.TB, got, want meta.Topic) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Kind != want.Kind || got.Partitions != want.Partitions ||
		!got.CreatedAt.Equal(want.CreatedAt) || !sameConfig(got.Config, want.Config) {
		t.Fatalf("topic\n got %+v\nwant %+v", got, want)
	}
}

// sameConfig treats nil and empty as equal.
func sameConfig(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testTopicInvalid(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	for _, tp := range []meta.Topic{
		{Name: "", Kind: meta.KindKafka, Partitions: 1},
		{Name: "zero", Kind: meta.KindKafka, Partitions: 0},
		{Name: "kind", Kind: "bogus", Partitions: 1},
	} {
		_, err := s.CreateTopic(ctx, tp)
		wantErr(t, err, meta.ErrInvalid, fmt.Sprintf("create %+v", tp))
	}
	ts, err := s.ListTopics(ctx, "", "", 0)
	must(t, err, "list")
	if len(ts) != 0 {
		t.Fatalf("invalid creates left topics: %+v", ts)
	}
}

func testTopicList(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	// a_x checks that _ (a LIKE wildcard) is matched literally; A.1 that
	// matching is case-sensitive.
	for _, n := range []string{"a.3", "b.1", "a.1", "a_x", "a.2", "A.1", "ab"} {
		createTopic(t, s, n, 1)
	}
	list := func(prefix, after string, limit int) []string {
		t.Helper()
		ts, err := s.ListTopics(ctx, prefix, after, limit)
		must(t, err, "list")
		var names []string
		for _, tp := range ts {
			names = append(names, tp.Name)
		}
		return names
	}
	cases := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 0, []string{"A.1", "a.1", "a.2", "a.3", "a_x", "ab", "b.1"}},
		{"a.", "", 0, []string{"a.1", "a.2", "a.3"}},
		{"a_", "", 0, []string{"a_x"}},
		{"a", "", 2, []string{"a.1", "a.2"}},
		{"a", "a.2", 2, []string{"a.3", "a_x"}},
		{"a", "a_x", 2, []string{"ab"}},
		{"a", "ab", 2, nil},
		{"c", "", 0, nil},
		{"", "a.3", -1, []string{"a_x", "ab", "b.1"}},
	}
	for _, c := range cases {
		if got := list(c.prefix, c.after, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("ListTopics(%q, %q, %d) = %q, want %q", c.prefix, c.after, c.limit, got, c.want)
		}
	}
	// Paging through everything one at a time visits every topic once.
	var all []string
	for after := ""; ; {
		page := list("", after, 1)
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[0]
	}
	if len(all) != 7 {
		t.Fatalf("paged listing: %q", all)
	}
}

func testTopicDelete(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	doomed := createTopic(t, s, "doomed", 2)
	kept := createTopic(t, s, "kept", 1)

	var keys []string
	for p := range int32(2) {
		l := acquire(t, s, doomed.ID, p, "n1", longTTL)
		for i := range int64(2) {
			c := commit(doomed.ID, p, l, i*5, 5)
			c.Producers = []meta.ProducerState{{ProducerID: 7, Batches: []meta.ProducerBatch{{LastSeq: 4, LastOffset: 4}}}}
			must(t, meta.CommitFlush(ctx, s, c), "commit")
			keys = append(keys, c.Segment.ObjectKey)
		}
	}
	kl := acquire(t, s, kept.ID, 0, "n1", longTTL)
	kc := commit(kept.ID, 0, kl, 0, 3)
	must(t, meta.CommitFlush(ctx, s, kc), "commit kept")
	must(t, s.CommitOffsets(ctx, "g", []meta.OffsetCommit{
		{Topic: "doomed", Partition: 0, Offset: 3},
		{Topic: "kept", Partition: 0, Offset: 2},
	}, meta.Fence{}), "commit offsets")

	got, err := s.DeleteTopic(ctx, "doomed")
	must(t, err, "delete")
	sort.Strings(got)
	sort.Strings(keys)
	if !slices.Equal(got, keys) {
		t.Fatalf("delete returned keys %q, want %q", got, keys)
	}

	_, err = s.Topic(ctx, "doomed")
	wantErr(t, err, meta.ErrNotFound, "deleted topic by name")
	_, err = s.TopicByID(ctx, doomed.ID)
	wantErr(t, err, meta.ErrNotFound, "deleted topic by id")
	_, err = s.Partition(ctx, doomed.ID, 0)
	wantErr(t, err, meta.ErrNotFound, "deleted partition")
	if segs, err := s.Segments(ctx, doomed.ID, 0, 0, 0); err != nil || len(segs) != 0 {
		t.Fatalf("segments of deleted topic: %v, %v", segs, err)
	}
	if ps, err := s.Producers(ctx, doomed.ID, 0); err != nil || len(ps) != 0 {
		t.Fatalf("producers of deleted topic: %v, %v", ps, err)
	}
	if ls, err := s.Leases(ctx, meta.TopicResourcePrefix(doomed.ID)); err != nil || len(ls) != 0 {
		t.Fatalf("leases of deleted topic: %v, %v", ls, err)
	}
	committed, err := s.CommittedKeys(ctx, append(keys, kc.Segment.ObjectKey))
	must(t, err, "committed keys")
	for _, k := range keys {
		if committed[k] {
			t.Fatalf("key %s of deleted topic still committed", k)
		}
	}
	if !committed[kc.Segment.ObjectKey] {
		t.Fatal("key of the other topic lost")
	}
	offs, err := s.FetchOffsets(ctx, "g", nil)
	must(t, err, "fetch offsets")
	if len(offs) != 1 || offs[0].Topic != "kept" {
		t.Fatalf("offsets after delete: %+v", offs)
	}
	// The old owner is fenced: its lease went with the topic.
	err = meta.CommitFlush(ctx, s, commit(doomed.ID, 0, meta.Lease{Owner: "n1", Epoch: 1}, 10, 1))
	wantErr(t, err, meta.ErrFenced, "commit to deleted topic")

	// The other topic is untouched.
	if pt := partition(t, s, kept.ID, 0); pt.NextOffset != 3 {
		t.Fatalf("kept topic: %+v", pt)
	}
	if ls, err := s.Leases(ctx, meta.TopicResourcePrefix(kept.ID)); err != nil || len(ls) != 1 {
		t.Fatalf("leases of kept topic: %v, %v", ls, err)
	}

	// The name can be reused; the id cannot come back.
	again := createTopic(t, s, "doomed", 1)
	if again.ID == doomed.ID {
		t.Fatal("recreated topic reused the id")
	}
	if pt := partition(t, s, again.ID, 0); pt.NextOffset != 0 {
		t.Fatalf("recreated topic starts at %d", pt.NextOffset)
	}

	_, err = s.DeleteTopic(ctx, "missing")
	wantErr(t, err, meta.ErrNotFound, "delete missing")
}

func testTopicConfig(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	createTopic(t, s, "t", 1)
	must(t, s.SetTopicConfig(ctx, "t", map[string]string{"retention.ms": "5", "cleanup.policy": "delete"}), "set")
	tp, err := s.Topic(ctx, "t")
	must(t, err, "get")
	if !sameConfig(tp.Config, map[string]string{"retention.ms": "5", "cleanup.policy": "delete"}) {
		t.Fatalf("config %v", tp.Config)
	}
	// Set replaces; it does not merge.
	must(t, s.SetTopicConfig(ctx, "t", map[string]string{"retention.bytes": "9"}), "replace")
	tp, err = s.Topic(ctx, "t")
	must(t, err, "get")
	if !sameConfig(tp.Config, map[string]string{"retention.bytes": "9"}) {
		t.Fatalf("config after replace %v", tp.Config)
	}
	must(t, s.SetTopicConfig(ctx, "t", nil), "clear")
	tp, err = s.Topic(ctx, "t")
	must(t, err, "get")
	if len(tp.Config) != 0 {
		t.Fatalf("config after clear %v", tp.Config)
	}
	wantErr(t, s.SetTopicConfig(ctx, "missing", nil), meta.ErrNotFound, "set config of missing topic")
}

func testAddPartitions(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 2)
	l := acquire(t, s, tp.ID, 1, "n1", longTTL)
	must(t, meta.CommitFlush(ctx, s, commit(tp.ID, 1, l, 0, 4)), "commit")

	must(t, s.AddPartitions(ctx, "t", 4), "grow")
	got, err := s.Topic(ctx, "t")
	must(t, err, "get")
	if got.Partitions != 4 {
		t.Fatalf("partitions %d", got.Partitions)
	}
	for p := range int32(4) {
		pt := partition(t, s, tp.ID, p)
		want := int64(0)
		if p == 1 {
			want = 4 // existing partitions keep their state
		}
		if pt.NextOffset != want {
			t.Fatalf("partition %d next offset %d, want %d", p, pt.NextOffset, want)
		}
	}
	must(t, s.AddPartitions(ctx, "t", 4), "same count is a no-op")
	wantErr(t, s.AddPartitions(ctx, "t", 3), meta.ErrInvalid, "shrink")
	wantErr(t, s.AddPartitions(ctx, "missing", 3), meta.ErrNotFound, "missing topic")
	if got, _ := s.Topic(ctx, "t"); got.Partitions != 4 {
		t.Fatalf("partitions after refused shrink: %d", got.Partitions)
	}
}

// PartitionCount follows creates, growths and deletes: it is what the
// cluster's partition cap is checked against.
func testPartitionCount(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	count := func(want int64, when string) {
		t.Helper()
		n, err := s.PartitionCount(ctx)
		must(t, err, "count "+when)
		if n != want {
			t.Fatalf("partition count %s = %d, want %d", when, n, want)
		}
	}
	count(0, "of an empty store")
	createTopic(t, s, "a", 3)
	createTopic(t, s, "b", 1)
	count(4, "after two creates")
	must(t, s.AddPartitions(ctx, "a", 5), "grow")
	count(6, "after a growth")
	_, err := s.DeleteTopic(ctx, "b")
	must(t, err, "delete")
	count(5, "after a delete")
}

// testCatalogVersion checks that every kind of topic change moves the
// catalog version and that reads and non-topic writes leave it alone: the
// ownership loop skips reading the topic list while it stays the same, so
// a change that did not move it would never reach other nodes.
func testCatalogVersion(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	version := func() int64 {
		t.Helper()
		v, err := s.CatalogVersion(ctx)
		must(t, err, "catalog version")
		return v
	}
	last := version()
	step := func(what string, moves bool, op func() error) {
		t.Helper()
		must(t, op(), what)
		v := version()
		if moved := v != last; moved != moves {
			t.Fatalf("%s: catalog version %d -> %d, want moved=%v", what, last, v, moves)
		}
		last = v
	}
	var id meta.TopicID
	step("create", true, func() error {
		tp, err := s.CreateTopic(ctx, meta.Topic{Name: "cv", Kind: meta.KindKafka, Partitions: 1})
		id = tp.ID
		return err
	})
	step("read", false, func() error {
		_, err := s.ListTopics(ctx, "", "", 0)
		return err
	})
	step("lease", false, func() error {
		_, err := s.AcquireLease(ctx, meta.PartitionResource(id, 0), "n1@a", time.Minute)
		return err
	})
	step("config", true, func() error { return s.SetTopicConfig(ctx, "cv", map[string]string{"retention.ms": "5"}) })
	step("grow", true, func() error { return s.AddPartitions(ctx, "cv", 3) })
	step("delete", true, func() error {
		_, err := s.DeleteTopic(ctx, "cv")
		return err
	})
}
