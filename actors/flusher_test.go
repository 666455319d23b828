package actors_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore/objstoretest"
)

// appendAll appends batches[p] to partition p of tp, all at once, and
// returns each partition's result.
func appendAll(t *testing.T, b *actors.Broker, tp meta.Topic, batches [][]byte) []actors.AppendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := make([]actors.AppendResult, len(batches))
	var wg sync.WaitGroup
	for p, batch := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.Append(ctx, tp, int32(p), batch, -1)
			if err != nil {
				r.Err = err
			}
			res[p] = r
		}()
	}
	wg.Wait()
	return res
}

// TestPartitionsShareObjects appends to eight partitions at once: their
// flushes are packed into one object (one PUT, one metadata transaction),
// each partition's segment is its own slice of it, cold reads find every
// record, and the object is deleted only when the last partition's
// retention drops its segment.
func TestPartitionsShareObjects(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		opts := testOptions("node-1")
		opts.TailCacheBytes = 1 // every read goes to the object
		opts.BlockSize = 256    // blocks straddle the segments' edges
		// Hold a partly filled object long enough for every partition's
		// flush to join it however slowly the machine runs.
		opts.ObjectLinger = time.Second
		b := startBroker(t, be, opts)
		const parts = 8
		tp := createTopic(t, b, "packed", parts, nil)
		batches := make([][]byte, parts)
		for p := range parts {
			batches[p] = batchOf(t, fmt.Sprintf("p%d-a", p), fmt.Sprintf("p%d-b-%0300d", p, p))
		}
		for p, r := range appendAll(t, b, tp, batches) {
			if r.Err != nil || r.BaseOffset != 0 {
				t.Fatalf("append to partition %d: %+v", p, r)
			}
		}

		ctx := context.Background()
		var segs []meta.Segment
		for p := range int32(parts) {
			s, err := be.meta.Segments(ctx, tp.ID, p, 0, 0)
			if err != nil || len(s) != 1 {
				t.Fatalf("segments of partition %d: %v %+v", p, err, s)
			}
			segs = append(segs, s[0])
		}
		key := segs[0].ObjectKey
		sort.Slice(segs, func(i, j int) bool { return segs[i].Position < segs[j].Position })
		at := int64(0)
		for _, s := range segs {
			if s.ObjectKey != key {
				t.Fatalf("partition %d is in object %s, partition %d in %s", s.Partition, s.ObjectKey, segs[0].Partition, key)
			}
			if s.Position != at {
				t.Fatalf("partition %d starts at %d, want %d (slices must tile the object)", s.Partition, s.Position, at)
			}
			at += s.Size
		}
		if n := countObjects(t, be); n != 1 {
			t.Fatalf("%d objects stored, want 1", n)
		}
		whole, err := be.objects.Get(ctx, key, 0, at)
		if err != nil || int64(len(whole)) != at {
			t.Fatalf("object %s: %d bytes, want %d (%v)", key, len(whole), at, err)
		}

		for p := range int32(parts) {
			want := []string{fmt.Sprintf("p%d-a", p), fmt.Sprintf("p%d-b-%0300d", p, p)}
			if got := values(readAll(t, b, tp, p, 0)); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("partition %d reads %q, want %q", p, got, want)
			}
			if got := values(readAll(t, b, tp, p, 1)); fmt.Sprint(got) != fmt.Sprint(want[1:]) {
				t.Fatalf("partition %d from offset 1 reads %q", p, got)
			}
		}

		// Trimming all but the last partition keeps the object: the last
		// one still reads from it.
		for p := range int32(parts) {
			if r, err := b.Trim(ctx, tp, p, 2); err != nil || r.Err != nil {
				t.Fatalf("trim partition %d: %v %v", p, err, r.Err)
			}
			n := countObjects(t, be)
			if p < parts-1 && n != 1 {
				t.Fatalf("after trimming partitions 0-%d: %d objects, want 1", p, n)
			}
			if p == parts-1 && n != 0 {
				t.Fatalf("after trimming every partition: %d objects, want 0", n)
			}
		}
	})
}

