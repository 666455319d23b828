package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

// fetch answers from the tail cache, parks at the end of the log, or hands
// the read to a goroutine that goes to object storage.
func (p *partition) fetch(f *Fetch) {
	if f.Offset < p.logStart || f.Offset > p.hw {
		f.fail(fmt.Errorf("%w: offset %d, log is [%d, %d)", ErrOffsetOutOfRange, f.Offset, p.logStart, p.hw))
		return
	}
	if f.Offset == p.hw {
		if f.MaxWait <= 0 || p.phase == phaseDraining {
			p.answerFetch(f, nil)
			return
		}
		r := &parkedReader{f: f}
		p.parked = append(p.parked, r)
		p.b.metrics.parkedReaders.Inc()
		time.AfterFunc(f.MaxWait, func() { p.send(&parkExpired{r: r}) })
		return
	}
	if data, ok := p.readTail(f.Offset, f.MaxBytes); ok {
		p.b.metrics.tailHits.Inc()
		p.answerFetch(f, data)
		return
	}
	p.b.metrics.coldReads.Inc()
	hw, logStart, epoch := p.hw, p.logStart, p.epoch32()
	id, part := p.topic.ID, p.id
	p.io(func(ctx context.Context) {
		data, err := p.b.readCold(ctx, id, part, f.Offset, hw, f.MaxBytes)
		if err != nil {
			f.fail(err)
			return
		}
		p.b.metrics.fetches.Inc()
		p.b.metrics.fetchBytes.Add(float64(len(data)))
		if f.Reply != nil {
			f.Reply(FetchResult{Batches: data, HighWatermark: hw, LogStartOffset: logStart, LeaderEpoch: epoch})
		}
	})
}

func (p *partition) answerFetch(f *Fetch, data []byte) {
	p.b.metrics.fetches.Inc()
	p.b.metrics.fetchBytes.Add(float64(len(data)))
	if f.Reply != nil {
		f.Reply(FetchResult{Batches: data, HighWatermark: p.hw, LogStartOffset: p.logStart, LeaderEpoch: p.epoch32(), Moving: p.phase == phaseDraining})
	}
}

// readTail serves a read from the tail cache if the cache covers offset.
// An answer within one segment shares the cache's immutable bytes.
func (p *partition) readTail(offset int64, maxBytes int) ([]byte, bool) {
	i := -1
	for j, c := range p.tail {
		if offset >= c.base && offset < c.end {
			i = j
			break
		}
	}
	if i < 0 {
		return nil, false
	}
	c := p.tail[i]
	first := segment.Slice(c.data[segment.Lookup(c.index, offset):], offset)
	out := takeBatches(first, maxBytes, true)
	if len(out) < len(first) || i+1 == len(p.tail) {
		return out, true
	}
	buf := make([]byte, len(out), max(len(out), min(maxBytes, len(out)+int(p.tailBytes))))
	copy(buf, out)
	for _, c := range p.tail[i+1:] {
		part := takeBatches(c.data, maxBytes-len(buf), false)
		buf = append(buf, part...)
		if len(part) < len(c.data) {
			break
		}
	}
	return buf, true
}

// takeBatches returns the longest run of whole batches at the start of b
// within max bytes, or the first batch whole if first and it alone is larger
// (so a consumer always makes progress).
func takeBatches(b []byte, max int, first bool) []byte {
	n := 0
	for n < len(b) {
		h, err := segment.ParseHeader(b[n:])
		if err != nil || n+h.Size() > len(b) {
			break
		}
		if n+h.Size() > max && !(first && n == 0) {
			break
		}
		n += h.Size()
	}
	return b[:n]
}

// cacheTail keeps a committed flush for tail reads, evicting the oldest.
func (p *partition) cacheTail(f *flush) {
	size := int64(len(f.data))
	if size > p.b.opts.TailCacheBytes {
		p.tail, p.tailBytes = nil, 0
		return
	}
	p.tail = append(p.tail, &cachedSegment{base: f.base, end: f.end, data: f.data, index: f.index})
	p.tailBytes += size
	for p.tailBytes > p.b.opts.TailCacheBytes {
		p.tailBytes -= int64(len(p.tail[0].data))
		p.tail[0] = nil
		p.tail = p.tail[1:]
	}
}

func (p *partition) dropTailBelow(start int64) {
	for len(p.tail) > 0 && p.tail[0].end <= start {
		p.tailBytes -= int64(len(p.tail[0].data))
		p.tail = p.tail[1:]
	}
}

