package actors_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/persistence/objstore/objstoretest"
	"github.com/morax-dev/morax/persistence/segment"
)

// TestAppendsDenseAndDurable appends from many goroutines to several
// partitions while readers follow, then restarts the broker on the same
// stores and checks every acknowledged record is there once, in dense
// offsets, in each partition.
func TestAppendsDenseAndDurable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		b := startBroker(t, be, testOptions("node-1"))
		tp := createTopic(t, b, "dense", 3, nil)
		const writers, perWriter = 12, 40
		type ack struct {
			part      int32
			base, end int64
			vals      []string
		}
		acks := make(chan ack, writers*perWriter)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					part := int32((w + i) % 3)
					vals := []string{fmt.Sprintf("w%d-%d-a", w, i), fmt.Sprintf("w%d-%d-b", w, i)}
					r := appendOK(t, b, tp, part, batchOf(t, vals...))
					acks <- ack{part, r.BaseOffset, r.EndOffset, vals}
				}
			}()
		}
		// A concurrent reader parks at the end of partition 0 and must be
		// woken by commits.
		readerDone := make(chan int64)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var off int64
			for off < 10 {
				r, err := b.Fetch(ctx, tp, 0, actors.Fetch{Offset: off, MaxBytes: 1 << 20, MaxWait: 5 * time.Second})
				if err != nil || r.Err != nil {
					readerDone <- -1
					return
				}
				off = max(off, r.HighWatermark)
			}
			readerDone <- off
		}()
		wg.Wait()
		close(acks)
		if got := <-readerDone; got < 10 {
			t.Fatalf("parked reader did not follow the log: %d", got)
		}
		want := map[int32]map[int64]string{0: {}, 1: {}, 2: {}}
		for a := range acks {
			if a.end-a.base != 2 {
				t.Fatalf("ack covers %d offsets, want 2", a.end-a.base)
			}
			for i, v := range a.vals {
				off := a.base + int64(i)
				if prev, dup := want[a.part][off]; dup {
					t.Fatalf("partition %d offset %d acknowledged twice (%q and %q)", a.part, off, prev, v)
				}
				want[a.part][off] = v
			}
		}
		check := func(b *actors.Broker) {
			for part, offs := range want {
				recs := readAll(t, b, tp, part, 0)
				if len(recs) != len(offs) {
					t.Fatalf("partition %d: read %d records, acknowledged %d", part, len(recs), len(offs))
				}
				for _, r := range recs {
					if string(r.Value) != offs[r.Offset] {
						t.Fatalf("partition %d offset %d: read %q, acknowledged %q", part, r.Offset, r.Value, offs[r.Offset])
					}
				}
			}
		}
		check(b)
		closeBroker(t, b)
		b2 := startBroker(t, be, testOptions("node-1"))
		check(b2)
		// The log continues densely after the restart.
		r := appendOK(t, b2, tp, 0, batchOf(t, "after-restart"))
		if r.BaseOffset != int64(len(want[0])) {
			t.Fatalf("after restart appended at %d, want %d", r.BaseOffset, len(want[0]))
		}
	})
}

