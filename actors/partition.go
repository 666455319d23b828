package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

// partitionPhase is where a partition actor is in its life.
type partitionPhase int

const (
	// phaseStarting: acquiring the lease and loading state; requests wait.
	phaseStarting partitionPhase = iota
	// phaseReady: serving.
	phaseReady
	// phaseRecovering: a flush failed; reloading committed state from
	// metadata before serving again; requests wait.
	phaseRecovering
	// phaseDraining: graceful stop; committing what is buffered.
	phaseDraining
	// phaseStopped: answering nothing more.
	phaseStopped
)

// Internal messages a partition actor sends itself, mostly results of I/O
// done on other goroutines.
type (
	started struct {
		lease     meta.Lease
		part      meta.Partition
		producers []meta.ProducerState
		err       error
	}
	lingerExpired struct{ gen uint64 }
	uploadDone    struct {
		f   *flush
		err error
	}
	// commitDone ends a commit of f; on an error whose outcome is
	// unknown, more are this partition's later flushes in the same
	// transaction, equally unknown.
	commitDone struct {
		f    *flush
		more []*flush
		err  error
	}
	parkExpired   struct{ r *parkedReader }
	logStartMoved struct{ start, bytes int64 }
	drain         struct{}
	leaseReleased struct{}
	stopNow       struct{ err error }
)

// lingerPipelineDepth is how many flushes may be in flight before a linger
// expiry waits for one of them to commit instead of sealing another object.
const lingerPipelineDepth = 2

// maxStash bounds the requests a starting or recovering partition holds.
const maxStash = 4096

// partition is the actor that owns one topic partition: its next offset,
// append buffer, in-flight flushes, idempotent-producer windows, tail cache
// and parked readers. All fields are touched only on the actor's goroutine.
type partition struct {
	b     *Broker
	topic meta.Topic
	id    int32
	key   meta.PartitionKey
	log   *slog.Logger
	set   TopicSettings
	// mb is the actor's own mailbox: the way its timers and I/O
	// goroutines come back to it, and what it closes when it retires.
	mb *mailbox
	// retired is set once the actor handed itself back to the registry;
	// Receive then closes its mailbox.
	retired bool

	phase partitionPhase
	stash []Request // requests that arrived while starting or recovering

	// lease is the lease the actor writes under. The node's lease owner
	// renews it and keeps its deadline, and sends leaseLost when it is
	// gone.
	lease meta.Lease
	// resource is the partition's lease resource name.
	resource string

	logStart int64
	hw       int64 // high watermark: everything below is committed
	next     int64 // next offset to assign (hw + buffered + in flight)
	bytes    int64 // committed bytes

	committed producerTable // producer state as committed
	pending   producerTable // committed plus buffered and in flight

	buf       segment.Builder
	bufAppend []*pendingAppend
	bufProds  map[int64]meta.ProducerState // producer states changed in buf
	bufDups   []*dupWaiter
	lingerGen uint64
	lingering bool
	inflight  []*flush // handed to the flusher, in offset order
	// src names this actor's life to the flusher, and flushGen counts the
	// failures of its flushes: the flusher drops flushes of a generation
	// that failed (see flusher.dropped).
	src       uint64
	flushGen  uint64
	handedAny bool // a flush was handed over: the flusher must hear of the stop
	// uncertain are the flushes (consecutive, in offset order) of a commit
	// that failed with an unknown outcome;
	// its appends wait for the reload to say whether it is stored.
	uncertain []*flush
	// held is the bytes buffered plus in flight, bounded by MaxBufferBytes.
	held int64

	tail      []*cachedSegment // committed segments, oldest first
	tailBytes int64

	parked []*parkedReader
}

// pendingAppend is an accepted append waiting for its flush to commit.
type pendingAppend struct {
	a          *Append
	base, end  int64
	appendTime int64
}

// dupWaiter is the answer to a retried idempotent batch whose original is
// not committed yet: it is answered when the original is.
type dupWaiter struct {
	a         *Append
	base, end int64
}

