package metatest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

// BenchCommitFlush measures CommitFlush, the one metadata operation on the
// produce path, and reports commits/s. open must return a new, empty store;
// the benchmark closes it.
//
//   - sequential: one writer committing to one partition, each commit
//     waiting for the previous (a single partition actor flushing back to
//     back): the latency of one commit.
//   - parallel16: sixteen writers, one per partition, committing at once
//     (many partition actors on one node): the throughput when commits can
//     share the database's fsyncs.
//
// Each commit carries a realistic payload: a four-entry index and one
// idempotent producer's state.
func BenchCommitFlush(b *testing.B, open func(b *testing.B) meta.Store) {
	b.Run("sequential", func(b *testing.B) { benchCommits(b, open, 1) })
	b.Run("parallel16", func(b *testing.B) { benchCommits(b, open, 16) })
}

func benchCommits(b *testing.B, open func(b *testing.B) meta.Store, partitions int32) {
	s := open(b)
	b.Cleanup(func() { _ = s.Close() })
	ctx := ctxFor(b)
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
		left atomic.Int64
		wg   sync.WaitGroup
	)
	left.Store(int64(b.N))
	b.ResetTimer()
	for p := range partitions {
		wg.Go(func() {
			const n = 100 // records per flush
			for next := int64(0); left.Add(-1) >= 0; next += n {
				c := meta.FlushCommit{
					LeaseEpoch: leases[p].Epoch,
					Owner:      "bench",
					Segment: meta.Segment{
						TopicID:      tp.ID,
						Partition:    p,
						BaseOffset:   next,
						EndOffset:    next + n,
						ObjectKey:    fmt.Sprintf("%s/%d/%d/%020d", tp.ID, p, leases[p].Epoch, next),
						Size:         1 << 20,
						Epoch:        leases[p].Epoch,
						MaxTimestamp: next,
						Index: []segment.IndexEntry{
							{Offset: next, Position: 0}, {Offset: next + 25, Position: 1 << 18},
							{Offset: next + 50, Position: 2 << 18}, {Offset: next + 75, Position: 3 << 18},
						},
					},
					Producers: []meta.ProducerState{{ProducerID: int64(p), LastUpdate: next, Batches: []meta.ProducerBatch{
						{FirstSeq: int32(next), LastSeq: int32(next + n - 1), BaseOffset: next, LastOffset: next + n - 1},
					}}},
				}
				if err := s.CommitFlush(ctx, c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
