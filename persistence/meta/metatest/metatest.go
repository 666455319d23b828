// Package metatest is the contract suite every meta.Store implementation
// must pass. An implementation's tests call Run with a function that opens a
// fresh, empty store; the suite then checks the behaviour the broker relies
// on, above all the fencing and dense-offset guarantees of CommitFlushes
// under concurrency.
package metatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

// longTTL is a lease ttl no test outlives, for tests that must not see a
// lease expire.
const longTTL = time.Minute

// Run runs the contract suite. open must return a new, empty store each time
// it is called; Run closes it when the subtest ends. Subtests run in
// parallel.
func Run(t *testing.T, open func(t *testing.T) meta.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s meta.Store)
	}{
		{"TopicCreateGet", testTopicCreateGet},
		{"TopicInvalid", testTopicInvalid},
		{"TopicList", testTopicList},
		{"TopicDelete", testTopicDelete},
		{"TopicConfig", testTopicConfig},
		{"AddPartitions", testAddPartitions},
		{"LeaseAcquireRenewRelease", testLeaseAcquireRenewRelease},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseList", testLeaseList},
		{"LeaseRenewAll", testLeaseRenewAll},
		{"LeaseReleaseStale", testLeaseReleaseStale},
		{"LeaseConcurrentAcquire", testLeaseConcurrentAcquire},
		{"CommitFlush", testCommitFlush},
		{"CommitFlushOffsetMismatch", testCommitOffsetMismatch},
		{"CommitFlushFenced", testCommitFenced},
		{"CommitFlushExpiredLease", testCommitExpiredLease},
		{"CommitFlushInvalid", testCommitInvalid},
		{"CommitFlushCanceled", testCommitCanceled},
		{"CommitFlushRace", testCommitRace},
		{"CommitFlushDenseChain", testCommitDenseChain},
		{"CommitFlushTakeover", testCommitTakeover},
		{"CommitFlushSharedObject", testCommitSharedObject},
		{"CommitFlushesMixed", testCommitFlushesMixed},
		{"CommitFlushesSamePartition", testCommitFlushesSamePartition},
		{"CommitFlushesAllOrNothing", testCommitFlushesAllOrNothing},
		{"CommitFlushesConcurrent", testCommitFlushesConcurrent},
		{"Segments", testSegments},
		{"AdvanceLogStart", testAdvanceLogStart},
		{"CommittedKeys", testCommittedKeys},
		{"SharedObjectDeletion", testSharedObjectDeletion},
		{"Producers", testProducers},
		{"NextProducerID", testNextProducerID},
		{"Offsets", testOffsets},
		{"Groups", testGroups},
		{"GroupWritesFenced", testGroupWritesFenced},
		{"Nodes", testNodes},
		{"NodesExpire", testNodesExpire},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// --- helpers ----------------------------------------------------------------

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func wantErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func createTopic(t testing.TB, s meta.Store, name string, parts int32) meta.Topic {
	t.Helper()
	tp, err := s.CreateTopic(ctxFor(t), meta.Topic{Name: name, Kind: meta.KindKafka, Partitions: parts})
	must(t, err, "create topic "+name)
	return tp
}

func acquire(t testing.TB, s meta.Store, id meta.TopicID, p int32, owner string, ttl time.Duration) meta.Lease {
	t.Helper()
	l, err := s.AcquireLease(ctxFor(t), meta.PartitionResource(id, p), owner, ttl)
	must(t, err, "acquire lease for "+owner)
	return l
}

// keySeq makes object keys unique across a whole test run.
var keySeq atomic.Int64

// commit builds a FlushCommit of [base, base+n) written under l.
func commit(id meta.TopicID, p int32, l meta.Lease, base, n int64) meta.FlushCommit {
	k := keySeq.Add(1)
	return meta.FlushCommit{
		LeaseEpoch: l.Epoch,
		Owner:      l.Owner,
		Segment: meta.Segment{
			TopicID:      id,
			Partition:    p,
			BaseOffset:   base,
			EndOffset:    base + n,
			ObjectKey:    fmt.Sprintf("%s/%d/%d/%020d-%d", id, p, l.Epoch, base, k),
			Size:         100 * n,
			Epoch:        l.Epoch,
			MaxTimestamp: 1_000 + base,
			Index:        []segment.IndexEntry{{Offset: base, Position: 0}},
		},
	}
}

func partition(t testing.TB, s meta.Store, id meta.TopicID, p int32) meta.Partition {
	t.Helper()
	pt, err := s.Partition(ctxFor(t), id, p)
	must(t, err, "partition")
	return pt
}

func segments(t testing.TB, s meta.Store, id meta.TopicID, p int32) []meta.Segment {
	t.Helper()
	segs, err := s.Segments(ctxFor(t), id, p, 0, 0)
	must(t, err, "segments")
	return segs
}

// checkDense fails unless the partition's segments cover [start, next)
// exactly, without gaps or overlaps, and its byte count is their sum.
func checkDense(t testing.TB, s meta.Store, id meta.TopicID, p int32) []meta.Segment {
	t.Helper()
	pt := partition(t, s, id, p)
	segs := segments(t, s, id, p)
	at, bytes := int64(-1), int64(0)
	for i, sg := range segs {
		if at >= 0 && sg.BaseOffset != at {
			t.Fatalf("segment %d is [%d, %d), previous ended at %d", i, sg.BaseOffset, sg.EndOffset, at)
		}
		at = sg.EndOffset
		bytes += sg.Size
	}
	if len(segs) > 0 && at != pt.NextOffset {
		t.Fatalf("segments end at %d, partition next offset is %d", at, pt.NextOffset)
	}
	if bytes != pt.Bytes {
		t.Fatalf("segments hold %d bytes, partition says %d", bytes, pt.Bytes)
	}
	return segs
}

// eventually polls f every 20ms until it returns true or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --- topics -----------------------------------------------------------------

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

// --- leases -----------------------------------------------------------------

func testLeaseAcquireRenewRelease(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const r = "p/test/0"
	l, err := s.AcquireLease(ctx, r, "n1", longTTL)
	must(t, err, "acquire vacant")
	if l.Resource != r || l.Owner != "n1" || l.Epoch != 1 {
		t.Fatalf("first grant: %+v", l)
	}
	if time.Until(l.ExpiresAt) < longTTL/2 {
		t.Fatalf("expires at %v, ttl %v", l.ExpiresAt, longTTL)
	}

	again, err := s.AcquireLease(ctx, r, "n1", longTTL)
	must(t, err, "acquire by owner")
	if again.Epoch != 1 || again.ExpiresAt.Before(l.ExpiresAt) {
		t.Fatalf("re-acquire by owner: %+v (was %+v)", again, l)
	}
	renewed, err := s.RenewLease(ctx, r, "n1", 1, 2*longTTL)
	must(t, err, "renew")
	if renewed.Epoch != 1 || renewed.Owner != "n1" || !renewed.ExpiresAt.After(again.ExpiresAt) {
		t.Fatalf("renew: %+v (was %+v)", renewed, again)
	}

	_, err = s.AcquireLease(ctx, r, "n2", longTTL)
	wantErr(t, err, meta.ErrLeaseHeld, "acquire held lease")
	_, err = s.RenewLease(ctx, r, "n2", 1, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew by non-owner")
	_, err = s.RenewLease(ctx, r, "n1", 2, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew at wrong epoch")
	_, err = s.RenewLease(ctx, "p/none/0", "n1", 1, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew missing lease")

	// Releasing what one does not hold changes nothing.
	must(t, s.ReleaseLease(ctx, r, "n2", 1), "release by non-owner")
	must(t, s.ReleaseLease(ctx, r, "n1", 7), "release at wrong epoch")
	must(t, s.ReleaseLease(ctx, "p/none/0", "n1", 1), "release missing")
	_, err = s.AcquireLease(ctx, r, "n2", longTTL)
	wantErr(t, err, meta.ErrLeaseHeld, "acquire after no-op releases")

	must(t, s.ReleaseLease(ctx, r, "n1", 1), "release")
	ls, err := s.Leases(ctx, r)
	must(t, err, "leases")
	if len(ls) != 1 || ls[0].Owner != "" || ls[0].Epoch != 1 {
		t.Fatalf("released lease: %+v", ls)
	}
	_, err = s.RenewLease(ctx, r, "n1", 1, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew released lease")

	l2, err := s.AcquireLease(ctx, r, "n2", longTTL)
	must(t, err, "acquire released")
	if l2.Owner != "n2" || l2.Epoch != 2 {
		t.Fatalf("grant after release: %+v", l2)
	}
	_, err = s.RenewLease(ctx, r, "n1", 1, longTTL)
	wantErr(t, err, meta.ErrFenced, "renew by previous owner")

	// The previous owner coming back after a release gets a new epoch too.
	must(t, s.ReleaseLease(ctx, r, "n2", 2), "release by n2")
	l3, err := s.AcquireLease(ctx, r, "n1", longTTL)
	must(t, err, "acquire by first owner again")
	if l3.Epoch != 3 {
		t.Fatalf("grant back to n1: %+v", l3)
	}

	for _, bad := range []struct {
		r, o string
		ttl  time.Duration
	}{{"", "n1", time.Second}, {r, "", time.Second}, {r, "n1", 0}} {
		_, err := s.AcquireLease(ctx, bad.r, bad.o, bad.ttl)
		wantErr(t, err, meta.ErrInvalid, fmt.Sprintf("acquire %+v", bad))
	}
}

func testLeaseExpiry(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const r, ttl = "g/7", 300 * time.Millisecond
	start := time.Now()
	l, err := s.AcquireLease(ctx, r, "n1", ttl)
	must(t, err, "acquire")
	if l.Epoch != 1 {
		t.Fatalf("first grant: %+v", l)
	}
	var took meta.Lease
	eventually(t, 10*time.Second, "takeover after expiry", func() bool {
		got, err := s.AcquireLease(ctx, r, "n2", longTTL)
		if errors.Is(err, meta.ErrLeaseHeld) {
			return false
		}
		must(t, err, "acquire expired")
		// The lease expires ttl after the grant by the database clock, and
		// the grant happened after start.
		if el := time.Since(start); el < ttl {
			t.Fatalf("taken over after %v, before the ttl %v", el, ttl)
		}
		took = got
		return true
	})
	if took.Owner != "n2" || took.Epoch != 2 {
		t.Fatalf("takeover: %+v", took)
	}
	_, err = s.RenewLease(ctx, r, "n1", 1, ttl)
	wantErr(t, err, meta.ErrFenced, "renew after takeover")

	// An expired lease cannot be renewed even if nobody took it: the owner
	// must acquire again and gets a new epoch.
	const r2 = "g/8"
	l, err = s.AcquireLease(ctx, r2, "n1", ttl)
	must(t, err, "acquire")
	time.Sleep(ttl + 100*time.Millisecond)
	_, err = s.RenewLease(ctx, r2, "n1", l.Epoch, ttl)
	wantErr(t, err, meta.ErrFenced, "renew expired")
	l, err = s.AcquireLease(ctx, r2, "n1", longTTL)
	must(t, err, "re-acquire expired")
	if l.Epoch != 2 {
		t.Fatalf("re-acquire after expiry: %+v", l)
	}
}

func testLeaseList(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	for _, r := range []string{"p/b/1", "p/a/0", "g/1", "p/a/1", "p_x"} {
		_, err := s.AcquireLease(ctx, r, "n1", longTTL)
		must(t, err, "acquire "+r)
	}
	names := func(prefix string) []string {
		ls, err := s.Leases(ctx, prefix)
		must(t, err, "leases")
		var out []string
		for _, l := range ls {
			if l.Owner != "n1" || l.Epoch != 1 {
				t.Fatalf("lease %+v", l)
			}
			out = append(out, l.Resource)
		}
		return out
	}
	for prefix, want := range map[string][]string{
		"":      {"g/1", "p/a/0", "p/a/1", "p/b/1", "p_x"},
		"p/":    {"p/a/0", "p/a/1", "p/b/1"},
		"p/a/":  {"p/a/0", "p/a/1"},
		"p_":    {"p_x"},
		"g/1":   {"g/1"},
		"zzz":   nil,
		"p/a/0": {"p/a/0"},
	} {
		if got := names(prefix); !slices.Equal(got, want) {
			t.Errorf("Leases(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func testLeaseConcurrentAcquire(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const r, n = "p/race/0", 8
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		owners []string
	)
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			owner := fmt.Sprintf("n%d", i)
			l, err := s.AcquireLease(ctx, r, owner, longTTL)
			if errors.Is(err, meta.ErrLeaseHeld) {
				return
			}
			if err != nil {
				t.Errorf("acquire: %v", err)
				return
			}
			if l.Epoch != 1 {
				t.Errorf("winner got epoch %d", l.Epoch)
			}
			mu.Lock()
			owners = append(owners, owner)
			mu.Unlock()
		})
	}
	close(gate)
	wg.Wait()
	if len(owners) != 1 {
		t.Fatalf("%d nodes acquired the same lease: %q", len(owners), owners)
	}
}

// --- CommitFlush ------------------------------------------------------------

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

func sameProducers(t testing.TB, got, want []meta.ProducerState) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("producers\n got %+v\nwant %+v", got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ProducerID != w.ProducerID || g.ProducerEpoch != w.ProducerEpoch || g.LastUpdate != w.LastUpdate ||
			!slices.Equal(g.Batches, w.Batches) {
			t.Fatalf("producer %d\n got %+v\nwant %+v", i, g, w)
		}
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

// --- CommitFlushes: several flushes per call ---------------------------------

// packed gives cs one object key, each flush the slice after the previous
// one's, as a node packs the flushes of one node-level flush into one
// object. It returns the key.
func packed(cs []meta.FlushCommit) string {
	key := fmt.Sprintf("packed/%d", keySeq.Add(1))
	var pos int64
	for i := range cs {
		cs[i].Segment.ObjectKey, cs[i].Segment.Position = key, pos
		pos += cs[i].Segment.Size
	}
	return key
}

// commitAll commits cs in one call and fails unless every flush committed.
func commitAll(t testing.TB, s meta.Store, cs []meta.FlushCommit, what string) {
	t.Helper()
	res, err := s.CommitFlushes(ctxFor(t), cs)
	must(t, err, what)
	if len(res) != len(cs) {
		t.Fatalf("%s: %d results for %d flushes", what, len(res), len(cs))
	}
	for i, r := range res {
		if r != nil {
			t.Fatalf("%s: flush %d: %v", what, i, r)
		}
	}
}

// committed reports CommittedKeys for keys, failing the test on error.
func committed(t testing.TB, s meta.Store, keys ...string) map[string]bool {
	t.Helper()
	got, err := s.CommittedKeys(ctxFor(t), keys)
	must(t, err, "committed keys")
	return got
}

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

// --- reading segments -------------------------------------------------------

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

// --- producers --------------------------------------------------------------

func testProducers(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	tp := createTopic(t, s, "t", 2)
	l := acquire(t, s, tp.ID, 0, "n1", longTTL)
	p1 := meta.ProducerState{ProducerID: 1, ProducerEpoch: 0, LastUpdate: 100,
		Batches: []meta.ProducerBatch{{FirstSeq: 0, LastSeq: 9, BaseOffset: 0, LastOffset: 9, Timestamp: 100}}}
	p2 := meta.ProducerState{ProducerID: 2, ProducerEpoch: 5, LastUpdate: 101}
	c := commit(tp.ID, 0, l, 0, 10)
	c.Producers = []meta.ProducerState{p2, p1}
	must(t, meta.CommitFlush(ctx, s, c), "commit")

	// A later commit replaces the producers it names and leaves the others.
	p1b := p1
	p1b.LastUpdate = 200
	p1b.Batches = append(slices.Clone(p1.Batches),
		meta.ProducerBatch{FirstSeq: 10, LastSeq: 14, BaseOffset: 10, LastOffset: 14, Timestamp: 200})
	stale := p1
	stale.LastUpdate = 1
	c = commit(tp.ID, 0, l, 10, 5)
	// Named twice: the last state wins.
	c.Producers = []meta.ProducerState{stale, p1b}
	must(t, meta.CommitFlush(ctx, s, c), "second commit")

	ps, err := s.Producers(ctx, tp.ID, 0)
	must(t, err, "producers")
	sameProducers(t, ps, []meta.ProducerState{p1b, p2})

	// A producer epoch bump with an empty window is stored as such.
	p2b := meta.ProducerState{ProducerID: 2, ProducerEpoch: 6, LastUpdate: 300}
	c = commit(tp.ID, 0, l, 15, 1)
	c.Producers = []meta.ProducerState{p2b}
	must(t, meta.CommitFlush(ctx, s, c), "third commit")
	ps, err = s.Producers(ctx, tp.ID, 0)
	must(t, err, "producers")
	sameProducers(t, ps, []meta.ProducerState{p1b, p2b})

	if ps, err := s.Producers(ctx, tp.ID, 1); err != nil || len(ps) != 0 {
		t.Fatalf("producers of another partition: %v, %v", ps, err)
	}
}

func testNextProducerID(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const workers, each = 8, 50
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]bool{}
	)
	for range workers {
		wg.Go(func() {
			for range each {
				id, err := s.NextProducerID(ctx)
				if err != nil {
					t.Errorf("next producer id: %v", err)
					return
				}
				mu.Lock()
				if seen[id] {
					t.Errorf("producer id %d handed out twice", id)
				}
				if id < 0 {
					t.Errorf("negative producer id %d", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Fatalf("%d distinct ids, want %d", len(seen), workers*each)
	}
}

// --- consumer groups --------------------------------------------------------

func testOffsets(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	at := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	must(t, s.CommitOffsets(ctx, "g1", []meta.OffsetCommit{
		{Topic: "b", Partition: 0, Offset: 5, LeaderEpoch: 2, Metadata: "m-b0", CommittedAt: at},
		{Topic: "a", Partition: 1, Offset: 11, LeaderEpoch: -1},
		{Topic: "a", Partition: 0, Offset: 10, LeaderEpoch: 1, Metadata: "m-a0"},
	}, meta.Fence{}), "commit")
	must(t, s.CommitOffsets(ctx, "g2", []meta.OffsetCommit{{Topic: "a", Partition: 0, Offset: 99}}, meta.Fence{}), "commit g2")
	must(t, s.CommitOffsets(ctx, "g1", nil, meta.Fence{}), "commit nothing")

	fetch := func(group string, topics []string) []meta.OffsetCommit {
		t.Helper()
		os, err := s.FetchOffsets(ctx, group, topics)
		must(t, err, "fetch")
		sort.Slice(os, func(i, j int) bool {
			if os[i].Topic != os[j].Topic {
				return os[i].Topic < os[j].Topic
			}
			return os[i].Partition < os[j].Partition
		})
		return os
	}
	all := fetch("g1", nil)
	if len(all) != 3 {
		t.Fatalf("all offsets: %+v", all)
	}
	if o := all[0]; o.Topic != "a" || o.Partition != 0 || o.Offset != 10 || o.LeaderEpoch != 1 || o.Metadata != "m-a0" ||
		o.CommittedAt.IsZero() || time.Since(o.CommittedAt) > time.Hour {
		t.Fatalf("offset a/0: %+v", o)
	}
	if o := all[1]; o.Topic != "a" || o.Partition != 1 || o.Offset != 11 || o.LeaderEpoch != -1 || o.Metadata != "" {
		t.Fatalf("offset a/1: %+v", o)
	}
	if o := all[2]; o.Topic != "b" || o.Offset != 5 || !o.CommittedAt.Equal(at) || o.Metadata != "m-b0" {
		t.Fatalf("offset b/0: %+v", o)
	}
	if got := fetch("g1", []string{"a"}); len(got) != 2 || got[0].Topic != "a" || got[1].Topic != "a" {
		t.Fatalf("offsets of a: %+v", got)
	}
	if got := fetch("g1", []string{"b", "zzz"}); len(got) != 1 || got[0].Topic != "b" {
		t.Fatalf("offsets of b: %+v", got)
	}
	if got := fetch("g1", []string{}); len(got) != 0 {
		t.Fatalf("offsets of no topics: %+v", got)
	}
	if got := fetch("nobody", nil); len(got) != 0 {
		t.Fatalf("offsets of an unknown group: %+v", got)
	}

	// Commit overwrites.
	must(t, s.CommitOffsets(ctx, "g1", []meta.OffsetCommit{{Topic: "a", Partition: 0, Offset: 20, Metadata: "x"}}, meta.Fence{}), "overwrite")
	if got := fetch("g1", []string{"a"}); got[0].Offset != 20 || got[0].Metadata != "x" {
		t.Fatalf("after overwrite: %+v", got)
	}
	// The same partition twice in one commit: the last one wins.
	must(t, s.CommitOffsets(ctx, "g1", []meta.OffsetCommit{
		{Topic: "a", Partition: 1, Offset: 30}, {Topic: "a", Partition: 1, Offset: 31},
	}, meta.Fence{}), "duplicate in one commit")
	if got := fetch("g1", []string{"a"}); got[1].Offset != 31 {
		t.Fatalf("after duplicate commit: %+v", got)
	}

	must(t, s.DeleteOffsets(ctx, "g1", "a", []int32{1, 7}), "delete")
	if got := fetch("g1", nil); len(got) != 2 || got[0].Partition != 0 || got[1].Topic != "b" {
		t.Fatalf("after delete: %+v", got)
	}
	must(t, s.DeleteOffsets(ctx, "g1", "a", nil), "delete nothing")
	if got := fetch("g2", nil); len(got) != 1 || got[0].Offset != 99 {
		t.Fatalf("other group touched: %+v", got)
	}
}

func testGroups(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, s.SaveGroup(ctx, meta.Group{Name: "g2", ProtocolType: "consumer", State: []byte{1, 2, 3}, UpdatedAt: at}, meta.Fence{}), "save g2")
	must(t, s.SaveGroup(ctx, meta.Group{Name: "g1", ProtocolType: "consumer", State: []byte("v1")}, meta.Fence{}), "save g1")
	g, err := s.Group(ctx, "g1")
	must(t, err, "load")
	if g.Name != "g1" || g.ProtocolType != "consumer" || string(g.State) != "v1" || g.UpdatedAt.IsZero() {
		t.Fatalf("group: %+v", g)
	}
	must(t, s.SaveGroup(ctx, meta.Group{Name: "g1", ProtocolType: "connect", State: []byte("v2")}, meta.Fence{}), "update g1")
	g, err = s.Group(ctx, "g1")
	must(t, err, "load")
	if g.ProtocolType != "connect" || string(g.State) != "v2" {
		t.Fatalf("updated group: %+v", g)
	}
	gs, err := s.ListGroups(ctx)
	must(t, err, "list")
	if len(gs) != 2 || gs[0].Name != "g1" || gs[1].Name != "g2" || !bytes.Equal(gs[1].State, []byte{1, 2, 3}) ||
		!gs[1].UpdatedAt.Equal(at) {
		t.Fatalf("groups: %+v", gs)
	}
	_, err = s.Group(ctx, "missing")
	wantErr(t, err, meta.ErrNotFound, "load missing")

	// An empty state is stored as empty.
	must(t, s.SaveGroup(ctx, meta.Group{Name: "empty"}, meta.Fence{}), "save empty")
	g, err = s.Group(ctx, "empty")
	must(t, err, "load empty")
	if len(g.State) != 0 {
		t.Fatalf("empty group: %+v", g)
	}

	must(t, s.CommitOffsets(ctx, "g1", []meta.OffsetCommit{{Topic: "a", Offset: 1}}, meta.Fence{}), "commit g1")
	must(t, s.CommitOffsets(ctx, "g2", []meta.OffsetCommit{{Topic: "a", Offset: 2}}, meta.Fence{}), "commit g2")
	must(t, s.DeleteGroup(ctx, "g1"), "delete g1")
	_, err = s.Group(ctx, "g1")
	wantErr(t, err, meta.ErrNotFound, "load deleted")
	if os, err := s.FetchOffsets(ctx, "g1", nil); err != nil || len(os) != 0 {
		t.Fatalf("offsets of deleted group: %v, %v", os, err)
	}
	if os, err := s.FetchOffsets(ctx, "g2", nil); err != nil || len(os) != 1 {
		t.Fatalf("offsets of the other group: %v, %v", os, err)
	}
	wantErr(t, s.DeleteGroup(ctx, "g1"), meta.ErrNotFound, "delete again")

	// A group with offsets but no stored state can still be deleted.
	must(t, s.CommitOffsets(ctx, "bare", []meta.OffsetCommit{{Topic: "a", Offset: 1}}, meta.Fence{}), "commit bare")
	must(t, s.DeleteGroup(ctx, "bare"), "delete bare")
	if os, err := s.FetchOffsets(ctx, "bare", nil); err != nil || len(os) != 0 {
		t.Fatalf("offsets of deleted bare group: %v, %v", os, err)
	}
	gs, err = s.ListGroups(ctx)
	must(t, err, "list")
	if len(gs) != 2 || gs[0].Name != "empty" || gs[1].Name != "g2" {
		t.Fatalf("groups after delete: %+v", gs)
	}
}

// testLeaseRenewAll checks that RenewLeases extends exactly the unexpired
// leases of one owner: not another owner's, not a released one, not an
// expired one (which another node may have been promised).
func testLeaseRenewAll(t *testing.T, s meta.Store) {
	ctx := context.Background()
	for _, r := range []string{"p/a/0", "p/a/1", "g/3"} {
		_, err := s.AcquireLease(ctx, r, "n1@x", time.Second)
		must(t, err, "acquire "+r)
	}
	_, err := s.AcquireLease(ctx, "p/b/0", "n2@y", time.Second)
	must(t, err, "acquire other")
	rel, err := s.AcquireLease(ctx, "p/a/2", "n1@x", time.Second)
	must(t, err, "acquire released")
	must(t, s.ReleaseLease(ctx, "p/a/2", "n1@x", rel.Epoch), "release")
	_, err = s.AcquireLease(ctx, "p/a/3", "n1@x", time.Millisecond)
	must(t, err, "acquire short")
	time.Sleep(20 * time.Millisecond) // p/a/3 expires

	ls, err := s.RenewLeases(ctx, "n1@x", time.Minute)
	must(t, err, "renew all")
	got := map[string]meta.Lease{}
	for _, l := range ls {
		got[l.Resource] = l
	}
	if len(got) != 3 || got["p/a/0"].Owner != "n1@x" || got["p/a/1"].Epoch < 1 || got["g/3"].Resource == "" {
		t.Fatalf("renewed %+v, want p/a/0, p/a/1 and g/3", ls)
	}
	after, err := s.Leases(ctx, "")
	must(t, err, "list")
	for _, l := range after {
		long := time.Until(l.ExpiresAt) > 30*time.Second
		if _, renewed := got[l.Resource]; renewed != long {
			t.Fatalf("lease %+v: renewed %v but expires in %v", l, renewed, time.Until(l.ExpiresAt))
		}
	}
	if ls, err := s.RenewLeases(ctx, "nobody@z", time.Minute); err != nil || len(ls) != 0 {
		t.Fatalf("renewing an owner with no leases: %v, %v", ls, err)
	}
	if _, err := s.RenewLeases(ctx, "", time.Minute); !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("renewing for no owner: %v, want ErrInvalid", err)
	}
}

// testLeaseReleaseStale checks that a node's dead incarnations' leases are
// vacated, keeping their epochs, and nothing else: not the current
// incarnation's, not another node's, not a node whose id merely starts
// with the same letters.
func testLeaseReleaseStale(t *testing.T, s meta.Store) {
	ctx := context.Background()
	held := map[string]string{"p/a/0": "n1@old", "p/a/1": "n1@older", "p/a/2": "n1@new", "p/a/3": "n10@x", "g/1": "n2@y"}
	epochs := map[string]int64{}
	for r, o := range held {
		l, err := s.AcquireLease(ctx, r, o, time.Minute)
		must(t, err, "acquire "+r)
		epochs[r] = l.Epoch
	}
	n, err := s.ReleaseStaleLeases(ctx, "n1", "n1@new")
	must(t, err, "release stale")
	if n != 2 {
		t.Fatalf("released %d leases, want 2", n)
	}
	ls, err := s.Leases(ctx, "")
	must(t, err, "list")
	for _, l := range ls {
		want := held[l.Resource]
		if l.Resource == "p/a/0" || l.Resource == "p/a/1" {
			want = ""
		}
		if l.Owner != want || l.Epoch != epochs[l.Resource] {
			t.Fatalf("lease %+v: want owner %q at epoch %d", l, want, epochs[l.Resource])
		}
	}
	// The next owner gets a new epoch at once, without waiting for expiry.
	l, err := s.AcquireLease(ctx, "p/a/0", "n1@new", time.Minute)
	must(t, err, "acquire released")
	if l.Epoch <= epochs["p/a/0"] {
		t.Fatalf("epoch %d after release, was %d", l.Epoch, epochs["p/a/0"])
	}
	if _, err := s.ReleaseStaleLeases(ctx, "n1", "n2@z"); !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("current incarnation of another node: %v, want ErrInvalid", err)
	}
}

// testGroupWritesFenced checks that fenced group writes apply only while
// the fence's lease is held at its epoch: after a release, a takeover or
// with a wrong epoch they fail with ErrFenced and store nothing.
func testGroupWritesFenced(t *testing.T, s meta.Store) {
	ctx := context.Background()
	res := meta.SlotResource(7)
	l, err := s.AcquireLease(ctx, res, "n1@a", time.Minute)
	must(t, err, "acquire")
	fence := meta.Fence{Resource: res, Owner: "n1@a", Epoch: l.Epoch}
	must(t, s.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "a", Offset: 5}}, fence), "fenced commit while held")
	must(t, s.SaveGroup(ctx, meta.Group{Name: "g", ProtocolType: "consumer", State: []byte("s1")}, fence), "fenced save while held")

	stale := []meta.Fence{
		{Resource: res, Owner: "n1@a", Epoch: l.Epoch + 1},              // wrong epoch
		{Resource: res, Owner: "n2@b", Epoch: l.Epoch},                  // wrong owner
		{Resource: meta.SlotResource(8), Owner: "n1@a", Epoch: l.Epoch}, // no such lease
	}
	for _, f := range stale {
		wantErr(t, s.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "a", Offset: 99}}, f), meta.ErrFenced, "commit with "+f.Owner)
		wantErr(t, s.SaveGroup(ctx, meta.Group{Name: "g", State: []byte("stale")}, f), meta.ErrFenced, "save with "+f.Owner)
	}

	// Released and taken over: the old holder's writes are refused.
	must(t, s.ReleaseLease(ctx, res, "n1@a", l.Epoch), "release")
	wantErr(t, s.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "a", Offset: 99}}, fence), meta.ErrFenced, "commit after release")
	l2, err := s.AcquireLease(ctx, res, "n2@b", time.Minute)
	must(t, err, "take over")
	wantErr(t, s.SaveGroup(ctx, meta.Group{Name: "g", State: []byte("stale")}, fence), meta.ErrFenced, "save after takeover")
	must(t, s.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "a", Offset: 6}},
		meta.Fence{Resource: res, Owner: "n2@b", Epoch: l2.Epoch}), "new holder's commit")

	os, err := s.FetchOffsets(ctx, "g", nil)
	must(t, err, "fetch")
	if len(os) != 1 || os[0].Offset != 6 {
		t.Fatalf("offsets after fenced writes: %+v", os)
	}
	g, err := s.Group(ctx, "g")
	must(t, err, "load")
	if string(g.State) != "s1" {
		t.Fatalf("group state after fenced writes: %q", g.State)
	}
}