// flush is one sealed segment on its way to object storage and metadata,
// through the node's flusher. Fields are fixed at seal time, so the
// flusher may read them; only the partition changes appends and dups.
type flush struct {
	data      []byte
	index     []segment.IndexEntry
	base, end int64
	maxTs     int64
	appends   []*pendingAppend
	dups      []*dupWaiter
	producers []meta.ProducerState
}

// cachedSegment is a committed segment kept in memory for tail reads.
type cachedSegment struct {
	base, end int64
	data      []byte
	index     []segment.IndexEntry
}

// parkedReader is a fetch waiting at the end of the log.
type parkedReader struct {
	f    *Fetch
	done bool
}

func newPartition(b *Broker, t meta.Topic, p int32, mb *mailbox) *partition {
	return &partition{
		mb:       mb,
		b:        b,
		topic:    t,
		id:       p,
		key:      meta.PartitionKey{TopicID: t.ID, Partition: p},
		resource: meta.PartitionResource(t.ID, p),
		log:      b.opts.Logger.With("topic", t.Name, "partition", p),
		src:      b.partitionLives.Add(1),
	}
}

// Receive implements actor.Actor.
func (p *partition) Receive(ctx actor.Context) {
	if !p.mb.receive(ctx) {
		return
	}
	defer func() {
		if p.retired {
			p.mb.close(ctx)
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("partition actor panicked; stopping it", "panic", r, "stack", string(debug.Stack()))
			err := fmt.Errorf("%w: internal error", ErrNotOwner)
			// The request being handled may be in none of the lists stop
			// answers from; answer it here so its caller does not hang.
			if req, ok := ctx.Message().(Request); ok {
				req.fail(err)
			}
			p.stop(err)
		}
	}()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.start()
	case *started:
		p.onStarted(m)
	case Request:
		p.handle(m)
	case *lingerExpired:
		if m.gen == p.lingerGen && p.lingering {
			p.lingering = false
			// Under load, let the buffer grow while earlier flushes are
			// still in flight: objects get larger (fewer PUTs per GiB) and
			// the next commit seals it. Only a full buffer is sealed into a
			// deeper pipeline.
			if len(p.inflight) < lingerPipelineDepth {
				p.seal()
			}
		}
	case *uploadDone:
		p.onUploaded(m)
	case *commitDone:
		p.onCommitted(m)
	case *recovered:
		p.onRecovered(m)
	case *retryReload:
		if p.phase == phaseRecovering {
			p.reload()
		}
	case *leaseLost:
		if p.phase != phaseStopped {
			p.log.Warn(m.why+"; stopping partition", "epoch", p.lease.Epoch)
			p.stop(fmt.Errorf("%w: %s", ErrNotOwner, m.why))
		}
	case *parkExpired:
		p.expirePark(m.r)
	case *logStartMoved:
		if m.start > p.logStart {
			p.logStart = m.start
			p.dropTailBelow(m.start)
		}
		if m.bytes >= 0 {
			// Commits since the read may have added bytes: the store's
			// figure can only lag behind ours, never run ahead.
			p.bytes = min(p.bytes, m.bytes)
		}
	case *topicChanged:
		if set, err := p.b.TopicSettings(m.topic); err == nil {
			p.topic, p.set = m.topic, set
		}
	case *retentionTick:
		if p.phase == phaseReady {
			p.applyRetention()
		}
	case *drain:
		p.startDrain()
	case *leaseReleased:
		p.retire()
	case *stopNow:
		p.stop(m.err)
	case *actor.Stopping:
		p.failAll(ErrNotOwner)
	}
}

func (p *partition) handle(r Request) {
	switch p.phase {
	case phaseStarting, phaseRecovering:
		if len(p.stash) >= maxStash {
			r.fail(fmt.Errorf("%w: partition is recovering", ErrBackpressure))
			return
		}
		p.stash = append(p.stash, r)
		return
	case phaseDraining:
		if _, ok := r.(*Append); ok {
			r.fail(ErrShuttingDown)
			return
		}
	case phaseStopped:
		r.fail(ErrNotOwner)
		return
	}
	switch m := r.(type) {
	case *Append:
		p.append(m)
	case *Fetch:
		p.fetch(m)
	case *ListOffsets:
		p.listOffsets(m)
	case *Trim:
		p.trim(m)
	case *Describe:
		p.describe(m)
	}
}

