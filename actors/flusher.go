package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/morax-dev/morax/persistence/meta"
)

// flusher is the node's one writer of segment objects. Partitions hand it
// their sealed flushes; it packs the flushes of many partitions into one
// object, uploads it, and commits all the object's segments in one metadata
// transaction (meta.Store.CommitFlushes), then tells each partition how its
// flush ended. One object and one transaction per node-level flush, instead
// of one per partition, is what keeps object PUTs per GiB and metadata
// transactions low when a node serves many partitions.
//
// Objects commit strictly in the order they were cut. A partition hands its
// flushes over in offset order and each lands in the open object or a later
// one, so the partition's commits stay in offset order (docs/ARCHITECTURE.md write path,
// step 4) while uploads overlap.
//
// The flusher is an actor like the node's other owners: it is reached
// only through its mailbox (send), and every field below mb is touched
// only on its goroutine. Timers and I/O completions come back through the
// mailbox.
type flusher struct {
	b  *Broker
	mb *mailbox
	// stopped is closed when the actor has stopped (see stop).
	stopped chan struct{}

	open      *packObject   // filling; nil when empty
	queue     []*packObject // cut, in cut order: uploading or waiting to commit
	uploading int
	// committing is set while the head of queue is being committed.
	committing bool
	timer      *time.Timer
	timerAt    time.Time

	// dropped holds, per partition incarnation, the newest flush generation
	// that failed: its flushes of that generation or older are no longer
	// wanted (the partition fails everything after a failed flush), so they
	// are left out of later commits. See partition.flushGen.
	dropped map[uint64]uint64
	// gone marks partition incarnations that stopped; their dropped entry
	// goes once none of their flushes is pending.
	gone map[uint64]bool
	// pending counts each incarnation's flushes in open and queue.
	pending map[uint64]int
}

// packObject is one object being filled, uploaded or committed.
type packObject struct {
	key      string
	parts    []*handedFlush
	size     int
	firstAt  time.Time // when its first flush arrived
	lastAt   time.Time // when its latest flush arrived
	uploaded bool
	failed   bool
}

// handedFlush is a partition's flush as the flusher holds it. The flusher
// reads only fields fixed at seal time (data and commit); the partition
// owns the rest of *f.
type handedFlush struct {
	from   *mailbox // the partition's
	src    uint64   // partition incarnation
	gen    uint64   // the partition's flush generation at seal time
	f      *flush
	commit meta.FlushCommit
}

// Messages the run goroutine receives.
type (
	// dropFlushes: a partition failed its flushes up to generation gen
	// (final: and stopped).
	dropFlushes struct {
		src, gen uint64
		final    bool
	}
	objectUploaded struct {
		o   *packObject
		err error
	}
	objectCommitted struct {
		o       *packObject
		parts   []*handedFlush // the flushes the transaction carried
		results []error
		err     error
	}
	flusherTick struct{}
	// stopFlusher closes the flusher's mailbox (Broker.Close).
	stopFlusher struct{}
)

// A flush handed over is a request: if the flusher has stopped, its
// mailbox answers the partition that the flush failed.
func (h *handedFlush) fail(err error) { h.from.tell(&uploadDone{f: h.f, err: err}) }
func (h *handedFlush) size() int      { return len(h.f.data) }

// partialUploads is how many objects smaller than ObjectBytes may upload at
// once. Past it, flushes wait for an upload to finish and join the open
// object meanwhile: under load objects grow (fewer PUTs per GiB) instead of
// more small objects being sent side by side.
const partialUploads = 1

// lingerCap bounds, in ObjectLingers, how long a partly filled object
// waits for a quiet gap while flushes keep joining it.
const lingerCap = 8