// TestFencedOwnerCannotCommit gives the partition to a second node behind
// the first one's back: the first node's next commit is refused by the
// metadata store, its append fails, and only the new owner commits.
func TestFencedOwnerCannotCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		a := startBroker(t, be, testOptions("node-a"))
		tp := createTopic(t, a, "fenced", 1, nil)
		first := appendOK(t, a, tp, 0, batchOf(t, "from-a"))
		resource := meta.PartitionResource(tp.ID, 0)
		leases, err := be.meta.Leases(ctx, resource)
		if err != nil || len(leases) != 1 {
			t.Fatalf("leases: %v %v", leases, err)
		}
		// Node b takes over: the lease is released under a's feet.
		if err := be.meta.ReleaseLease(ctx, resource, a.LeaseOwner(), leases[0].Epoch); err != nil {
			t.Fatalf("release: %v", err)
		}
		b := startBroker(t, be, testOptions("node-b"))
		second := appendOK(t, b, tp, 0, batchOf(t, "from-b"))
		if second.BaseOffset != first.EndOffset {
			t.Fatalf("new owner appended at %d, want %d", second.BaseOffset, first.EndOffset)
		}
		if _, err := a.Append(ctx, tp, 0, batchOf(t, "stale"), -1); !errors.Is(err, actors.ErrNotOwner) {
			t.Fatalf("stale owner's append: got %v, want ErrNotOwner", err)
		}
		recs := readAll(t, b, tp, 0, 0)
		if len(recs) != 2 || string(recs[0].Value) != "from-a" || string(recs[1].Value) != "from-b" {
			t.Fatalf("log holds %v", values(recs))
		}
		l, _ := be.meta.Leases(ctx, resource)
		if meta.LeaseNode(l[0].Owner) != "node-b" || l[0].Epoch <= leases[0].Epoch {
			t.Fatalf("lease after takeover: %+v", l[0])
		}
	})
}

// TestIdempotentProducer replays and reorders batches of an idempotent
// producer: a retry gets the original offsets without a second write, a gap
// is refused, an old epoch is fenced, and the windows survive a restart.
func TestIdempotentProducer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		b := startBroker(t, be, testOptions("node-1"))
		tp := createTopic(t, b, "idem", 1, nil)
		const pid = 77
		r0 := appendOK(t, b, tp, 0, idempotent(batchOf(t, "a", "b"), pid, 0, 0))
		r1 := appendOK(t, b, tp, 0, idempotent(batchOf(t, "c"), pid, 0, 2))
		// A retry of the first batch answers its original offsets.
		dup := appendOK(t, b, tp, 0, idempotent(batchOf(t, "a", "b"), pid, 0, 0))
		if dup.BaseOffset != r0.BaseOffset || dup.EndOffset != r0.EndOffset {
			t.Fatalf("duplicate answered [%d,%d), original [%d,%d)", dup.BaseOffset, dup.EndOffset, r0.BaseOffset, r0.EndOffset)
		}
		// A gap in sequence numbers is refused.
		gap, _ := b.Append(ctx, tp, 0, idempotent(batchOf(t, "x"), pid, 0, 9), -1)
		if !errors.Is(gap.Err, actors.ErrOutOfOrderSequence) {
			t.Fatalf("gap: got %v, want ErrOutOfOrderSequence", gap.Err)
		}
		// A new epoch starts at sequence 0 and fences the old one.
		appendOK(t, b, tp, 0, idempotent(batchOf(t, "d"), pid, 1, 0))
		old, _ := b.Append(ctx, tp, 0, idempotent(batchOf(t, "y"), pid, 0, 3), -1)
		if !errors.Is(old.Err, actors.ErrProducerFenced) {
			t.Fatalf("old epoch: got %v, want ErrProducerFenced", old.Err)
		}
		closeBroker(t, b)
		b2 := startBroker(t, be, testOptions("node-1"))
		again := appendOK(t, b2, tp, 0, idempotent(batchOf(t, "d"), pid, 1, 0))
		if again.BaseOffset != r1.EndOffset {
			t.Fatalf("duplicate after restart answered %d, want %d", again.BaseOffset, r1.EndOffset)
		}
		if got := values(readAll(t, b2, tp, 0, 0)); fmt.Sprint(got) != "[a b c d]" {
			t.Fatalf("log holds %v", got)
		}
	})
}

// TestConditionalAppend checks expected-offset fencing of appends.
func TestConditionalAppend(t *testing.T) {
	be := embedded(t)
	b := startBroker(t, be, testOptions("node-1"))
	tp := createTopic(t, b, "cond", 1, nil)
	ctx := context.Background()
	r, _ := b.Append(ctx, tp, 0, batchOf(t, "a"), 0)
	if r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("conditional append at 0: %+v", r)
	}
	r, _ = b.Append(ctx, tp, 0, batchOf(t, "b"), 0)
	var c *actors.ConflictError
	if !errors.As(r.Err, &c) || c.End != 1 || !errors.Is(r.Err, actors.ErrConflict) {
		t.Fatalf("stale conditional append: %v", r.Err)
	}
}