// send delivers a message to this actor from any goroutine.
func (p *partition) send(msg any) { p.mb.tell(msg) }

// io runs fn on its own goroutine with the broker's I/O timeout.
func (p *partition) io(fn func(ctx context.Context)) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.b.opts.IOTimeout)
		defer cancel()
		fn(ctx)
	}()
}

// start acquires the lease, loads committed state and registers the lease
// with the node's lease owner, off the actor.
func (p *partition) start() {
	var err error
	p.set, err = p.b.TopicSettings(p.topic)
	if err != nil {
		p.log.Warn("topic has invalid config; using defaults", "err", err)
		p.set, _ = p.b.TopicSettings(meta.Topic{Kind: p.topic.Kind})
	}
	// The I/O goroutine gets copies: a topic change may rewrite p.topic
	// on the actor meanwhile.
	id, part, resource, key, mb := p.topic.ID, p.id, p.resource, p.key, p.mb
	p.io(func(ctx context.Context) {
		var m started
		asked := time.Now()
		m.lease, m.err = p.b.meta.AcquireLease(ctx, resource, p.b.owner, p.b.opts.LeaseTTL)
		if m.err != nil {
			p.send(&m)
			return
		}
		m.part, m.err = p.b.meta.Partition(ctx, id, part)
		if m.err == nil {
			m.producers, m.err = p.b.meta.Producers(ctx, id, part)
		}
		if m.err == nil {
			// Published before the actor serves: a client that
			// LocalLeader sends here finds it serving.
			m.err = p.b.leases.hold(ctx, key, mb, m.lease, asked)
		}
		if m.err != nil {
			// The actor will stop without ever holding it: let the next
			// owner have it now rather than after the TTL.
			if err := p.b.meta.ReleaseLease(ctx, resource, m.lease.Owner, m.lease.Epoch); err != nil {
				p.log.Warn("release lease after a failed start", "err", err)
			}
		}
		p.send(&m)
	})
}

func (p *partition) onStarted(m *started) {
	if m.err != nil {
		err := m.err
		switch {
		case errors.Is(err, meta.ErrLeaseHeld) || errors.Is(err, meta.ErrFenced):
			err = fmt.Errorf("%w: %v", ErrNotOwner, m.err)
		case errors.Is(err, meta.ErrNotFound):
			err = fmt.Errorf("%w: %v", ErrUnknownPartition, m.err)
		case errors.Is(err, ErrNotOwner) || errors.Is(err, ErrShuttingDown):
			// the lease owner refused the lease: it says why
		default:
			err = fmt.Errorf("%w: start partition: %v", ErrStorage, m.err)
		}
		// The registry logs start failures in aggregate: a store outage
		// fails every start, and a line per partition per retry would
		// flood the log.
		p.b.registry.tell(&startFailed{topic: p.topic.Name, partition: p.id, err: m.err})
		p.stop(err)
		return
	}
	p.lease = m.lease
	p.applyCommitted(m.part, m.producers)
	p.phase = phaseReady
	p.log.Debug("partition started", "epoch", p.lease.Epoch, "next", p.next, "log_start", p.logStart)
	p.replayStash()
}

// applyCommitted resets in-memory state to what metadata holds.
func (p *partition) applyCommitted(part meta.Partition, producers []meta.ProducerState) {
	p.logStart = part.LogStartOffset
	p.hw = part.NextOffset
	p.next = part.NextOffset
	p.bytes = part.Bytes
	p.committed = newProducerTable(producers)
	p.pending = p.committed.clone()
	p.tail, p.tailBytes = nil, 0
}

func (p *partition) replayStash() {
	stash := p.stash
	p.stash = nil
	for _, r := range stash {
		p.handle(r)
	}
}