// --- nodes ------------------------------------------------------------------

func testNodes(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	started := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	must(t, s.Heartbeat(ctx, meta.Node{ID: "n2", KafkaAddr: "k2:9092", WALAddr: "w2:8080", RemoteAddr: "r2:8090"}), "heartbeat n2")
	must(t, s.Heartbeat(ctx, meta.Node{ID: "n1", KafkaAddr: "k1:9092", WALAddr: "w1:8080", RemoteAddr: "r1:8090", StartedAt: started}), "heartbeat n1")
	ns, err := s.LiveNodes(ctx, time.Minute)
	must(t, err, "live")
	if len(ns) != 2 || ns[0].ID != "n1" || ns[1].ID != "n2" {
		t.Fatalf("live nodes: %+v", ns)
	}
	n1 := ns[0]
	if n1.KafkaAddr != "k1:9092" || n1.WALAddr != "w1:8080" || n1.RemoteAddr != "r1:8090" || !n1.StartedAt.Equal(started) ||
		n1.HeartbeatAt.IsZero() {
		t.Fatalf("n1: %+v", n1)
	}
	if ns[1].StartedAt.IsZero() {
		t.Fatalf("n2 start not stamped: %+v", ns[1])
	}

	// A refresh moves the heartbeat and the addresses, keeps the start.
	time.Sleep(10 * time.Millisecond)
	must(t, s.Heartbeat(ctx, meta.Node{ID: "n1", KafkaAddr: "k1:9093", WALAddr: "w1:8080", RemoteAddr: "r1:8090"}), "refresh n1")
	ns, err = s.LiveNodes(ctx, time.Minute)
	must(t, err, "live")
	if got := ns[0]; got.KafkaAddr != "k1:9093" || !got.StartedAt.Equal(started) || !got.HeartbeatAt.After(n1.HeartbeatAt) {
		t.Fatalf("refreshed n1: %+v (was %+v)", got, n1)
	}

	must(t, s.RemoveNode(ctx, "n2"), "remove")
	must(t, s.RemoveNode(ctx, "n2"), "remove again")
	ns, err = s.LiveNodes(ctx, time.Minute)
	must(t, err, "live")
	if len(ns) != 1 || ns[0].ID != "n1" {
		t.Fatalf("after remove: %+v", ns)
	}
	wantErr(t, s.Heartbeat(ctx, meta.Node{}), meta.ErrInvalid, "heartbeat without id")
}

