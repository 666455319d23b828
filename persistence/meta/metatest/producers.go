package metatest

import (
	"slices"
	"sync"
	"testing"

	"github.com/morax-dev/morax/persistence/meta"
)

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
