package litemeta_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/litemeta"
	"github.com/morax-dev/morax/persistence/meta/metatest"
)

func open(t testing.TB) meta.Store {
	t.Helper()
	s, err := litemeta.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store { return open(t) })
}

// TestReopen checks that data survives a close and that opening again does
// not re-run migrations (which would fail on existing tables).
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := litemeta.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := s.CreateTopic(ctx, meta.Topic{Name: "t", Kind: meta.KindWAL, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.AcquireLease(ctx, meta.PartitionResource(tp.ID, 0), "n1", 60e9)
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.CommitFlush(ctx, s, meta.FlushCommit{LeaseEpoch: l.Epoch, Owner: "n1", Segment: meta.Segment{
		TopicID: tp.ID, BaseOffset: 0, EndOffset: 3, ObjectKey: "k", Size: 10}}); err != nil {
		t.Fatal(err)
	}
	id1, err := s.NextProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = litemeta.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.Partition(ctx, tp.ID, 0)
	if err != nil || p.NextOffset != 3 || p.Bytes != 10 {
		t.Fatalf("partition after reopen: %+v, %v", p, err)
	}
	if id2, err := s.NextProducerID(ctx); err != nil || id2 <= id1 {
		t.Fatalf("producer id after reopen: %d (was %d), %v", id2, id1, err)
	}
	// The lease survives too: the same owner continues at its epoch.
	if err := meta.CommitFlush(ctx, s, meta.FlushCommit{LeaseEpoch: l.Epoch, Owner: "n1", Segment: meta.Segment{
		TopicID: tp.ID, BaseOffset: 3, EndOffset: 4, ObjectKey: "k2", Size: 1}}); err != nil {
		t.Fatal(err)
	}
}

// TestOpenConcurrent opens one fresh file from several goroutines at once,
// as two processes might: migrations must apply once.
func TestOpenConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	const n = 4
	stores := make([]*litemeta.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-gate
			stores[i], errs[i] = litemeta.Open(ctx, path)
		})
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	tp, err := stores[0].CreateTopic(ctx, meta.Topic{Name: "t", Kind: meta.KindKafka, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if _, err := s.TopicByID(ctx, tp.ID); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, p := range []string{"", "a?b"} {
		if _, err := litemeta.Open(context.Background(), p); !errors.Is(err, meta.ErrInvalid) {
			t.Errorf("Open(%q): %v, want ErrInvalid", p, err)
		}
	}
}

// TestCommitAfterClose fails cleanly instead of hanging on the stopped
// committer.
func TestCommitAfterClose(t *testing.T) {
	ctx := context.Background()
	s, err := litemeta.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := s.CreateTopic(ctx, meta.Topic{Name: "t", Kind: meta.KindKafka, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	err = meta.CommitFlush(ctx, s, meta.FlushCommit{LeaseEpoch: 1, Owner: "n1", Segment: meta.Segment{
		TopicID: tp.ID, BaseOffset: 0, EndOffset: 1, ObjectKey: "k"}})
	if err == nil {
		t.Fatal("commit after close succeeded")
	}
}

func BenchmarkCommitFlush(b *testing.B) {
	metatest.BenchCommitFlush(b, func(b *testing.B) meta.Store { return open(b) })
}
