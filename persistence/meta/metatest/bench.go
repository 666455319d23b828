package metatest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

// BenchCommitFlush measures CommitFlushes, the one metadata operation on
// the produce path, and reports commits/s (flushes committed per second)
// and calls/s. An op is one flush in every variant, so ns/op compares them
// directly. open must return a new, empty store; the benchmark closes it.
//
//   - sequential: one writer committing one flush of one partition per
//     call, each call waiting for the previous: the latency of one commit.
//   - parallel16: sixteen writers, one per partition, each committing one
//     flush per call at once: the throughput when separate calls can share
//     the database's fsyncs.
//   - packed16: one writer committing sixteen flushes (one per partition,
//     slices of one object) per call, as a node-level flush does: the cost
//     of a packed call against sixteen single ones.
//   - packed256: the same with 256 flushes per call, the size of a
//     node-level flush over many partitions.
//
// Each flush carries a realistic payload: a four-entry index and one
// idempotent producer's state.
func BenchCommitFlush(b *testing.B, open func(b *testing.B) meta.Store) {
	b.Run("sequential", func(b *testing.B) { benchCommits(b, open, 1, 1) })
	b.Run("parallel16", func(b *testing.B) { benchCommits(b, open, 16, 1) })
	b.Run("packed16", func(b *testing.B) { benchCommits(b, open, 1, 16) })
	b.Run("packed256", func(b *testing.B) { benchCommits(b, open, 1, 256) })
}

// benchCommits runs writers goroutines, each owning perCall partitions of
// its own and committing one flush of each per call, until b.N flushes
// are committed.
func benchCommits(b *testing.B, open func(b *testing.B) meta.Store, writers, perCall int) {
	s := open(b)
	b.Cleanup(func() { _ = s.Close() })
	ctx := ctxFor(b)
	partitions := int32(writers * perCall)
	tp, err := s.CreateTopic(ctx, meta.Topic{Name: "bench", Kind: meta.KindKafka, Partitions: partitions})
	if err != nil {
		b.Fatal(err)
	}
	leases := make([]meta.Lease, partitions)
	for p := range partitions {
		if leases[p], err = s.AcquireLease(ctx, meta.PartitionResource(tp.ID, p), "bench", longTTL); err != nil {
			b.Fatal(err)
		}
	}
	var (
		left  atomic.Int64
		calls atomic.Int64
		wg    sync.WaitGroup
	)
	left.Store(int64(b.N))
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			const n, size = 100, 1 << 20 // records and bytes per flush
			first := int32(w * perCall)
			cs := make([]meta.FlushCommit, 0, perCall)
			for next := int64(0); ; next += n {
				have := left.Add(-int64(perCall)) + int64(perCall)
				if have <= 0 {
					return
				}
				k := min(int64(perCall), have)
				key := fmt.Sprintf("%s/%d/%020d", tp.ID, first, next)
				cs = cs[:0]
				for i := range int32(k) {
					p := first + i
					cs = append(cs, meta.FlushCommit{
						LeaseEpoch: leases[p].Epoch,
						Owner:      "bench",
						Segment: meta.Segment{
							TopicID:      tp.ID,
							Partition:    p,
							BaseOffset:   next,
							EndOffset:    next + n,
							ObjectKey:    key,
							Position:     int64(i) * size,
							Size:         size,
							Epoch:        leases[p].Epoch,
							MaxTimestamp: next,
							Index: []segment.IndexEntry{
								{Offset: next, Position: 0}, {Offset: next + 25, Position: size / 4},
								{Offset: next + 50, Position: size / 2}, {Offset: next + 75, Position: 3 * size / 4},
							},
						},
						Producers: []meta.ProducerState{{ProducerID: int64(p), LastUpdate: next, Batches: []meta.ProducerBatch{
							{FirstSeq: int32(next), LastSeq: int32(next + n - 1), BaseOffset: next, LastOffset: next + n - 1},
						}}},
					})
				}
				res, err := s.CommitFlushes(ctx, cs)
				if err != nil {
					b.Error(err)
					return
				}
				for _, r := range res {
					if r != nil {
						b.Error(r)
						return
					}
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(float64(calls.Load())/b.Elapsed().Seconds(), "calls/s")
}
