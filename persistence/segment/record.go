package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"slices"
)

// The record-level codec is written here rather than taken from kmsg.Record:
// kmsg needs the record length precomputed to encode, does not report how
// many bytes it consumed or check that a record's fields fill exactly its
// length when decoding, and allocates per record. Validate needs a framing
// walk that allocates nothing, and Records shares the same code. The tests
// cross-check both directions against kmsg.

// Record is one decoded Kafka record.
type Record struct {
	// Offset is the batch's base offset plus the record's offset delta.
	// BuildBatch ignores it: records get deltas 0..n-1.
	Offset int64
	// Timestamp is in milliseconds. For a LogAppendTime batch it is the
	// batch's MaxTimestamp, as Kafka clients report it.
	Timestamp int64
	// Key and Value are nil for a null key/value and non-nil (possibly
	// empty) otherwise; the distinction survives a round trip.
	Key, Value []byte
	// Headers are the record headers in wire order.
	Headers []Header
}

// Header is a record header. Kafka allows duplicate keys, and a null value
// (nil) but not a null key.
type Header struct {
	Key   string
	Value []byte
}

// minRecordSize is the encoded size of the smallest record: a 1-byte length
// followed by a 6-byte body (attributes, timestamp delta, offset delta, null
// key, null value, header count). It bounds how many records a batch of a
// given size can claim, before anything is allocated for them.
const (
	minRecordBody = 6
	minRecordSize = 1 + minRecordBody
)

// Record decoding errors, allocated once: Validate's walk must not allocate,
// and the caller adds the record index when wrapping.
var (
	errRecordLength  = fmt.Errorf("%w: bad record length", ErrCorrupt)
	errRecordVarint  = fmt.Errorf("%w: malformed varint in record", ErrCorrupt)
	errRecordBytes   = fmt.Errorf("%w: bad key, value or header length", ErrCorrupt)
	errOffsetDelta   = fmt.Errorf("%w: record offset deltas are not 0..n-1", ErrCorrupt)
	errHeaderCount   = fmt.Errorf("%w: bad record header count", ErrCorrupt)
	errNullHeaderKey = fmt.Errorf("%w: null record header key", ErrCorrupt)
)

// Records decodes every record of one batch, decompressing it if needed. It
// validates the batch like Validate (CRC included, since this is how stored
// data is read back) and also checks compressed records. A batch may not
// decompress to more than MaxDecompressedSize bytes (ErrTooLarge).
//
// The returned Keys and Values alias batch when it is uncompressed, or a
// buffer owned by the result otherwise: copy them before reusing batch.
func Records(batch []byte) ([]Record, error) {
	return AppendRecords(nil, batch)
}

// AppendRecords is Records appending to dst, so a reader of many batches can
// reuse one slice. On error dst is returned unchanged.
func AppendRecords(dst []Record, batch []byte) ([]Record, error) {
	h, err := ParseHeader(batch)
	if err != nil {
		return dst, err
	}
	if err := checkFrame(batch, &h); err != nil {
		return dst, err
	}
	data := batch[HeaderSize:]
	if c := h.Compression(); c != CodecNone {
		data, err = decompress(c, data, MaxDecompressedSize)
		if err != nil {
			return dst, err
		}
	}
	out := dst
	if err := walkRecords(data, &h, &out); err != nil {
		return dst, err
	}
	return out, nil
}

// walkRecords parses the h.NumRecords records that must exactly fill p. If
// dst is nil it only checks them, allocating nothing; otherwise it appends
// the decoded records to *dst.
func walkRecords(p []byte, h *BatchHeader, dst *[]Record) error {
	n := int(h.NumRecords)
	if n > len(p)/minRecordSize {
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrCorrupt, n, len(p))
	}
	var out []Record
	if dst != nil {
		out = slices.Grow(*dst, n)
	}
	for i := range n {
		var r *Record
		if dst != nil {
			out = append(out, Record{})
			r = &out[len(out)-1]
		}
		size, err := parseRecord(p, i, h, r)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		p = p[size:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", ErrCorrupt, len(p))
	}
	if dst != nil {
		*dst = out
	}
	return nil
}