func newFlusher(b *Broker) (*flusher, error) {
	f := &flusher{
		b:       b,
		stopped: make(chan struct{}),
		dropped: map[uint64]uint64{},
		gone:    map[uint64]bool{},
		pending: map[uint64]int{},
	}
	// Messages to the flusher are never refused for depth: each carries a
	// flush or the end of an upload or commit, and the partitions' own
	// bounds (MaxInflightFlushes, the node byte budget) bound them.
	kind := newMailboxKind(b.metrics, "flusher", 0, ErrShuttingDown)
	_, err := spawnOwner(b.system.Root, b.system.Root, kind, "flusher", func(mb *mailbox) actor.Actor {
		f.mb = mb
		return f
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// send hands m to the flusher from any goroutine. After stop, a flush is
// answered as failed by the mailbox, so its partition does not wait.
func (f *flusher) send(m any) { f.mb.tell(m) }

// stop closes the flusher's mailbox and waits for the actor to stop.
// Partitions have drained by then (see Broker.Close); uploads still
// running finish into nothing.
func (f *flusher) stop() {
	f.send(stopFlusher{})
	<-f.stopped
}

// Receive implements actor.Actor.
func (f *flusher) Receive(ctx actor.Context) {
	if !f.mb.receive(ctx) {
		return
	}
	switch ctx.Message().(type) {
	case *actor.Started:
		return
	case *actor.Stopped:
		close(f.stopped)
		return
	case stopFlusher:
		f.mb.close(ctx)
		return
	}
	f.handle(ctx.Message())
	// Take everything already waiting before deciding to cut, so flushes
	// sealed at the same moment share an object: the mailbox's depth says
	// whether more is queued.
	if f.mb.queued.Load() == 0 {
		f.cut()
		f.commitNext()
	}
}

func (f *flusher) handle(m any) {
	switch m := m.(type) {
	case *handedFlush:
		f.add(m)
	case *dropFlushes:
		f.drop(m.src, m.gen)
		if m.final {
			f.gone[m.src] = true
			f.tidy(m.src)
		}
	case *objectUploaded:
		f.uploading--
		m.o.uploaded = m.err == nil
		if m.err != nil {
			f.b.metrics.flushFailures.WithLabelValues("upload").Inc()
			f.b.opts.Logger.Warn("object upload failed", "key", m.o.key, "flushes", len(m.o.parts), "err", m.err)
			m.o.failed = true
			err := fmt.Errorf("%w: upload %s: %v", ErrStorage, m.o.key, m.err)
			for _, h := range m.o.parts {
				f.drop(h.src, h.gen)
				f.answer(h, &uploadDone{f: h.f, err: err})
			}
		}
	case *objectCommitted:
		f.committed(m)
	case flusherTick:
		f.timerAt = time.Time{}
	}
}

// add puts a handed flush into the open object, or answers it at once if
// its partition already gave it up.
func (f *flusher) add(h *handedFlush) {
	if f.unwanted(h) {
		h.from.tell(&uploadDone{f: h.f, err: fmt.Errorf("%w: an earlier flush failed", ErrStorage)})
		return
	}
	if f.open == nil {
		f.open = &packObject{firstAt: time.Now()}
	}
	f.open.lastAt = time.Now()
	h.commit.Segment.Position = int64(f.open.size)
	f.open.parts = append(f.open.parts, h)
	f.open.size += len(h.f.data)
	f.pending[h.src]++
}

func (f *flusher) unwanted(h *handedFlush) bool {
	g, ok := f.dropped[h.src]
	return ok && h.gen <= g
}

func (f *flusher) drop(src, gen uint64) {
	if g, ok := f.dropped[src]; !ok || gen > g {
		f.dropped[src] = gen
	}
}

// answer sends a partition the end of one of its flushes.
func (f *flusher) answer(h *handedFlush, m any) {
	f.pending[h.src]--
	h.from.tell(m)
	f.tidy(h.src)
}

// tidy forgets a stopped partition incarnation once nothing of it is
// pending.
func (f *flusher) tidy(src uint64) {
	if f.pending[src] > 0 {
		return
	}
	delete(f.pending, src)
	if f.gone[src] {
		delete(f.gone, src)
		delete(f.dropped, src)
	}
}

// cut starts the upload of the open object when it is full, or when an
// upload slot for a partial object is free and no flush has joined the
// object for ObjectLinger (or, while flushes keep coming, once its first
// has waited lingerCap ObjectLingers); otherwise it arms a timer for that
// moment. Waiting for a quiet gap rather than a fixed time after the first
// flush keeps one produce request's appends to hundreds of partitions,
// which reach the flusher over several milliseconds, in one object.
func (f *flusher) cut() {
	o := f.open
	if o == nil || f.uploading >= f.b.opts.MaxUploads {
		return
	}
	full := o.size >= f.b.opts.ObjectBytes
	if !full {
		if f.uploading >= partialUploads {
			return // an upload's end calls cut again
		}
		linger := f.b.opts.ObjectLinger
		quiet := time.Until(o.lastAt.Add(linger))
		capped := time.Until(o.firstAt.Add(lingerCap * linger))
		if wait := min(quiet, capped); wait > 0 {
			f.arm(wait)
			return
		}
	}
	f.open = nil
	o.key = f.objectKey()
	f.queue = append(f.queue, o)
	f.uploading++
	key, parts, size := o.key, o.parts, o.size
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), f.b.opts.IOTimeout)
		defer cancel()
		data := make([]byte, 0, size)
		for _, h := range parts {
			data = append(data, h.f.data...)
		}
		start := time.Now()
		err := f.b.objects.Put(ctx, key, data)
		f.b.metrics.uploadSeconds.Observe(time.Since(start).Seconds())
		f.send(&objectUploaded{o: o, err: err})
	}()
}

