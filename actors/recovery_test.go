package actors_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
)

// failingReloads is a metadata store whose armed next CommitFlushes fails
// without committing, and whose Partition reads then fail until healed:
// a partition recovering from the failed commit keeps retrying its reload.
type failingReloads struct {
	meta.Store
	mu          sync.Mutex
	failCommit  bool
	failReads   bool
	failedReads atomic.Int32
}

func (s *failingReloads) arm() {
	s.mu.Lock()
	s.failCommit, s.failReads = true, true
	s.mu.Unlock()
}

func (s *failingReloads) heal() {
	s.mu.Lock()
	s.failReads = false
	s.mu.Unlock()
}

func (s *failingReloads) CommitFlushes(ctx context.Context, cs []meta.FlushCommit) ([]error, error) {
	s.mu.Lock()
	fail := s.failCommit
	s.failCommit = false
	s.mu.Unlock()
	if fail {
		return nil, errors.New("connection reset while committing")
	}
	return s.Store.CommitFlushes(ctx, cs)
}

func (s *failingReloads) Partition(ctx context.Context, id meta.TopicID, p int32) (meta.Partition, error) {
	s.mu.Lock()
	fail := s.failReads
	s.mu.Unlock()
	if fail {
		s.failedReads.Add(1)
		return meta.Partition{}, errors.New("metadata store unavailable")
	}
	return s.Store.Partition(ctx, id, p)
}

// TestReloadRetryStaysOnTheActor changes a topic's config while its
// partition retries a failing reload after a commit with an unknown
// outcome. The retry used to run the actor's reload on a timer goroutine,
// reading the partition's topic while the actor wrote it: a data race (the
// race detector fails this test) on exactly the path that runs when the
// metadata store is failing. The partition must recover once the store
// heals, and the log stay dense.
func TestReloadRetryStaysOnTheActor(t *testing.T) {
	be := embedded(t)
	store := &failingReloads{Store: be.meta}
	be.meta = store
	b := startBroker(t, be, testOptions("node-1"))
	tp := createTopic(t, b, "reload-retry", 1, nil)
	appendOK(t, b, tp, 0, batchOf(t, "first"))

	store.arm()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Its outcome is unknown until a reload says it was not stored.
	lost := make(chan error, 1)
	go func() {
		_, err := b.Append(ctx, tp, 0, batchOf(t, "lost"), -1)
		lost <- err
	}()
	for store.failedReads.Load() < 1 {
		if ctx.Err() != nil {
			t.Fatal("the partition never tried to reload its state")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The actor rewrites its topic while a retry is pending.
	for i := range 3 {
		cfg := map[string]string{"retention.ms": []string{"3600000", "7200000", "10800000"}[i]}
		if err := b.SetTopicConfig(ctx, tp.Name, cfg); err != nil {
			t.Fatal(err)
		}
	}
	for store.failedReads.Load() < 2 {
		if ctx.Err() != nil {
			t.Fatal("the partition did not retry its reload")
		}
		time.Sleep(5 * time.Millisecond)
	}
	store.heal()
	if err := <-lost; !errors.Is(err, actors.ErrStorage) {
		t.Fatalf("append whose commit failed: got %v, want ErrStorage", err)
	}
	r := appendOK(t, b, tp, 0, batchOf(t, "after"))
	if r.BaseOffset != 1 {
		t.Fatalf("append after recovery at %d, want 1 (the failed append left no gap)", r.BaseOffset)
	}
}