// TestStorageOutage makes object storage fail: appends get a retriable
// error quickly, the node's buffers drain to zero, and once the store is
// back appends succeed with dense offsets.
func TestStorageOutage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		faulty := objstoreFaulty(be)
		be.objects = faulty
		opts := testOptions("node-1")
		opts.IOTimeout = 2 * time.Second
		b := startBroker(t, be, opts)
		tp := createTopic(t, b, "outage", 1, nil)
		appendOK(t, b, tp, 0, batchOf(t, "before"))
		faultyFail(faulty, true)
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := b.Append(ctx, tp, 0, batchOf(t, fmt.Sprint("during-", i)), -1)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, actors.ErrStorage) && !errors.Is(err, actors.ErrBackpressure) {
				t.Fatalf("append during outage: got %v, want ErrStorage or ErrBackpressure", err)
			}
		}
		if got := bufferedBytes(t, opts); got != 0 {
			t.Fatalf("buffers hold %v bytes after every append was answered", got)
		}
		faultyFail(faulty, false)
		r := appendOK(t, b, tp, 0, batchOf(t, "after"))
		if r.BaseOffset != 1 {
			t.Fatalf("after outage appended at %d, want 1", r.BaseOffset)
		}
		if got := values(readAll(t, b, tp, 0, 0)); fmt.Sprint(got) != "[before after]" {
			t.Fatalf("log holds %v", got)
		}
	})
}

// TestColdReadsAndTrim reads a log larger than the tail cache (so reads go
// through object storage), then trims it and checks what stays readable.
func TestColdReadsAndTrim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		opts := testOptions("node-1")
		opts.TailCacheBytes = 1 // nothing fits: every read is cold
		opts.FlushBytes = 4096
		opts.BlockSize = 8192
		b := startBroker(t, be, opts)
		tp := createTopic(t, b, "cold", 1, nil)
		var want []string
		for i := range 60 {
			v := fmt.Sprintf("%03d-%0200d", i, i)
			want = append(want, v)
			appendOK(t, b, tp, 0, batchOf(t, v))
		}
		got := values(readAll(t, b, tp, 0, 0))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("cold read mismatch: got %d records", len(got))
		}
		// Reading from the middle returns from that offset on.
		if got := values(readAll(t, b, tp, 0, 37)); fmt.Sprint(got) != fmt.Sprint(want[37:]) {
			t.Fatalf("read from 37: %v", got)
		}
		ctx := context.Background()
		tr, err := b.Trim(ctx, tp, 0, 30)
		if err != nil || tr.Err != nil || tr.LogStartOffset != 30 {
			t.Fatalf("trim: %+v %v", tr, err)
		}
		f, _ := b.Fetch(ctx, tp, 0, actors.Fetch{Offset: 10, MaxBytes: 1 << 20})
		if !errors.Is(f.Err, actors.ErrOffsetOutOfRange) {
			t.Fatalf("read below log start: %v", f.Err)
		}
		if got := values(readAll(t, b, tp, 0, 30)); fmt.Sprint(got) != fmt.Sprint(want[30:]) {
			t.Fatalf("read after trim: %v", got)
		}
		lo, _ := b.ListOffsets(ctx, tp, 0, actors.EarliestTimestamp)
		if lo.Offset != 30 {
			t.Fatalf("earliest after trim: %d", lo.Offset)
		}
		// Segments wholly below 30 are gone from metadata and storage.
		segs, _ := be.meta.Segments(ctx, tp.ID, 0, 0, 1000)
		if len(segs) == 0 || segs[0].EndOffset <= 30 {
			t.Fatalf("segments below the log start remain: first %+v", segs[0])
		}
		objs := countObjects(t, be)
		if objs != len(segs) {
			t.Fatalf("%d objects stored for %d segments", objs, len(segs))
		}
	})
}

