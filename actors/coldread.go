package actors

import (
	"context"
	"errors"
	"fmt"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/persistence/segment"
)

// readCold reads committed batches from offset (below hw) out of object
// storage, through the block cache: at least one whole batch, then whole
// batches up to maxBytes.
func (b *Broker) readCold(ctx context.Context, id meta.TopicID, part int32, offset, hw int64, maxBytes int) ([]byte, error) {
	segs, err := b.meta.Segments(ctx, id, part, offset, 4)
	if err != nil {
		return nil, fmt.Errorf("%w: list segments: %v", ErrStorage, err)
	}
	if len(segs) == 0 || segs[0].BaseOffset > offset {
		// The segment holding offset was trimmed after the caller checked.
		return nil, fmt.Errorf("%w: offset %d is no longer stored", ErrOffsetOutOfRange, offset)
	}
	var out []byte
	for i, s := range segs {
		if s.BaseOffset >= hw || (len(out) > 0 && len(out) >= maxBytes) {
			break
		}
		pos := int64(0)
		if i == 0 {
			pos = segment.Lookup(s.Index, offset)
		}
		want := int64(maxBytes - len(out))
		if len(out) == 0 {
			// The first batch is returned whole however large, so learn its size.
			hdr, err := b.blocks.readSegment(ctx, s, pos, segment.HeaderSize)
			if err != nil {
				return nil, readError(err)
			}
			h, err := segment.ParseHeader(hdr)
			if err != nil {
				return nil, fmt.Errorf("%w: %s at %d: %v", ErrCorruptRecord, s.ObjectKey, pos, err)
			}
			// The index entry may be up to an index interval (plus a
			// batch) before offset; read a little more to skip that.
			want = max(want, int64(h.Size())) + 64<<10
		}
		data, err := b.blocks.readSegment(ctx, s, pos, want)
		if err != nil {
			return nil, readError(err)
		}
		n, err := segment.CompleteBatches(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorruptRecord, s.ObjectKey, err)
		}
		data = data[:n]
		if i == 0 {
			data = segment.Slice(data, offset)
		}
		part := takeBatches(data, maxBytes-len(out), len(out) == 0)
		if len(part) == 0 && len(out) == 0 {
			// Batches skipped below offset ate the read; read the rest of the segment.
			rest, err := b.blocks.readSegment(ctx, s, pos, s.Size-pos)
			if err != nil {
				return nil, readError(err)
			}
			n, _ := segment.CompleteBatches(rest)
			part = takeBatches(segment.Slice(rest[:n], offset), maxBytes, true)
		}
		out = append(out, part...)
		// Stop at the first batch that did not fit, also when the budget
		// left was too small to read even one whole batch of this segment
		// (data is then empty): going on to the next segment would return
		// batches after a gap, and the client would skip the records in it.
		if len(part) == 0 || len(part) < len(data) {
			break
		}
	}
	return out, nil
}

func readError(err error) error {
	if errors.Is(err, objstore.ErrNotFound) {
		return fmt.Errorf("%w: segment object gone: %v", ErrOffsetOutOfRange, err)
	}
	return fmt.Errorf("%w: read segment: %v", ErrStorage, err)
}
