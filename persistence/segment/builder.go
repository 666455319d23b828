package segment

import "fmt"

// DefaultIndexInterval is the default spacing, in bytes, of sparse index
// entries. A reader then fetches at most about this many bytes it does not
// need before the batch it wants, while the index stays around a thousandth
// of the segment size.
const DefaultIndexInterval = 4096

// Builder accumulates offset-assigned batches of one partition into the bytes
// of one segment, and builds its sparse index along the way. It keeps the
// batches it is given rather than copying them into a growing buffer, whose
// repeated reallocation was the costliest step of the produce path under
// load, and joins them once, when Bytes is called. The zero value is ready
// to use. A Builder is not safe for concurrent use.
type Builder struct {
	// IndexInterval is the minimum number of bytes between two index
	// entries; DefaultIndexInterval if zero or negative. The first batch is
	// always indexed; after that, a batch gets an entry when it starts at
	// least IndexInterval bytes after the last indexed one.
	IndexInterval int

	chunks       [][]byte // the batches appended, in order
	n            int      // their total length
	joined       []byte   // chunks joined by Bytes; nil until then
	index        []IndexEntry
	baseOffset   int64
	endOffset    int64
	maxTimestamp int64
}

// Append adds batch, one whole batch whose offsets are already assigned,
// to the end of the segment. The Builder keeps batch without copying it:
// the caller must not change it afterwards. The batch must start at or after EndOffset
// (ErrOutOfOrder otherwise): offsets may skip, but never go back, which
// keeps the index sorted. Append checks the framing (ParseHeader and the
// length) but not the CRC: batches come from Validate on the produce path.
func (b *Builder) Append(batch []byte) error {
	h, err := ParseHeader(batch)
	if err != nil {
		return err
	}
	if h.Size() != len(batch) {
		return fmt.Errorf("%w: batch length says %d bytes, got %d", ErrBadLength, h.Size(), len(batch))
	}
	if h.LastOffsetDelta < 0 {
		return fmt.Errorf("%w: last offset delta %d", ErrCorrupt, h.LastOffsetDelta)
	}
	empty := b.n == 0
	if !empty && h.BaseOffset < b.endOffset {
		return fmt.Errorf("%w: batch at offset %d, segment ends at %d", ErrOutOfOrder, h.BaseOffset, b.endOffset)
	}
	interval := b.IndexInterval
	if interval <= 0 {
		interval = DefaultIndexInterval
	}
	pos := int64(b.n)
	if empty || pos-b.index[len(b.index)-1].Position >= int64(interval) {
		b.index = append(b.index, IndexEntry{Offset: h.BaseOffset, Position: pos})
	}
	if empty {
		b.baseOffset = h.BaseOffset
		b.maxTimestamp = h.MaxTimestamp
	}
	b.chunks = append(b.chunks, batch)
	b.n += len(batch)
	b.joined = nil
	b.endOffset = h.LastOffset() + 1
	b.maxTimestamp = max(b.maxTimestamp, h.MaxTimestamp)
	return nil
}

// Len returns the segment's size in bytes so far.
func (b *Builder) Len() int { return b.n }

// Bytes returns the segment's bytes, joined into one slice of exactly their
// size (one copy, made on the first call after an Append). The slice stays
// valid after Reset, which lets go of it rather than reusing it, so the
// caller may upload it while the Builder fills the next segment.
func (b *Builder) Bytes() []byte {
	if b.joined == nil && b.n > 0 {
		if len(b.chunks) == 1 {
			b.joined = b.chunks[0]
		} else {
			b.joined = make([]byte, 0, b.n)
			for _, c := range b.chunks {
				b.joined = append(b.joined, c...)
			}
		}
	}
	return b.joined
}

// Index returns the sparse index of the segment so far, in offset order.
// Like Bytes, it stays valid after Reset.
func (b *Builder) Index() []IndexEntry { return b.index }

// BaseOffset returns the base offset of the first batch, or -1 if the
// segment is empty.
func (b *Builder) BaseOffset() int64 {
	if b.n == 0 {
		return -1
	}
	return b.baseOffset
}

// EndOffset returns the offset after the last record of the segment (the
// next offset to assign), or -1 if the segment is empty.
func (b *Builder) EndOffset() int64 {
	if b.n == 0 {
		return -1
	}
	return b.endOffset
}

// MaxTimestamp returns the largest batch MaxTimestamp in the segment, which
// time-based retention and ListOffsets by timestamp use, or -1 (Kafka's "no
// timestamp") if the segment is empty.
func (b *Builder) MaxTimestamp() int64 {
	if b.n == 0 {
		return -1
	}
	return b.maxTimestamp
}

// Reset empties the Builder for the next segment, keeping IndexInterval. It
// drops the buffers instead of reusing them, since the previous segment's
// bytes are typically still being uploaded.
func (b *Builder) Reset() {
	*b = Builder{IndexInterval: b.IndexInterval}
}
