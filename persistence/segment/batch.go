package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"iter"
)

// HeaderSize is the size of a RecordBatch v2 header: everything before the
// first record.
const HeaderSize = 61

// Magic is the only batch format version Morax stores. v0/v1 message sets
// predate Kafka 0.11 and are rejected with ErrBadMagic.
const Magic = 2

// Byte positions of the header fields (see BatchHeader for their meaning).
const (
	posBaseOffset    = 0
	posBatchLength   = 8
	posLeaderEpoch   = 12
	posMagic         = 16
	posCRC           = 17
	posAttributes    = 21 // the CRC covers the batch from here to its end
	posLastDelta     = 23
	posFirstTs       = 27
	posMaxTs         = 35
	posProducerID    = 43
	posProducerEpoch = 51
	posBaseSequence  = 53
	posNumRecords    = 57
)

// lengthOverhead is the number of bytes not counted by BatchLength: the base
// offset and the length field itself.
const lengthOverhead = posLeaderEpoch

// minBatchLength is the smallest BatchLength that still covers the header.
const minBatchLength = HeaderSize - lengthOverhead

// Attribute bits (Kafka's DefaultRecordBatch).
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// castagnoli is the CRC-32C table. crc32.MakeTable returns the package's
// shared table for this polynomial, which selects the hardware (SSE4.2 /
// ARMv8) implementation.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is a batch compression codec, as stored in the low three bits of the
// batch attributes.
type Codec int8

// The compression codecs Kafka defines. Values 5-7 are unassigned.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's Kafka configuration name (compression.type).
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// valid reports whether c is one of the codecs Kafka defines.
func (c Codec) valid() bool { return c >= CodecNone && c <= CodecZstd }

// BatchHeader is the decoded fixed-size header of a RecordBatch v2. Field
// names and order follow the Kafka protocol.
type BatchHeader struct {
	// BaseOffset is the offset of the first record. Producers send 0; the
	// partition actor rewrites it with SetBaseOffset.
	BaseOffset int64
	// BatchLength counts the bytes after this field, so the whole batch is
	// 12 + BatchLength bytes (see Size).
	BatchLength int32
	// PartitionLeaderEpoch is stamped by the broker (SetPartitionLeaderEpoch)
	// so consumers can detect log truncation (KIP-320).
	PartitionLeaderEpoch int32
	// Magic is the format version; always 2 in a parsed header.
	Magic int8
	// CRC is the CRC-32C of the bytes from Attributes to the end of the
	// batch.
	CRC uint32
	// Attributes holds the codec, timestamp type, transactional and control
	// bits; use the methods rather than decoding it by hand.
	Attributes int16
	// LastOffsetDelta is the offset of the last record relative to
	// BaseOffset.
	LastOffsetDelta int32
	// FirstTimestamp is the timestamp (ms) records' timestamp deltas are
	// relative to.
	FirstTimestamp int64
	// MaxTimestamp is the largest record timestamp, or the broker's append
	// time when LogAppendTime is set.
	MaxTimestamp int64
	// ProducerID, ProducerEpoch and BaseSequence identify an idempotent or
	// transactional producer's batch; -1 when not used.
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	// NumRecords is the number of records in the batch.
	NumRecords int32
}

// Compression returns the codec the records are compressed with. It may be
// a value outside the defined codecs in an unvalidated header.
func (h BatchHeader) Compression() Codec { return Codec(h.Attributes & attrCodecMask) }

// LogAppendTime reports whether the timestamp type is LogAppendTime, in which
// case MaxTimestamp is the timestamp of every record in the batch.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction
// markers) rather than user data.
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// LastOffset returns the offset of the last record in the batch.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Size returns the size in bytes of the whole batch, header included.
func (h BatchHeader) Size() int { return lengthOverhead + int(h.BatchLength) }