func (f *flusher) arm(wait time.Duration) {
	now := time.Now()
	at := now.Add(wait)
	if f.timerAt.After(now) && !f.timerAt.After(at) {
		return // armed for sooner already
	}
	f.timerAt = at
	if f.timer != nil {
		f.timer.Stop()
	}
	f.timer = time.AfterFunc(wait, func() { f.send(flusherTick{}) })
}

// objectKey names a new object. The time prefix sorts objects by age for
// people listing the bucket; the random part makes the key unique to this
// upload, so two nodes (or two lives of one node) never write one key.
func (f *flusher) objectKey() string {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	return fmt.Sprintf("seg/%s-%s", time.Now().UTC().Format("20060102T150405.000000000Z"), hex.EncodeToString(nonce[:]))
}

// commitNext starts the commit of the oldest object once it is uploaded,
// dropping failed objects off the front of the queue first. One commit
// runs at a time: objects commit in the order they were cut.
func (f *flusher) commitNext() {
	for !f.committing && len(f.queue) > 0 {
		o := f.queue[0]
		if o.failed {
			f.queue = f.queue[1:]
			continue
		}
		if !o.uploaded {
			return
		}
		var parts []*handedFlush
		var cs []meta.FlushCommit
		for _, h := range o.parts {
			if f.unwanted(h) {
				f.answer(h, &uploadDone{f: h.f, err: fmt.Errorf("%w: an earlier flush failed", ErrStorage)})
				continue
			}
			h.commit.Segment.ObjectKey = o.key
			parts = append(parts, h)
			cs = append(cs, h.commit)
		}
		if len(cs) == 0 {
			// Nothing in it is wanted any more: nothing will reference it.
			f.queue = f.queue[1:]
			f.deleteObject(o.key)
			continue
		}
		f.committing = true
		f.b.metrics.metaCommits.Inc()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), f.b.opts.IOTimeout)
			defer cancel()
			start := time.Now()
			results, err := f.b.meta.CommitFlushes(ctx, cs)
			f.b.metrics.commitSeconds.Observe(time.Since(start).Seconds())
			f.send(&objectCommitted{o: o, parts: parts, results: results, err: err})
		}()
	}
}

// committed answers the partitions of a committed object. A flush the
// transaction refused (fenced, or not following its partition's committed
// offsets) and every flush of a transaction whose outcome is unknown make
// their partition's later flushes unwanted: the partition stops or reloads
// and fails them.
func (f *flusher) committed(m *objectCommitted) {
	f.committing = false
	f.queue = f.queue[1:]
	if m.err == nil && len(m.results) != len(m.parts) {
		m.err = fmt.Errorf("metadata store answered %d results for %d flushes", len(m.results), len(m.parts))
	}
	if m.err != nil {
		f.b.metrics.flushFailures.WithLabelValues("commit").Inc()
		f.b.opts.Logger.Warn("object commit failed", "key", m.o.key, "flushes", len(m.parts), "err", m.err)
		// A partition may have several flushes in the transaction, all
		// equally unknown: it hears of them in one message, so it does
		// not take the later ones for refused.
		first := map[uint64]*commitDone{}
		var order []*handedFlush
		for _, h := range m.parts {
			f.drop(h.src, h.gen)
			if d, ok := first[h.src]; ok {
				d.more = append(d.more, h.f)
				f.pending[h.src]--
				continue
			}
			first[h.src] = &commitDone{f: h.f, err: m.err}
			order = append(order, h)
		}
		for _, h := range order {
			f.answer(h, first[h.src])
		}
		return
	}
	stored := 0
	for i, h := range m.parts {
		if err := m.results[i]; err != nil {
			if !errors.Is(err, meta.ErrFenced) {
				f.b.metrics.flushFailures.WithLabelValues("commit").Inc()
			}
			f.drop(h.src, h.gen)
			f.answer(h, &commitDone{f: h.f, err: err})
			continue
		}
		stored++
		f.answer(h, &commitDone{f: h.f})
	}
	if stored == 0 {
		f.deleteObject(m.o.key)
		return
	}
	f.b.metrics.flushes.Inc()
	f.b.metrics.flushBytes.Observe(float64(m.o.size))
	f.b.metrics.flushSegments.Observe(float64(stored))
}

// deleteObject removes an object no segment references; if that fails the
// orphan sweep removes it later.
func (f *flusher) deleteObject(key string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), f.b.opts.IOTimeout)
		defer cancel()
		_ = f.b.objects.Delete(ctx, key)
	}()
}
