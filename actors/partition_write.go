package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

// append validates an append, assigns its offsets and buffers it. It is
// answered when the flush holding it commits.
func (p *partition) append(a *Append) {
	hdrs, err := p.validate(a.Batches)
	if err != nil {
		p.b.metrics.appendErrors.WithLabelValues(errorReason(err)).Inc()
		a.fail(err)
		return
	}
	size := int64(len(a.Batches))
	if p.held+size > p.b.opts.MaxBufferBytes {
		p.b.metrics.appendErrors.WithLabelValues("partition_buffer_full").Inc()
		a.fail(fmt.Errorf("%w: partition holds %d unacknowledged bytes", ErrBackpressure, p.held))
		return
	}
	if a.ExpectedOffset >= 0 && a.ExpectedOffset != p.next {
		p.b.metrics.appendErrors.WithLabelValues("conflict").Inc()
		a.fail(&ConflictError{Expected: a.ExpectedOffset, End: p.next})
		return
	}
	// Idempotent producers send exactly one batch per partition per request
	// (validate enforces it), so a duplicate is all or nothing.
	if h := hdrs[0]; h.ProducerID >= 0 {
		dup, err := p.pending.check(h)
		if err != nil {
			p.b.metrics.appendErrors.WithLabelValues(errorReason(err)).Inc()
			a.fail(fmt.Errorf("producer %d epoch %d sequence %d: %w", h.ProducerID, h.ProducerEpoch, h.BaseSequence, err))
			return
		}
		if dup != nil {
			p.answerDuplicate(a, dup)
			return
		}
	}
	now := p.b.opts.Now().UnixMilli()
	appendTime := int64(-1)
	if p.set.LogAppendTime {
		appendTime = now
	}
	base := p.next
	rest := a.Batches
	for _, h := range hdrs {
		batch := rest[:h.Size()]
		rest = rest[h.Size():]
		segment.SetBaseOffset(batch, p.next)
		segment.SetPartitionLeaderEpoch(batch, p.epoch32())
		if appendTime >= 0 {
			segment.SetLogAppendTime(batch, appendTime)
		}
		h.BaseOffset = p.next
		if err := p.buf.Append(batch); err != nil {
			// validate checked the framing, so this is a bug; refuse the rest.
			a.fail(fmt.Errorf("%w: %v", ErrCorruptRecord, err))
			return
		}
		if h.ProducerID >= 0 {
			if p.bufProds == nil {
				p.bufProds = map[int64]meta.ProducerState{}
			}
			p.bufProds[h.ProducerID] = p.pending.record(h, p.next, now)
		}
		p.next += int64(h.LastOffsetDelta) + 1
	}
	p.held += size
	p.bufAppend = append(p.bufAppend, &pendingAppend{a: a, base: base, end: p.next, appendTime: appendTime})
	p.afterBuffer()
}

// validate checks every batch of an append and returns their headers.
func (p *partition) validate(b []byte) ([]segment.BatchHeader, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: no record batch", ErrInvalidRecord)
	}
	var hdrs []segment.BatchHeader
	for batch, err := range segment.Batches(b) {
		if err != nil {
			return nil, batchError(err)
		}
		// Compressed records are checked too, as Kafka's LogValidator
		// does, while decompressing: a bomb stops at the bound and is
		// never stored, and a batch whose records disagree with its
		// header is refused here rather than failing every later read.
		h, err := segment.ValidateRecords(batch, p.b.opts.MaxDecompressedBatchBytes)
		if err != nil {
			return nil, batchError(err)
		}
		if len(batch) > p.set.MaxMessageBytes {
			return nil, fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", ErrMessageTooLarge, len(batch), p.set.MaxMessageBytes)
		}
		if h.Control() {
			return nil, fmt.Errorf("%w: clients may not write control batches", ErrInvalidRecord)
		}
		if h.Transactional() {
			return nil, fmt.Errorf("%w: transactions are not supported yet", ErrInvalidRecord)
		}
		hdrs = append(hdrs, h)
	}
	if len(hdrs) > 1 {
		for _, h := range hdrs {
			if h.ProducerID >= 0 {
				return nil, fmt.Errorf("%w: an idempotent produce must carry exactly one batch per partition", ErrInvalidRecord)
			}
		}
	}
	return hdrs, nil
}

