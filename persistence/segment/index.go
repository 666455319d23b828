package segment

import (
	"encoding/binary"
	"fmt"
)

// IndexEntry maps the base offset of a record batch to its byte position in
// a segment object. A segment's sparse index holds one entry every few KiB,
// so a reader can start a ranged GET near the offset it wants.
type IndexEntry struct {
	Offset   int64
	Position int64
}

// indexFormat versions EncodeIndex's output, so the stored encoding can
// change without a metadata migration.
const indexFormat = 1

// Lookup returns the position of the last index entry whose offset is at most
// offset: where a ranged read for offset should start. It returns 0 (the
// start of the segment) when offset precedes every entry or index is empty.
// index must be sorted by offset, as Builder and DecodeIndex produce it.
func Lookup(index []IndexEntry, offset int64) int64 {
	// Binary search for the first entry past offset; the one before it is
	// the answer.
	lo, hi := 0, len(index)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if index[mid].Offset <= offset {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0
	}
	return index[lo-1].Position
}

// EncodeIndex returns a compact encoding of index for the metadata DB: a
// format byte, the entry count, then each entry's offset and position as
// zigzag varint deltas from the previous entry's. A sparse index with
// 4 KiB spacing costs about three bytes per entry.
func EncodeIndex(index []IndexEntry) []byte {
	dst := make([]byte, 0, 1+binary.MaxVarintLen64+len(index)*4)
	dst = append(dst, indexFormat)
	dst = binary.AppendUvarint(dst, uint64(len(index)))
	var prev IndexEntry
	for _, e := range index {
		// Deltas wrap around on overflow; decoding adds them back with the
		// same wrap-around, so any input round-trips exactly.
		dst = binary.AppendVarint(dst, e.Offset-prev.Offset)
		dst = binary.AppendVarint(dst, e.Position-prev.Position)
		prev = e
	}
	return dst
}

// DecodeIndex decodes EncodeIndex's output. It rejects (with ErrCorrupt)
// anything that is not a valid index: unknown format, truncated or trailing
// bytes, negative values, offsets or positions not strictly increasing. An
// empty index decodes to nil.
func DecodeIndex(b []byte) ([]IndexEntry, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty index encoding", ErrCorrupt)
	}
	if b[0] != indexFormat {
		return nil, fmt.Errorf("%w: index format %d", ErrCorrupt, b[0])
	}
	b = b[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: index entry count", ErrCorrupt)
	}
	b = b[n:]
	// Each entry takes at least two bytes; checking that first bounds the
	// allocation by the input size.
	if count > uint64(len(b)/2) {
		return nil, fmt.Errorf("%w: %d index entries cannot fit in %d bytes", ErrCorrupt, count, len(b))
	}
	if count == 0 {
		if len(b) != 0 {
			return nil, fmt.Errorf("%w: %d bytes after the index", ErrCorrupt, len(b))
		}
		return nil, nil
	}
	index := make([]IndexEntry, count)
	var prev IndexEntry
	for i := range index {
		do, n := binary.Varint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: index entry %d offset", ErrCorrupt, i)
		}
		b = b[n:]
		dp, n := binary.Varint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: index entry %d position", ErrCorrupt, i)
		}
		b = b[n:]
		e := IndexEntry{Offset: prev.Offset + do, Position: prev.Position + dp}
		if e.Offset < 0 || e.Position < 0 {
			return nil, fmt.Errorf("%w: index entry %d is negative: %+v", ErrCorrupt, i, e)
		}
		if i > 0 && (e.Offset <= prev.Offset || e.Position <= prev.Position) {
			return nil, fmt.Errorf("%w: index entry %d %+v does not follow %+v", ErrCorrupt, i, e, prev)
		}
		index[i] = e
		prev = e
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the index", ErrCorrupt, len(b))
	}
	return index, nil
}