// ParseHeader decodes the batch header at the start of b. It needs only the
// first HeaderSize bytes and checks only what it must to make the header
// usable: the magic (a v0/v1 message set gets ErrBadMagic even if shorter
// than HeaderSize, since all versions keep the magic at the same position)
// and that BatchLength covers at least the header, so Size() >= HeaderSize.
// It does not verify the CRC or look at the records; see Validate.
func ParseHeader(b []byte) (BatchHeader, error) {
	if len(b) <= posMagic {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(b), HeaderSize)
	}
	if m := int8(b[posMagic]); m != Magic {
		return BatchHeader{}, fmt.Errorf("%w: magic %d, want %d", ErrBadMagic, m, Magic)
	}
	if len(b) < HeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(b), HeaderSize)
	}
	b = b[:HeaderSize] // one bounds check for all the reads below
	be := binary.BigEndian
	h := BatchHeader{
		BaseOffset:           int64(be.Uint64(b[posBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[posBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[posLeaderEpoch:])),
		Magic:                int8(b[posMagic]),
		CRC:                  be.Uint32(b[posCRC:]),
		Attributes:           int16(be.Uint16(b[posAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[posLastDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[posFirstTs:])),
		MaxTimestamp:         int64(be.Uint64(b[posMaxTs:])),
		ProducerID:           int64(be.Uint64(b[posProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[posProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[posBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[posNumRecords:])),
	}
	if h.BatchLength < minBatchLength {
		return BatchHeader{}, fmt.Errorf("%w: batch length %d, header alone needs %d", ErrBadLength, h.BatchLength, minBatchLength)
	}
	return h, nil
}

// Validate checks that b is exactly one well-formed batch, as a broker must
// before accepting it from a producer: v2 magic, a length field that matches
// len(b), a matching CRC-32C, a known codec, NumRecords > 0 and equal to
// LastOffsetDelta+1. For uncompressed batches it also walks the records and
// checks their framing (every record well formed, offset deltas 0..n-1,
// exactly NumRecords records filling the batch), without allocating.
// Compressed records are only checked by Records, because decompressing on
// the produce path would cost far more than the rest of validation.
//
// On error the returned header is the parsed header if there was one (useful
// for logging the producer), else the zero value.
func Validate(b []byte) (BatchHeader, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if err := checkFrame(b, &h); err != nil {
		return h, err
	}
	if h.Compression() == CodecNone {
		if err := walkRecords(b[HeaderSize:], &h, nil); err != nil {
			return h, err
		}
	}
	return h, nil
}

// checkFrame does the batch-level checks of Validate, given the parsed
// header of b.
func checkFrame(b []byte, h *BatchHeader) error {
	if size := h.Size(); len(b) < size {
		return fmt.Errorf("%w: have %d of %d bytes", ErrTruncated, len(b), size)
	} else if len(b) > size {
		return fmt.Errorf("%w: %d bytes after the %d-byte batch", ErrBadLength, len(b)-size, size)
	}
	if crc := crc32.Checksum(b[posAttributes:], castagnoli); crc != h.CRC {
		return fmt.Errorf("%w: stored %#08x, computed %#08x", ErrBadCRC, h.CRC, crc)
	}
	if c := h.Compression(); !c.valid() {
		return fmt.Errorf("%w: %d", ErrUnsupportedCodec, int8(c))
	}
	if h.NumRecords <= 0 {
		return fmt.Errorf("%w: record count %d", ErrCorrupt, h.NumRecords)
	}
	if int64(h.LastOffsetDelta)+1 != int64(h.NumRecords) {
		return fmt.Errorf("%w: record count %d does not match last offset delta %d", ErrCorrupt, h.NumRecords, h.LastOffsetDelta)
	}
	return nil
}

// SetBaseOffset rewrites the base offset of the batch at the start of b in
// place. The CRC does not cover the base offset, so the batch stays valid.
// b must hold at least the header (it panics otherwise, like an index
// expression); callers pass batches that passed Validate.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[posBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the partition leader epoch of the batch
// at the start of b in place. Like SetBaseOffset it leaves the CRC valid and
// panics if b is shorter than the header.
func SetPartitionLeaderEpoch(b []byte, e int32) {
	binary.BigEndian.PutUint32(b[posLeaderEpoch:], uint32(e))
}

// SetLogAppendTime marks the batch at the start of b as LogAppendTime with
// append time ts, and recomputes the CRC, which covers both fields.
//
// Like Kafka's in-place path (DefaultRecordBatch.setMaxTimestamp), it sets
// only the timestamp-type bit and MaxTimestamp: readers take MaxTimestamp as
// every record's timestamp when the bit is set, and FirstTimestamp keeps the
// producer's create time that the record deltas are relative to. Records are
// never rewritten, so compressed batches need no recompression.
//
// b must hold the whole batch (it may continue with further batches); it
// panics otherwise. Callers pass batches that passed Validate.
func SetLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	end := lengthOverhead + int(int32(be.Uint32(b[posBatchLength:])))
	batch := b[:end]
	attrs := be.Uint16(batch[posAttributes:])
	if attrs&attrLogAppendTime != 0 && int64(be.Uint64(batch[posMaxTs:])) == ts {
		return // already stamped: skip the CRC pass
	}
	be.PutUint16(batch[posAttributes:], attrs|attrLogAppendTime)
	be.PutUint64(batch[posMaxTs:], uint64(ts))
	be.PutUint32(batch[posCRC:], crc32.Checksum(batch[posAttributes:], castagnoli))
}

// Batches iterates over the consecutive batches in b (a produce request's
// records, or a segment), yielding each batch's bytes; the slices' capacity
// ends with the batch, so appending to one cannot clobber the next. It
// checks only the framing (ParseHeader and that the batch is complete):
// call Validate or Records on each batch as needed. On the first framing
// error, including a partial batch at the end (ErrTruncated), it yields
// (nil, err) and stops. Use CompleteBatches first to tolerate a partial tail.
func Batches(b []byte) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		rest := b
		for len(rest) > 0 {
			h, err := ParseHeader(rest)
			if err != nil {
				yield(nil, err)
				return
			}
			size := h.Size()
			if size > len(rest) {
				yield(nil, fmt.Errorf("%w: have %d of %d bytes", ErrTruncated, len(rest), size))
				return
			}
			if !yield(rest[:size:size], nil) {
				return
			}
			rest = rest[size:]
		}
	}
}

// CompleteBatches returns the length of the run of whole batches at the
// start of b. A partial batch at the end is not an error: a ranged GET of a
// segment, like a Kafka fetch response, may end mid-batch, and the reader
// keeps b[:n]. err is non-nil only when the bytes at b[n:] cannot be the
// start of a batch (bad magic or length), meaning the data is corrupt or the
// read did not start at a batch boundary.
func CompleteBatches(b []byte) (n int, err error) {
	for n < len(b) {
		rest := b[n:]
		h, err := ParseHeader(rest)
		if err != nil {
			if errors.Is(err, ErrTruncated) {
				return n, nil
			}
			return n, err
		}
		size := h.Size()
		if size > len(rest) {
			return n, nil
		}
		n += size
	}
	return n, nil
}

// Slice returns seg without its leading whole batches whose last offset is
// below from. seg must start at a batch boundary (the start of a segment or
// a position from its index). The result may start with a batch whose base
// offset is before from: Kafka fetches return whole batches and clients skip
// the records they did not ask for. Slice reads only headers; if it meets
// bytes that are not a batch header it stops and returns them, leaving the
// error to whoever parses the result.
func Slice(seg []byte, from int64) []byte {
	for len(seg) > 0 {
		h, err := ParseHeader(seg)
		if err != nil || h.LastOffset() >= from {
			return seg
		}
		size := h.Size()
		if size >= len(seg) {
			return seg[len(seg):]
		}
		seg = seg[size:]
	}
	return seg
}