func batchError(err error) error {
	switch {
	case errors.Is(err, segment.ErrTooLarge):
		// MESSAGE_TOO_LARGE, not CORRUPT_MESSAGE: it is not retriable, so
		// a producer does not resend the batch (and the node decompress
		// it again) until its delivery timeout; the Java producer splits
		// a too-large batch of several records and retries the halves.
		return fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
	case errors.Is(err, segment.ErrBadMagic):
		return fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	case errors.Is(err, segment.ErrUnsupportedCodec):
		return fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	default:
		return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
}

// answerDuplicate answers a retried idempotent batch with its original
// offsets, once the original is committed.
func (p *partition) answerDuplicate(a *Append, dup *meta.ProducerBatch) {
	d := &dupWaiter{a: a, base: dup.BaseOffset, end: dup.LastOffset + 1}
	if d.end <= p.hw {
		p.answerDup(d)
		return
	}
	for _, f := range p.inflight {
		if d.base >= f.base && d.base < f.end {
			f.dups = append(f.dups, d)
			return
		}
	}
	p.bufDups = append(p.bufDups, d)
}

func (p *partition) answerDup(d *dupWaiter) {
	d.a.finish(AppendResult{BaseOffset: d.base, EndOffset: d.end, LogAppendTime: -1, LogStartOffset: p.logStart})
}

// afterBuffer seals the buffer when it is full, or when none of this
// partition's flushes is in flight: waiting would then only add latency,
// since the node's flusher gathers the flushes of all partitions into one
// object anyway (Options.ObjectLinger). Otherwise it arms the linger
// timer, so a busy partition batches the appends that arrive while its
// earlier flushes are uploading into one flush.
func (p *partition) afterBuffer() {
	if p.buf.Len() >= p.b.opts.FlushBytes || len(p.inflight) == 0 {
		p.seal()
		return
	}
	if !p.lingering {
		p.lingering = true
		p.lingerGen++
		gen := p.lingerGen
		time.AfterFunc(p.set.Linger, func() { p.send(&lingerExpired{gen: gen}) })
	}
}

// seal turns the buffer into a flush and hands it to the node's flusher,
// unless the pipeline is full; then the buffer keeps filling and is sealed
// when a flush commits.
func (p *partition) seal() {
	if p.buf.Len() == 0 || len(p.inflight) >= p.b.opts.MaxInflightFlushes {
		return
	}
	p.lingering = false
	f := &flush{
		data:      p.buf.Bytes(),
		index:     p.buf.Index(),
		base:      p.buf.BaseOffset(),
		end:       p.buf.EndOffset(),
		maxTs:     p.buf.MaxTimestamp(),
		appends:   p.bufAppend,
		dups:      p.bufDups,
		producers: make([]meta.ProducerState, 0, len(p.bufProds)),
	}
	for _, s := range p.bufProds {
		f.producers = append(f.producers, s)
	}
	p.buf.Reset()
	p.bufAppend, p.bufDups, p.bufProds = nil, nil, nil
	p.inflight = append(p.inflight, f)
	p.handedAny = true
	p.b.flusher.send(&handedFlush{
		from: p.mb,
		src:  p.src,
		gen:  p.flushGen,
		f:    f,
		commit: meta.FlushCommit{
			LeaseEpoch: p.lease.Epoch,
			Owner:      p.lease.Owner,
			Segment: meta.Segment{
				TopicID:      p.topic.ID,
				Partition:    p.id,
				BaseOffset:   f.base,
				EndOffset:    f.end,
				Size:         int64(len(f.data)),
				Epoch:        p.lease.Epoch,
				MaxTimestamp: f.maxTs,
				Index:        f.index,
			},
			Producers: f.producers,
		},
	})
}

// onUploaded handles a flush that ended before its commit: its object's
// upload failed, or an earlier flush of this partition failed. Nothing of
// it is stored.
func (p *partition) onUploaded(m *uploadDone) {
	i := p.inflightIndex(m.f)
	if i < 0 {
		return // failed here already
	}
	p.log.Warn("flush failed", "offsets", fmt.Sprintf("%d-%d", m.f.base, m.f.end-1), "err", m.err)
	p.failFlushes(i, m.err, false)
}

func (p *partition) onCommitted(m *commitDone) {
	i := p.inflightIndex(m.f)
	if i < 0 {
		return
	}
	f := m.f
	if m.err == nil && i != 0 {
		// The flusher commits a partition's flushes in the order it sealed
		// them; anything else is a bug, and only a reload says what holds.
		m.err = fmt.Errorf("flush %d-%d committed before the flush ahead of it", f.base, f.end-1)
		p.log.Error("out-of-order flush commit; reloading", "err", m.err)
		p.failFlushes(0, fmt.Errorf("%w: %v", ErrStorage, m.err), true)
		return
	}
	if m.err != nil {
		if errors.Is(m.err, meta.ErrFenced) {
			p.log.Warn("commit fenced: another node owns the partition; stopping", "epoch", p.lease.Epoch)
			// A fenced commit is a definite refusal: nothing of it is
			// stored, unlike a commit still running when the actor stops.
			p.inflight = p.inflight[i+1:]
			p.failFlush(f, fmt.Errorf("%w: fenced", ErrNotOwner))
			p.stop(fmt.Errorf("%w: fenced", ErrNotOwner))
			return
		}
		p.log.Warn("segment commit failed", "offsets", fmt.Sprintf("%d-%d", f.base, f.end-1), "err", m.err)
		// The commit may have happened even though we saw an error, so
		// committed state must be reloaded from metadata, and the appends
		// of this flush (and of the later ones in the same transaction)
		// wait for it to say whether they are stored.
		p.inflight = p.inflight[i:]
		p.uncertain = []*flush{f}
		for _, g := range m.more {
			if len(p.uncertain) < len(p.inflight) && p.inflight[len(p.uncertain)] == g {
				p.uncertain = append(p.uncertain, g)
			}
		}
		p.failFlushes(len(p.uncertain), fmt.Errorf("%w: commit segment: %v", ErrStorage, m.err), true)
		return
	}
	p.inflight = p.inflight[1:]
	p.hw = f.end
	p.bytes += int64(len(f.data))
	p.held -= int64(len(f.data))
	for _, s := range f.producers {
		cp := s
		p.committed[s.ProducerID] = &cp
	}
	p.cacheTail(f)
	p.b.metrics.segments.Inc()
	p.b.metrics.flushRecords.Observe(float64(len(f.appends)))
	for _, pa := range f.appends {
		p.b.metrics.appends.Inc()
		p.b.metrics.appendBytes.Add(float64(pa.a.reserved))
		pa.a.finish(AppendResult{BaseOffset: pa.base, EndOffset: pa.end, LogAppendTime: pa.appendTime, LogStartOffset: p.logStart})
	}
	for _, d := range f.dups {
		p.answerDup(d)
	}
	p.wakeReaders()
	// A buffer that filled (or lingered) while the pipeline was full.
	if p.buf.Len() >= p.b.opts.FlushBytes || (p.buf.Len() > 0 && (!p.lingering || p.phase == phaseDraining)) {
		p.seal()
	}
	p.maybeFinishDrain()
}

func (p *partition) inflightIndex(f *flush) int {
	for i, g := range p.inflight {
		if g == f {
			return i
		}
	}
	return -1
}

// failFlushes fails the flushes in flight from index from on, and
// everything buffered: their offsets follow the failed flush, so none of
// them can commit. Flushes before it carry on. Offsets and producer windows
// go back to what precedes the failed flush; with reload (the outcome of a
// commit is unknown) committed state is read again from metadata first.
func (p *partition) failFlushes(from int, err error, reload bool) {
	failed := p.inflight[from:]
	for _, f := range p.uncertain {
		p.held -= int64(len(f.data))
	}
	for _, f := range failed {
		p.failFlush(f, err)
		p.held -= int64(len(f.data))
	}
	// Flushes sealed from here on are a new generation: the flusher leaves
	// out of its commits the ones it still holds from before.
	p.dropFlushes(false)
	p.flushGen++
	next := p.next
	if len(failed) > 0 {
		next = failed[0].base
	}
	p.inflight = p.inflight[:from]
	if p.uncertain != nil {
		p.inflight = p.inflight[:0] // the uncertain flushes were the first
	}
	for _, pa := range p.bufAppend {
		pa.a.fail(err)
	}
	for _, d := range p.bufDups {
		d.a.fail(err)
	}
	p.held -= int64(p.buf.Len())
	p.bufAppend, p.bufDups, p.bufProds = nil, nil, nil
	p.buf.Reset()
	p.lingering = false
	if !reload {
		p.next = next
		p.pending = p.committed.clone()
		for _, f := range p.inflight {
			for _, s := range f.producers {
				cp := s
				p.pending[s.ProducerID] = &cp
			}
		}
		p.maybeFinishDrain()
		return
	}
	if p.phase == phaseDraining {
		p.stop(err)
		return
	}
	p.phase = phaseRecovering
	p.reload()
}

// reload reads committed state from metadata, off the actor.
func (p *partition) reload() {
	id, part := p.topic.ID, p.id
	p.io(func(ctx context.Context) {
		var m recovered
		m.part, m.err = p.b.meta.Partition(ctx, id, part)
		if m.err == nil {
			m.producers, m.err = p.b.meta.Producers(ctx, id, part)
		}
		p.send(&m)
	})
}

func (p *partition) onRecovered(m *recovered) {
	if p.phase != phaseRecovering {
		return
	}
	if m.err != nil {
		p.log.Warn("reload partition state failed; retrying", "err", m.err)
		// The retry comes back as a message: reload reads actor state,
		// which only the actor's goroutine may touch.
		time.AfterFunc(reloadRetry, func() { p.send(&retryReload{}) })
		return
	}
	p.applyCommitted(m.part, m.producers)
	p.resolveUncertain(m.part.NextOffset)
	p.phase = phaseReady
	p.replayStash()
}

// resolveUncertain answers the appends of the flushes whose commit
// outcome was unknown, now that the committed next offset says which are
// stored (their end is committed) and which not. Only what metadata holds
// is ever acknowledged.
func (p *partition) resolveUncertain(next int64) {
	fs := p.uncertain
	p.uncertain = nil
	for _, f := range fs {
		if next < f.end {
			p.failFlush(f, fmt.Errorf("%w: commit of offsets %d-%d did not happen", ErrStorage, f.base, f.end-1))
			continue
		}
		p.log.Info("commit reported as failed had happened; acknowledging it", "offsets", fmt.Sprintf("%d-%d", f.base, f.end-1))
		for _, pa := range f.appends {
			pa.a.finish(AppendResult{BaseOffset: pa.base, EndOffset: pa.end, LogAppendTime: pa.appendTime, LogStartOffset: p.logStart})
		}
		for _, d := range f.dups {
			p.answerDup(d)
		}
		f.appends, f.dups = nil, nil
	}
	if len(fs) > 0 {
		p.wakeReaders()
	}
}

// reloadRetry is the pause between reloads of a recovering partition
// while the metadata store fails.
const reloadRetry = time.Second

// retryReload asks a recovering partition to reload its state again.
type retryReload struct{}

// recovered carries committed state reloaded after a failed commit.
type recovered struct {
	part      meta.Partition
	producers []meta.ProducerState
	err       error
}

func errorReason(err error) string {
	switch {
	case errors.Is(err, segment.ErrTooLarge):
		return "decompressed_too_large"
	case errors.Is(err, ErrCorruptRecord):
		return "corrupt"
	case errors.Is(err, ErrInvalidRecord):
		return "invalid"
	case errors.Is(err, ErrMessageTooLarge):
		return "too_large"
	case errors.Is(err, ErrOutOfOrderSequence):
		return "out_of_order_sequence"
	case errors.Is(err, ErrProducerFenced):
		return "producer_fenced"
	default:
		return "other"
	}
}