// TestFailedUploadFailsLaterFlushes fails the upload of an object while a
// later flush of the same partition waits in the next object: both
// appends fail (the later one must not commit over the hole), the log
// stays dense, and the partition goes on at offset 0. A partition whose
// flush was only in the later object is unaffected.
func TestFailedUploadFailsLaterFlushes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		faulty := objstoretest.NewFaulty(be.objects)
		be.objects = faulty
		opts := testOptions("node-1")
		opts.ObjectLinger = -1 // no linger: an object uploads at once
		b := startBroker(t, be, opts)
		tp := createTopic(t, b, "upload-fails", 2, nil)

		faulty.SetDelay(objstoretest.OpPut, 500*time.Millisecond)
		faulty.SetFailures(objstoretest.OpPut, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		first := make(chan actors.AppendResult, 1)
		go func() {
			r, err := b.Append(ctx, tp, 0, batchOf(t, "first"), -1)
			if err != nil {
				r.Err = err
			}
			first <- r
		}()
		// Let the first object start its (failing) upload, then queue a
		// second flush of partition 0 and one of partition 1 behind it.
		waitFor(t, 10*time.Second, "the first upload", func() bool { return faulty.Calls(objstoretest.OpPut) >= 1 })
		faulty.Heal()
		later := appendAll(t, b, tp, [][]byte{batchOf(t, "second"), batchOf(t, "other")})
		if r := <-first; !errors.Is(r.Err, actors.ErrStorage) {
			t.Fatalf("append in the failed object: %+v", r)
		}
		if !errors.Is(later[0].Err, actors.ErrStorage) {
			t.Fatalf("later append of the partition whose flush failed: %+v", later[0])
		}
		if later[1].Err != nil || later[1].BaseOffset != 0 {
			t.Fatalf("append of the other partition: %+v", later[1])
		}
		if r := appendOK(t, b, tp, 0, batchOf(t, "again")); r.BaseOffset != 0 {
			t.Fatalf("append after the failure got offset %d, want 0", r.BaseOffset)
		}
		if got := values(readAll(t, b, tp, 0, 0)); fmt.Sprint(got) != "[again]" {
			t.Fatalf("partition 0 holds %q", got)
		}
	})
}

// TestFencedFlushDoesNotFailItsObjectMates takes one partition's lease
// away behind its actor's back and appends to it and to another partition
// into one object: the fenced flush is refused, the other commits.
func TestFencedFlushDoesNotFailItsObjectMates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		opts := testOptions("node-1")
		opts.LeaseTTL = time.Minute // no renewal notices the theft first
		opts.ObjectLinger = time.Second
		b := startBroker(t, be, opts)
		tp := createTopic(t, b, "fenced-mate", 2, nil)
		appendOK(t, b, tp, 0, batchOf(t, "a0"))
		appendOK(t, b, tp, 1, batchOf(t, "b0"))

		ctx := context.Background()
		res := meta.PartitionResource(tp.ID, 0)
		ls, err := be.meta.Leases(ctx, res)
		if err != nil || len(ls) != 1 {
			t.Fatalf("lease of partition 0: %v %+v", err, ls)
		}
		if err := be.meta.ReleaseLease(ctx, res, ls[0].Owner, ls[0].Epoch); err != nil {
			t.Fatal(err)
		}
		if _, err := be.meta.AcquireLease(ctx, res, "thief@1", time.Minute); err != nil {
			t.Fatal(err)
		}

		got := appendAll(t, b, tp, [][]byte{batchOf(t, "a1"), batchOf(t, "b1")})
		if !errors.Is(got[0].Err, actors.ErrNotOwner) {
			t.Fatalf("append to the fenced partition: %+v", got[0])
		}
		if got[1].Err != nil || got[1].BaseOffset != 1 {
			t.Fatalf("append to its object mate: %+v", got[1])
		}
		p0, err := be.meta.Partition(ctx, tp.ID, 0)
		if err != nil || p0.NextOffset != 1 {
			t.Fatalf("fenced partition moved on: %+v %v", p0, err)
		}
		if got := values(readAll(t, b, tp, 1, 0)); fmt.Sprint(got) != "[b0 b1]" {
			t.Fatalf("partition 1 holds %q", got)
		}
	})
}