// TestListOffsetsByTimestamp finds offsets by record timestamp.
func TestListOffsetsByTimestamp(t *testing.T) {
	be := embedded(t)
	b := startBroker(t, be, testOptions("node-1"))
	tp := createTopic(t, b, "times", 1, nil)
	base := time.Now().Add(-time.Hour).UnixMilli()
	for i := range 10 {
		appendOK(t, b, tp, 0, batchAt(t, base+int64(i)*1000, fmt.Sprint(i)))
	}
	ctx := context.Background()
	for _, c := range []struct {
		ts   int64
		want int64
	}{
		{base - 1, 0}, {base, 0}, {base + 1, 1}, {base + 4500, 5}, {base + 9000, 9}, {base + 9001, -1},
		{actors.LatestTimestamp, 10}, {actors.EarliestTimestamp, 0}, {actors.MaxTimestamp, 9},
	} {
		r, err := b.ListOffsets(ctx, tp, 0, c.ts)
		if err != nil || r.Err != nil {
			t.Fatalf("list offsets %d: %v %v", c.ts, err, r.Err)
		}
		if r.Offset != c.want {
			t.Errorf("list offsets %d: got %d, want %d", c.ts, r.Offset, c.want)
		}
	}
}

// TestRetentionBySize drops the oldest segments once a partition passes
// retention.bytes.
func TestRetentionBySize(t *testing.T) {
	be := embedded(t)
	opts := testOptions("node-1")
	opts.RetentionInterval = 50 * time.Millisecond
	opts.FlushBytes = 1
	b := startBroker(t, be, opts)
	tp := createTopic(t, b, "retained", 1, map[string]string{actors.ConfigRetentionBytes: "2000"})
	for i := range 20 {
		appendOK(t, b, tp, 0, batchOf(t, fmt.Sprintf("%0400d", i)))
	}
	// Retention passes run while the appends go on, so wait for one that
	// saw all 20 segments: then the partition holds at most 2000 bytes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := b.Describe(context.Background(), tp, 0)
		if err != nil || d.Err != nil {
			t.Fatalf("describe: %v %v", err, d.Err)
		}
		if d.Bytes <= 2000 {
			if d.LogStartOffset < 10 || d.HighWatermark != 20 {
				t.Fatalf("log is [%d, %d) holding %d bytes", d.LogStartOffset, d.HighWatermark, d.Bytes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition still holds %d bytes with retention.bytes 2000 (log start %d)", d.Bytes, d.LogStartOffset)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := readAll(t, b, tp, 0, 19); len(got) != 1 {
		t.Fatalf("newest record not readable after retention: %d records", len(got))
	}
}

// TestOrphanSweep removes uncommitted objects and keeps committed ones.
func TestOrphanSweep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		opts := testOptions("node-1")
		opts.OrphanMinAge = time.Millisecond
		b := startBroker(t, be, opts)
		tp := createTopic(t, b, "sweep", 1, nil)
		appendOK(t, b, tp, 0, batchOf(t, "kept"))
		ctx := context.Background()
		orphan := fmt.Sprintf("seg/%s/0/%020d-1-deadbeef0000", tp.ID, 99)
		if err := be.objects.Put(ctx, orphan, batchOf(t, "orphan")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		n, err := b.SweepOrphans(ctx)
		if err != nil || n != 1 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		if _, err := be.objects.Get(ctx, orphan, 0, -1); err == nil {
			t.Fatal("orphan still stored")
		}
		if got := values(readAll(t, b, tp, 0, 0)); fmt.Sprint(got) != "[kept]" {
			t.Fatalf("log holds %v", got)
		}
	})
}

