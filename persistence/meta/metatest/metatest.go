// Package metatest is the contract suite every meta.Store implementation
// must pass. An implementation's tests call Run with a function that opens a
// fresh, empty store; the suite then checks the behaviour the broker relies
// on, above all the fencing and dense-offset guarantees of CommitFlushes
// under concurrency.
//
// The tests are grouped by the part of the Store they exercise, one file
// per area (topics, leases, commits, segments, producers, groups, nodes),
// so a new method's tests have an obvious home; this file holds Run and the
// helpers more than one area uses.
package metatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
		{"PartitionCount", testPartitionCount},
		{"CatalogVersion", testCatalogVersion},
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

// sameProducers fails unless got and want hold the same producer states in
// the same order.
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