// wakeReaders answers parked readers now that data committed.
func (p *partition) wakeReaders() {
	if len(p.parked) == 0 {
		return
	}
	parked := p.parked
	p.parked = nil
	for _, r := range parked {
		if r.done {
			continue
		}
		r.done = true
		p.b.metrics.parkedReaders.Dec()
		p.fetch(&Fetch{Offset: r.f.Offset, MaxBytes: r.f.MaxBytes, Reply: r.f.Reply})
	}
}

func (p *partition) expirePark(r *parkedReader) {
	if r.done {
		return
	}
	r.done = true
	p.b.metrics.parkedReaders.Dec()
	for i, q := range p.parked {
		if q == r {
			p.parked = append(p.parked[:i], p.parked[i+1:]...)
			break
		}
	}
	p.answerFetch(r.f, nil)
}

// listOffsets answers the special timestamps at once and looks real
// timestamps up in object storage.
func (p *partition) listOffsets(l *ListOffsets) {
	epoch := p.epoch32()
	reply := func(r OffsetResult) {
		if l.Reply != nil {
			r.LeaderEpoch = epoch
			l.Reply(r)
		}
	}
	switch {
	case l.Timestamp == EarliestTimestamp:
		reply(OffsetResult{Offset: p.logStart, Timestamp: -1})
		return
	case l.Timestamp == LatestTimestamp:
		reply(OffsetResult{Offset: p.hw, Timestamp: -1})
		return
	case l.Timestamp < MaxTimestamp:
		l.fail(fmt.Errorf("%w: timestamp %d", ErrInvalidArgument, l.Timestamp))
		return
	}
	id, part, logStart, hw := p.topic.ID, p.id, p.logStart, p.hw
	p.io(func(ctx context.Context) {
		r, err := p.b.offsetForTimestamp(ctx, id, part, l.Timestamp, logStart, hw)
		if err != nil {
			l.fail(err)
			return
		}
		reply(r)
	})
}

// trim advances the log start (DeleteRecords).
func (p *partition) trim(t *Trim) {
	offset := t.Offset
	if offset == -1 {
		offset = p.hw
	}
	if offset < 0 || offset > p.hw {
		t.fail(fmt.Errorf("%w: trim to %d, log is [%d, %d)", ErrOffsetOutOfRange, t.Offset, p.logStart, p.hw))
		return
	}
	if offset <= p.logStart {
		if t.Reply != nil {
			t.Reply(TrimResult{LogStartOffset: p.logStart})
		}
		return
	}
	p.advanceLogStart(offset, func(start int64, err error) {
		if err != nil {
			t.fail(fmt.Errorf("%w: trim: %v", ErrStorage, err))
			return
		}
		if t.Reply != nil {
			t.Reply(TrimResult{LogStartOffset: start})
		}
	})
}

// advanceLogStart moves the log start in metadata, deletes the segment
// objects wholly below it, and tells the actor; done runs off the actor.
func (p *partition) advanceLogStart(offset int64, done func(int64, error)) {
	id, part := p.topic.ID, p.id
	p.io(func(ctx context.Context) {
		start, keys, err := p.b.meta.AdvanceLogStart(ctx, id, part, offset)
		if err != nil {
			done(-1, err)
			return
		}
		moved := &logStartMoved{start: start, bytes: -1}
		if part, err := p.b.meta.Partition(ctx, id, part); err == nil {
			moved.bytes = part.Bytes
		}
		p.send(moved)
		p.b.metrics.retentionBytes.Add(float64(len(keys)))
		for _, k := range keys {
			if err := p.b.objects.Delete(ctx, k); err != nil {
				// The sweep removes it later: it is no longer committed.
				p.log.Warn("delete trimmed segment", "key", k, "err", err)
			}
		}
		done(start, nil)
	})
}

func (p *partition) describe(d *Describe) {
	if d.Reply == nil {
		return
	}
	d.Reply(PartitionState{
		Topic:          p.topic.ID,
		Partition:      p.id,
		LogStartOffset: p.logStart,
		HighWatermark:  p.hw,
		NextOffset:     p.next,
		LeaderEpoch:    p.epoch32(),
		Bytes:          p.bytes,
		Producers:      p.committed.list(),
	})
}