// TestBadBatches refuses malformed appends with precise errors and keeps
// serving.
func TestBadBatches(t *testing.T) {
	be := embedded(t)
	b := startBroker(t, be, testOptions("node-1"))
	tp := createTopic(t, b, "bad", 1, map[string]string{actors.ConfigMaxMessageBytes: "1000"})
	good := batchOf(t, "x")
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	v1 := append([]byte(nil), good...)
	v1[16] = 1
	for _, c := range []struct {
		name  string
		batch []byte
		want  error
	}{
		{"empty", nil, actors.ErrInvalidRecord},
		{"truncated", good[:len(good)-3], actors.ErrCorruptRecord},
		{"bad crc", badCRC, actors.ErrCorruptRecord},
		{"magic 1", v1, actors.ErrInvalidRecord},
		{"too large", batchOf(t, fmt.Sprintf("%02000d", 0)), actors.ErrMessageTooLarge},
	} {
		r, _ := b.Append(context.Background(), tp, 0, c.batch, -1)
		if !errors.Is(r.Err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, r.Err, c.want)
		}
	}
	appendOK(t, b, tp, 0, batchOf(t, "still-fine"))
}

func values(recs []segment.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

// batchAt builds a one-record batch with the given timestamp.
func batchAt(t *testing.T, ts int64, v string) []byte {
	t.Helper()
	b, err := segment.BuildBatch([]segment.Record{{Timestamp: ts, Value: []byte(v)}}, segment.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func objstoreFaulty(be backend) *objstoretest.Faulty { return objstoretest.NewFaulty(be.objects) }

func faultyFail(f *objstoretest.Faulty, fail bool) {
	if fail {
		f.SetFailures(objstoretest.OpPut|objstoretest.OpGet, 1)
	} else {
		f.Heal()
	}
}

// bufferedBytes reads the node's morax_buffered_bytes gauge.
func bufferedBytes(t *testing.T, opts actors.Options) float64 {
	t.Helper()
	return metric(t, opts, "morax_buffered_bytes")
}

func countObjects(t *testing.T, be backend) int {
	t.Helper()
	n := 0
	err := be.objects.List(context.Background(), "seg/", func(objstore.ObjectInfo) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSlowStorageBoundsMemory makes every upload slow and floods one
// partition: appends beyond the buffer limits are refused at once with
// ErrBackpressure instead of queueing, the node's unacknowledged bytes
// never pass its limit, and everything accepted is acknowledged in the end.
func TestSlowStorageBoundsMemory(t *testing.T) {
	be := embedded(t)
	faulty := objstoretest.NewFaulty(be.objects)
	faulty.SetDelay(objstoretest.OpPut, 300*time.Millisecond)
	be.objects = faulty
	opts := testOptions("node-1")
	opts.FlushBytes = 64 << 10
	opts.MaxBufferBytes = 256 << 10
	opts.NodeBufferBytes = 512 << 10
	opts.MaxMessageBytes = 64 << 10
	b := startBroker(t, be, opts)
	tp := createTopic(t, b, "slow", 1, nil)
	batch := batchOf(t, string(make([]byte, 8<<10)))
	var acked, refused, peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if v := int64(bufferedBytes(t, opts)); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	// Send 320 appends at once (2.5 MiB) without waiting for answers.
	results := make(chan actors.AppendResult, 320)
	for range 320 {
		b.Send(tp, 0, &actors.Append{Batches: slices.Clone(batch), ExpectedOffset: -1,
			Reply: func(r actors.AppendResult) { results <- r }})
	}
	for range 320 {
		r := <-results
		switch {
		case r.Err == nil:
			acked.Add(1)
		case errors.Is(r.Err, actors.ErrBackpressure):
			refused.Add(1)
		default:
			t.Errorf("append: %v", r.Err)
		}
	}
	close(stop)
	<-sampled
	if refused.Load() == 0 {
		t.Fatalf("no append was refused although the store is slower than the producers (%d acked)", acked.Load())
	}
	if peak.Load() > opts.NodeBufferBytes {
		t.Fatalf("node held %d unacknowledged bytes, limit %d", peak.Load(), opts.NodeBufferBytes)
	}
	if got := len(readAll(t, b, tp, 0, 0)); int64(got) != acked.Load() {
		t.Fatalf("log holds %d records, %d appends acknowledged", got, acked.Load())
	}
}

// TestFetchFirstBatchLargerThanMaxBytes returns the first batch whole even
// when it alone exceeds MaxBytes and later segments are cached too.
func TestFetchFirstBatchLargerThanMaxBytes(t *testing.T) {
	be := embedded(t)
	b := startBroker(t, be, testOptions("node-1"))
	tp := createTopic(t, b, "big-first", 1, nil)
	big := batchOf(t, string(make([]byte, 4096)))
	appendOK(t, b, tp, 0, big)
	appendOK(t, b, tp, 0, batchOf(t, "next"))
	r, err := b.Fetch(context.Background(), tp, 0, actors.Fetch{Offset: 0, MaxBytes: 100})
	if err != nil || r.Err != nil {
		t.Fatalf("fetch: %v %v", err, r.Err)
	}
	if len(r.Batches) != len(big) {
		t.Fatalf("fetch returned %d bytes, want the first batch whole (%d)", len(r.Batches), len(big))
	}
}

// TestRequestsToARefusedPartitionAreAnswered sends concurrent appends to a
// partition whose lease another incarnation of the same node id holds:
// every one is answered (ErrNotOwner), none is lost while the refused
// partition actors stop and new ones start.
func TestRequestsToARefusedPartitionAreAnswered(t *testing.T) {
	be := allBackends[0].open(t)
	o := testOptions("same-node")
	holder := startBroker(t, be, o)
	tp := createTopic(t, holder, "refused", 4, nil)
	for p := range tp.Partitions {
		appendOK(t, holder, tp, p, batchOf(t, "held"))
	}
	o.Metrics = nil
	restarted := startBroker(t, be, o)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := restarted.Append(ctx, tp, int32(i)%tp.Partitions, batchOf(t, "refused"), -1)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("worker %d append %d unanswered: %v", w, i, err)
					return
				}
				if !errors.Is(err, actors.ErrNotOwner) {
					t.Errorf("worker %d append %d: got %v, want ErrNotOwner", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestIdlePartitionNoticesLostLease takes an idle partition's lease away:
// the node's next batch renewal misses it and the partition actor stops
// on its own, without waiting for a commit to be fenced; a partition whose
// lease is intact keeps serving.
func TestIdlePartitionNoticesLostLease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		o := testOptions("node-a")
		o.LeaseTTL = 900 * time.Millisecond // batch renewals every 300 ms
		a := startBroker(t, be, o)
		tp := createTopic(t, a, "idle-lease", 2, nil)
		appendOK(t, a, tp, 0, batchOf(t, "x"))
		appendOK(t, a, tp, 1, batchOf(t, "y"))
		res := meta.PartitionResource(tp.ID, 0)
		ls, err := be.meta.Leases(ctx, res)
		if err != nil || len(ls) != 1 {
			t.Fatalf("lease: %v %v", ls, err)
		}
		if err := be.meta.ReleaseLease(ctx, res, ls[0].Owner, ls[0].Epoch); err != nil {
			t.Fatal(err)
		}
		if _, err := be.meta.AcquireLease(ctx, res, "node-b@1", time.Minute); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, held := a.LocalLeader(tp.ID, 0); !held {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("partition 0 still believes it leads after its lease was taken")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Partition 1 is renewed by the same batches and keeps serving,
		// well past its first TTL.
		time.Sleep(2 * o.LeaseTTL)
		if _, held := a.LocalLeader(tp.ID, 1); !held {
			t.Fatal("partition 1 lost its lease although nobody took it")
		}
		appendOK(t, a, tp, 1, batchOf(t, "z"))
	})
}

// lyingCommits is a metadata store whose next CommitFlushes reports a
// failure: after committing (the reply was lost) when afterCommit is set,
// else without committing.
type lyingCommits struct {
	meta.Store
	mu          sync.Mutex
	armed       bool
	afterCommit bool
}

func (s *lyingCommits) arm(afterCommit bool) {
	s.mu.Lock()
	s.armed, s.afterCommit = true, afterCommit
	s.mu.Unlock()
}

func (s *lyingCommits) CommitFlushes(ctx context.Context, cs []meta.FlushCommit) ([]error, error) {
	s.mu.Lock()
	armed, after := s.armed, s.afterCommit
	s.armed = false
	s.mu.Unlock()
	if !armed {
		return s.Store.CommitFlushes(ctx, cs)
	}
	if after {
		if _, err := s.Store.CommitFlushes(ctx, cs); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("connection reset while committing")
}

// TestUncertainCommitIsResolved makes a flush's commit report an error.
// When the commit in fact happened, the append is acknowledged at its
// offsets (it is stored: failing it would make the client write it
// twice); when it did not, the append fails and the log goes on densely.
func TestUncertainCommitIsResolved(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		lying := &lyingCommits{Store: be.meta}
		be.meta = lying
		b := startBroker(t, be, testOptions("node-1"))
		tp := createTopic(t, b, "uncertain", 1, nil)
		appendOK(t, b, tp, 0, batchOf(t, "first"))

		lying.arm(true)
		r := appendOK(t, b, tp, 0, batchOf(t, "stored-despite-error"))
		if r.BaseOffset != 1 {
			t.Fatalf("append whose commit reply was lost: offset %d, want 1", r.BaseOffset)
		}

		lying.arm(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := b.Append(ctx, tp, 0, batchOf(t, "not-stored"), -1); !errors.Is(err, actors.ErrStorage) {
			t.Fatalf("append whose commit failed: got %v, want ErrStorage", err)
		}
		r = appendOK(t, b, tp, 0, batchOf(t, "after"))
		if r.BaseOffset != 2 {
			t.Fatalf("next append at %d, want 2", r.BaseOffset)
		}
		if got := values(readAll(t, b, tp, 0, 0)); fmt.Sprint(got) != "[first stored-despite-error after]" {
			t.Fatalf("log holds %v", got)
		}
	})
}

// TestColdReadStopsAtABatchThatDoesNotFit reads across three segments
// from object storage (no tail cache) with a budget that holds the first
// segment's batch but not the second's: the read must stop after the first
// segment, not skip the second and return the third (a consumer would
// never see the skipped records). readAll also checks every fetch starts
// at the offset asked and continues densely.
func TestColdReadStopsAtABatchThatDoesNotFit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		o := testOptions("node-1")
		o.TailCacheBytes = 1 // every segment is larger: reads go to objects
		b := startBroker(t, be, o)
		tp := createTopic(t, b, "cold-gap", 1, nil)
		small := batchOf(t, "a")
		appendOK(t, b, tp, 0, small)
		appendOK(t, b, tp, 0, batchOf(t, strings.Repeat("b", 64<<10)))
		appendOK(t, b, tp, 0, batchOf(t, "c"))

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := b.Fetch(ctx, tp, 0, actors.Fetch{Offset: 0, MaxBytes: len(small) + 1024})
		if err != nil {
			t.Fatal(err)
		}
		var offs []int64
		for batch := range segment.Batches(r.Batches) {
			recs, err := segment.Records(batch)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				offs = append(offs, rec.Offset)
			}
		}
		if fmt.Sprint(offs) != "[0]" {
			t.Fatalf("fetch from 0 with room for one small batch returned offsets %v, want [0]", offs)
		}
		if got := values(readAll(t, b, tp, 0, 0)); len(got) != 3 || got[2] != "c" {
			t.Fatalf("log holds %d records", len(got))
		}
	})
}