// parseRecord parses the record at the start of p, the i-th of its batch,
// and returns its encoded size. It fills *r unless r is nil; only then does
// it allocate (the headers).
func parseRecord(p []byte, i int, h *BatchHeader, r *Record) (int, error) {
	length, pos := readVarint(p, 0)
	if pos < 0 {
		return 0, errRecordVarint
	}
	if length < minRecordBody || length > int64(len(p)-pos) {
		return 0, errRecordLength
	}
	end := pos + int(length)
	body := p[:end]
	pos++ // attributes: unused by Kafka, any value is accepted
	tsDelta, pos := readVarint(body, pos)
	if pos < 0 {
		return 0, errRecordVarint
	}
	offDelta, pos := readVarint(body, pos)
	if pos < 0 {
		return 0, errRecordVarint
	}
	// Every producer numbers records 0..n-1, and Kafka checks this for
	// compressed batches; insisting on it for all batches keeps record
	// offsets inside the batch's offset range.
	if offDelta != int64(i) {
		return 0, errOffsetDelta
	}
	key, pos := readBytes(body, pos)
	if pos < 0 {
		return 0, errRecordBytes
	}
	value, pos := readBytes(body, pos)
	if pos < 0 {
		return 0, errRecordBytes
	}
	nh, pos := readVarint(body, pos)
	if pos < 0 {
		return 0, errRecordVarint
	}
	// A header takes at least two bytes (key and value lengths); checking
	// that bounds the allocation below by the input size.
	if nh < 0 || nh > int64(end-pos)/2 {
		return 0, errHeaderCount
	}
	var hdrs []Header
	if r != nil && nh > 0 {
		hdrs = make([]Header, nh)
	}
	for j := range int(nh) {
		var hk, hv []byte
		hk, pos = readBytes(body, pos)
		if pos < 0 {
			return 0, errRecordBytes
		}
		if hk == nil {
			return 0, errNullHeaderKey
		}
		hv, pos = readBytes(body, pos)
		if pos < 0 {
			return 0, errRecordBytes
		}
		if hdrs != nil {
			hdrs[j] = Header{Key: string(hk), Value: hv}
		}
	}
	if pos != end {
		return 0, errRecordLength
	}
	if r != nil {
		ts := h.FirstTimestamp + tsDelta
		if h.LogAppendTime() {
			ts = h.MaxTimestamp
		}
		*r = Record{Offset: h.BaseOffset + offDelta, Timestamp: ts, Key: key, Value: value, Headers: hdrs}
	}
	return end, nil
}

// readVarint decodes the zigzag varint at p[pos:] and returns it with the
// position after it, or a negative position if it is malformed or cut off.
// The one-byte case (most deltas and small lengths) is small enough to be
// inlined into the record walk, which is most of Validate's time.
func readVarint(p []byte, pos int) (int64, int) {
	if uint(pos) < uint(len(p)) && p[pos] < 0x80 {
		u := int64(p[pos])
		return u>>1 ^ -(u & 1), pos + 1
	}
	return readVarintSlow(p, pos)
}

// readVarintSlow is readVarint for multi-byte varints. It accepts at most
// ten bytes and rejects values overflowing 64 bits, like binary.Varint.
func readVarintSlow(p []byte, pos int) (int64, int) {
	if pos < 0 || pos > len(p) {
		return 0, -1
	}
	var u uint64
	for shift, i := uint(0), pos; i < len(p); shift, i = shift+7, i+1 {
		c := p[i]
		if shift == 63 && c > 1 {
			return 0, -1 // overflows 64 bits (or an 11th byte follows)
		}
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), i + 1
		}
	}
	return 0, -1
}

// readBytes decodes the varint-length-prefixed bytes at p[pos:]: nil for
// length -1 (null), otherwise a sub-slice of p whose capacity ends with it.
// The position is negative if the length is invalid or overruns p.
func readBytes(p []byte, pos int) ([]byte, int) {
	l, pos := readVarint(p, pos)
	if pos < 0 {
		return nil, -1
	}
	if l == -1 {
		return nil, pos
	}
	if l < -1 || l > int64(len(p)-pos) {
		return nil, -1
	}
	end := pos + int(l)
	return p[pos:end:end], end
}

// BuildBatch encodes records as a new v2 batch compressed with codec, the
// way a producer without idempotence would: base offset 0, partition leader
// epoch, producer id, epoch and base sequence -1, offset deltas 0..n-1 (the
// records' Offset fields are ignored), timestamps as deltas from the first
// record's, CreateTime timestamps. The partition actor then assigns offsets
// with SetBaseOffset like for any produced batch.
func BuildBatch(records []Record, codec Codec) ([]byte, error) {
	return AppendBatch(nil, records, codec)
}