// applyRetention drops whole segments older than retention.ms, and the
// oldest while the partition is over retention.bytes.
func (p *partition) applyRetention() {
	set := p.set
	if set.RetentionMs < 0 && set.RetentionBytes < 0 {
		return
	}
	id, part, logStart, hw := p.topic.ID, p.id, p.logStart, p.hw
	now := p.b.opts.Now().UnixMilli()
	p.io(func(ctx context.Context) {
		start, err := p.b.retentionStart(ctx, id, part, logStart, hw, set, now)
		if err != nil {
			p.log.Warn("retention", "err", err)
			return
		}
		if start > logStart {
			p.advanceLogStart(start, func(_ int64, err error) {
				if err != nil {
					p.log.Warn("retention: advance log start", "err", err)
				}
			})
		}
	})
}

// retentionStart computes the log start retention allows: the end of the
// last segment (from the oldest on) that is expired by time or needed to go
// for size.
func (b *Broker) retentionStart(ctx context.Context, id meta.TopicID, part int32, logStart, hw int64, set TopicSettings, now int64) (int64, error) {
	var segs []meta.Segment
	from := logStart
	for {
		page, err := b.meta.Segments(ctx, id, part, from, 1000)
		if err != nil {
			return 0, fmt.Errorf("list segments: %w", err)
		}
		segs = append(segs, page...)
		if len(page) < 1000 {
			break
		}
		from = page[len(page)-1].EndOffset
	}
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	start := logStart
	for _, s := range segs {
		if s.EndOffset > hw {
			break
		}
		expired := set.RetentionMs >= 0 && s.MaxTimestamp >= 0 && now-s.MaxTimestamp > set.RetentionMs
		oversize := set.RetentionBytes >= 0 && total > set.RetentionBytes
		if !expired && !oversize {
			break
		}
		start = s.EndOffset
		total -= s.Size
	}
	return start, nil
}

// offsetForTimestamp finds the first offset whose record timestamp is at or
// after ts (ts = MaxTimestamp: the record with the largest timestamp).
func (b *Broker) offsetForTimestamp(ctx context.Context, id meta.TopicID, part int32, ts, logStart, hw int64) (OffsetResult, error) {
	none := OffsetResult{Offset: -1, Timestamp: -1}
	var seg meta.Segment
	if ts == MaxTimestamp {
		found := false
		for from := logStart; from < hw; {
			page, err := b.meta.Segments(ctx, id, part, from, 1000)
			if err != nil {
				return none, fmt.Errorf("%w: list segments: %v", ErrStorage, err)
			}
			for _, s := range page {
				if !found || s.MaxTimestamp >= seg.MaxTimestamp {
					seg, found = s, true
				}
			}
			if len(page) < 1000 {
				break
			}
			from = page[len(page)-1].EndOffset
		}
		if !found {
			return none, nil
		}
	} else {
		var err error
		seg, err = b.meta.SegmentByTimestamp(ctx, id, part, ts)
		if errors.Is(err, meta.ErrNotFound) {
			return none, nil
		}
		if err != nil {
			return none, fmt.Errorf("%w: find segment by timestamp: %v", ErrStorage, err)
		}
	}
	data, err := b.blocks.readSegment(ctx, seg, 0, seg.Size)
	if err != nil {
		return none, fmt.Errorf("%w: read segment %s: %v", ErrStorage, seg.ObjectKey, err)
	}
	best := none
	for batch, err := range segment.Batches(data) {
		if err != nil {
			return none, fmt.Errorf("%w: segment %s: %v", ErrCorruptRecord, seg.ObjectKey, err)
		}
		h, err := segment.ParseHeader(batch)
		if err != nil {
			return none, fmt.Errorf("%w: segment %s: %v", ErrCorruptRecord, seg.ObjectKey, err)
		}
		if ts != MaxTimestamp && h.MaxTimestamp < ts {
			continue
		}
		if ts == MaxTimestamp && h.MaxTimestamp < best.Timestamp {
			continue
		}
		var found *OffsetResult
		err = segment.EachRecord(batch, b.opts.MaxDecompressedBatchBytes, func(r *segment.Record) bool {
			if r.Offset < logStart {
				return true
			}
			if ts == MaxTimestamp {
				if r.Timestamp > best.Timestamp {
					best = OffsetResult{Offset: r.Offset, Timestamp: r.Timestamp}
				}
				return true
			}
			if r.Timestamp >= ts {
				found = &OffsetResult{Offset: r.Offset, Timestamp: r.Timestamp}
				return false
			}
			return true
		})
		if err != nil {
			return none, fmt.Errorf("%w: segment %s: %v", ErrCorruptRecord, seg.ObjectKey, err)
		}
		if found != nil {
			return *found, nil
		}
	}
	return best, nil
}