func (p *partition) epoch32() int32 { return int32(p.lease.Epoch) }

// stop fails everything the actor holds with err and stops it at once.
func (p *partition) stop(err error) {
	if p.phase == phaseStopped {
		return
	}
	p.phase = phaseStopped
	p.b.leases.drop(p.key, p.mb)
	p.failAll(err)
	p.retire()
}

// retire hands the partition back to the registry, which routes nothing
// more to it, and closes its mailbox: requests still on their way are
// answered with ErrNotOwner, and the actor stops once none is left.
func (p *partition) retire() {
	if p.retired {
		return
	}
	p.retired = true
	p.b.registry.tell(&retire{key: p.key, mb: p.mb})
}

// failAll answers every waiting request with err.
func (p *partition) failAll(err error) {
	for _, r := range p.stash {
		r.fail(err)
	}
	p.stash = nil
	for _, f := range p.inflight {
		// The flusher may be committing it: tell the client so.
		p.failFlush(f, fmt.Errorf("%w: partition stopped (%v) with the flush handed over", ErrOutcomeUnknown, err))
	}
	p.inflight = nil
	p.dropFlushes(true)
	for _, f := range p.uncertain {
		p.failFlush(f, fmt.Errorf("%w: partition stopped (%v) before the commit was checked", ErrOutcomeUnknown, err))
	}
	p.uncertain = nil
	for _, pa := range p.bufAppend {
		pa.a.fail(err)
	}
	for _, d := range p.bufDups {
		d.a.fail(err)
	}
	p.bufAppend, p.bufDups, p.bufProds = nil, nil, nil
	p.buf.Reset()
	p.held = 0
	p.unparkAll(func(f *Fetch) { f.fail(err) })
}

// unparkAll answers every parked reader with answer. The gauge is the
// node's, shared by all partitions: it goes down by this partition's
// readers only.
func (p *partition) unparkAll(answer func(*Fetch)) {
	for _, r := range p.parked {
		if !r.done {
			r.done = true
			p.b.metrics.parkedReaders.Dec()
			answer(r.f)
		}
	}
	p.parked = nil
}

// dropFlushes tells the flusher not to commit what it still holds of this
// actor's flushes of the current generation or older; final says the
// actor is done.
func (p *partition) dropFlushes(final bool) {
	if p.handedAny {
		p.b.flusher.send(&dropFlushes{src: p.src, gen: p.flushGen, final: final})
		p.handedAny = !final
	}
}

func (p *partition) failFlush(f *flush, err error) {
	for _, pa := range f.appends {
		pa.a.fail(err)
	}
	for _, d := range f.dups {
		d.a.fail(err)
	}
	f.appends, f.dups = nil, nil
}

// startDrain begins a graceful stop: seal what is buffered, let in-flight
// flushes commit, release the lease, stop.
func (p *partition) startDrain() {
	switch p.phase {
	case phaseStopped, phaseDraining:
		return
	case phaseStarting, phaseRecovering:
		p.stop(ErrShuttingDown)
		return
	}
	p.phase = phaseDraining
	p.b.leases.quiet(p.key, p.mb) // stop advertising it as led from here
	p.unparkAll(func(f *Fetch) { p.answerFetch(f, nil) })
	if p.buf.Len() > 0 {
		p.lingering = false
		p.seal()
	}
	p.maybeFinishDrain()
}

func (p *partition) maybeFinishDrain() {
	if p.phase != phaseDraining || len(p.inflight) > 0 || p.buf.Len() > 0 {
		return
	}
	p.phase = phaseStopped
	// Forgotten before it is released: a new actor of this partition
	// registers only after taking the lease again.
	p.b.leases.drop(p.key, p.mb)
	p.dropFlushes(true)
	lease, resource := p.lease, p.resource
	p.io(func(ctx context.Context) {
		if err := p.b.meta.ReleaseLease(ctx, resource, lease.Owner, lease.Epoch); err != nil {
			p.log.Warn("release lease", "err", err)
		}
		p.send(&leaseReleased{})
	})
}