func testNodesExpire(t *testing.T, s meta.Store) {
	ctx := ctxFor(t)
	const within = 2 * time.Second
	live := func() []string {
		t.Helper()
		ns, err := s.LiveNodes(ctx, within)
		must(t, err, "live")
		var ids []string
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		return ids
	}
	// beat heartbeats id and returns a time no later than the heartbeat's
	// database timestamp. The checks below compare elapsed times on the
	// test's clock with ages on the database clock, which holds as long as
	// both clocks run at the same rate (the offset between them cancels).
	beat := func(id string) time.Time {
		t.Helper()
		before := time.Now()
		must(t, s.Heartbeat(ctx, meta.Node{ID: id}), "heartbeat "+id)
		return before
	}
	// mustBeLive fails if id, whose last beat began at since, is missing
	// although less than within has passed. (If more has passed, a stalled
	// machine delayed the test, and the node is rightly gone.)
	mustBeLive := func(got []string, id string, since time.Time) {
		t.Helper()
		if !slices.Contains(got, id) && time.Since(since) < within {
			t.Fatalf("%s is not live %v after its last beat: %q", id, time.Since(since), got)
		}
	}
	lastB := beat("b")
	lastA := beat("a")
	got := live()
	mustBeLive(got, "a", lastA)
	mustBeLive(got, "b", lastB)
	// a keeps beating, b stops: b drops out once its last beat is older than
	// within by the database clock, and not before.
	eventually(t, 15*time.Second, "b drops out", func() bool {
		lastA = beat("a")
		got := live()
		mustBeLive(got, "a", lastA)
		if slices.Contains(got, "b") {
			return false
		}
		if el := time.Since(lastB); el < within {
			t.Fatalf("b dropped out %v after its last beat, within is %v", el, within)
		}
		return true
	})
	// A beat brings b back.
	lastB = beat("b")
	got = live()
	mustBeLive(got, "b", lastB)
	mustBeLive(got, "a", lastA)
}