// AppendBatch is BuildBatch appending the batch to dst. Uncompressed batches
// are encoded straight into dst with one growth. On error dst is returned
// unchanged.
func AppendBatch(dst []byte, records []Record, codec Codec) ([]byte, error) {
	if len(records) == 0 {
		return dst, ErrEmpty
	}
	if !codec.valid() {
		return dst, fmt.Errorf("%w: %d", ErrUnsupportedCodec, int8(codec))
	}
	if len(records) > math.MaxInt32 {
		return dst, fmt.Errorf("%w: %d records", ErrBadLength, len(records))
	}
	firstTs := records[0].Timestamp
	maxTs := firstTs
	size := 0
	for i := range records {
		r := &records[i]
		maxTs = max(maxTs, r.Timestamp)
		body := recordBodySize(r, i, r.Timestamp-firstTs)
		size += varintLen(int64(body)) + body
	}

	start := len(dst)
	var err error
	if codec == CodecNone {
		dst = slices.Grow(dst, HeaderSize+size)
		dst = append(dst, make([]byte, HeaderSize)...)
		dst = appendRecords(dst, records, firstTs)
	} else {
		raw := getScratch(size)
		*raw = appendRecords((*raw)[:0], records, firstTs)
		dst = append(dst, make([]byte, HeaderSize)...)
		dst, err = compress(dst, codec, *raw)
		putScratch(raw)
		if err != nil {
			return dst[:start], err
		}
	}
	batchLength := len(dst) - start - lengthOverhead
	if batchLength > math.MaxInt32 {
		return dst[:start], fmt.Errorf("%w: batch of %d bytes", ErrBadLength, batchLength+lengthOverhead)
	}

	b := dst[start:]
	be := binary.BigEndian
	be.PutUint64(b[posBaseOffset:], 0)
	be.PutUint32(b[posBatchLength:], uint32(batchLength))
	be.PutUint32(b[posLeaderEpoch:], math.MaxUint32) // -1
	b[posMagic] = Magic
	be.PutUint16(b[posAttributes:], uint16(codec))
	be.PutUint32(b[posLastDelta:], uint32(len(records)-1))
	be.PutUint64(b[posFirstTs:], uint64(firstTs))
	be.PutUint64(b[posMaxTs:], uint64(maxTs))
	be.PutUint64(b[posProducerID:], math.MaxUint64)    // -1
	be.PutUint16(b[posProducerEpoch:], math.MaxUint16) // -1
	be.PutUint32(b[posBaseSequence:], math.MaxUint32)  // -1
	be.PutUint32(b[posNumRecords:], uint32(len(records)))
	be.PutUint32(b[posCRC:], crc32.Checksum(b[posAttributes:], castagnoli))
	return dst, nil
}

// appendRecords appends the encoded records, with offset deltas 0..n-1 and
// timestamp deltas from firstTs.
func appendRecords(dst []byte, records []Record, firstTs int64) []byte {
	for i := range records {
		r := &records[i]
		tsDelta := r.Timestamp - firstTs
		dst = binary.AppendVarint(dst, int64(recordBodySize(r, i, tsDelta)))
		dst = append(dst, 0) // attributes
		dst = binary.AppendVarint(dst, tsDelta)
		dst = binary.AppendVarint(dst, int64(i))
		dst = appendBytes(dst, r.Key)
		dst = appendBytes(dst, r.Value)
		dst = binary.AppendVarint(dst, int64(len(r.Headers)))
		for j := range r.Headers {
			hd := &r.Headers[j]
			dst = binary.AppendVarint(dst, int64(len(hd.Key)))
			dst = append(dst, hd.Key...)
			dst = appendBytes(dst, hd.Value)
		}
	}
	return dst
}

// recordBodySize is the encoded size of a record after its length varint.
func recordBodySize(r *Record, offDelta int, tsDelta int64) int {
	n := 1 + varintLen(tsDelta) + varintLen(int64(offDelta)) +
		bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for j := range r.Headers {
		hd := &r.Headers[j]
		n += varintLen(int64(len(hd.Key))) + len(hd.Key) + bytesLen(hd.Value)
	}
	return n
}

// appendBytes appends b with its varint length, -1 for nil.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// bytesLen is the encoded size of b as written by appendBytes.
func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

// varintLen is the encoded size of v as a zigzag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	return (bits.Len64(u|1) + 6) / 7
}
