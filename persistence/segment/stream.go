package segment

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The functions here read the records of a compressed batch as a stream:
// they decompress only as far as the records go, hold one record at a time
// (plus the codec's own window), and stop at a byte limit before reading
// past it. A small batch that expands to gigabytes (a compression bomb)
// costs at most the limit in work and, apart from a zstd window no larger
// than the limit, a few KiB of memory; one claiming more records than it
// holds, or holding more than it claims, is corrupt.

// streamBufferBytes sizes the buffer records are read through.
const streamBufferBytes = 4 << 10

// maxSnappyExpansion bounds what a raw snappy block can decode to per
// input byte: its densest element is a 3-byte copy of 64 bytes. A block
// whose header claims more is corrupt, and is refused before the output is
// allocated.
const maxSnappyExpansion = 22

// ValidateRecords is Validate plus, for a compressed batch, a check of
// every record while decompressing, stopping at limit decompressed bytes:
// the records must be well formed, numbered 0..n-1, exactly as many as the
// header claims and fill the decompressed data exactly. Past limit it fails
// with ErrTooLarge (which also wraps ErrCorrupt). It allocates no more than
// one record and the codec's state, however much the batch claims.
func ValidateRecords(b []byte, limit int) (BatchHeader, error) {
	h, err := Validate(b)
	if err != nil || h.Compression() == CodecNone {
		return h, err
	}
	return h, streamRecords(&h, b[HeaderSize:], limit, nil)
}

// EachRecord calls fn with every record of one batch, in order, until fn
// returns false. It checks the batch like Records does (CRC included), but
// decompresses a compressed batch as a stream, never past limit bytes
// (ErrTooLarge), and holds one record at a time: the record passed to fn,
// its Key, Value and header values are valid only until fn returns.
// An error after some records were passed to fn means the batch is
// corrupt from there on.
func EachRecord(batch []byte, limit int, fn func(*Record) bool) error {
	h, err := ParseHeader(batch)
	if err != nil {
		return err
	}
	if err := checkFrame(batch, &h); err != nil {
		return err
	}
	data := batch[HeaderSize:]
	if h.Compression() == CodecNone {
		return eachPlain(data, &h, fn)
	}
	return streamRecords(&h, data, limit, fn)
}

// eachPlain is EachRecord over uncompressed records, which alias batch.
func eachPlain(p []byte, h *BatchHeader, fn func(*Record) bool) error {
	// Checked in full first, so fn never sees records of a batch that
	// turns out to be corrupt further on.
	if err := walkRecords(p, h, nil); err != nil {
		return err
	}
	var r Record
	for i := range int(h.NumRecords) {
		size, err := parseRecord(p, i, h, &r)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if !fn(&r) {
			return nil
		}
		p = p[size:]
	}
	return nil
}

// streamRecords reads the h.NumRecords records of compressed data src with
// codec h.Compression(), calling fn (if not nil) with each. It reads at
// most limit decompressed bytes, plus one to see that nothing follows the
// last record.
func streamRecords(h *BatchHeader, src []byte, limit int, fn func(*Record) bool) error {
	n := int(h.NumRecords)
	if n > limit/minRecordSize {
		return fmt.Errorf("%d records cannot fit in %d bytes: %w", n, limit, tooLarge(limit))
	}
	rd, release, err := decompressor(h.Compression(), src, limit)
	if err != nil {
		return err
	}
	defer release()
	br := streamBuffers.Get().(*bufio.Reader)
	br.Reset(rd)
	defer func() {
		br.Reset(nil)
		streamBuffers.Put(br)
	}()
	codec := h.Compression().String()
	var (
		rec  []byte // one record: its length varint, then its body
		r    Record
		read int // decompressed bytes consumed
	)
	for i := range n {
		length, lenBytes, err := readStreamVarint(br, &rec)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: batch claims %d records, holds %d", ErrCorrupt, n, i)
			}
			return streamError(codec, err)
		}
		if length < minRecordBody {
			return fmt.Errorf("record %d: %w", i, errRecordLength)
		}
		if length > int64(limit-read-lenBytes) {
			return fmt.Errorf("record %d of %d bytes: %w", i, length, tooLarge(limit))
		}
		if rec, err = readStreamBytes(br, rec, int(length)); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("record %d: %w", i, errRecordLength)
			}
			return streamError(codec, err)
		}
		read += lenBytes + int(length)
		var out *Record
		if fn != nil {
			out = &r
		}
		if _, err := parseRecord(rec, i, h, out); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if fn != nil && !fn(&r) {
			return nil
		}
	}
	if _, err := br.ReadByte(); err == nil {
		return fmt.Errorf("%w: data after the %d records the batch claims", ErrCorrupt, n)
	} else if !errors.Is(err, io.EOF) {
		return streamError(codec, err)
	}
	return nil
}

// streamError classifies an error of a codec's reader: the zstd decoder
// refusing a window or frame larger than the limit is ErrTooLarge, the
// rest (checksums, malformed data) is ErrCorrupt.
func streamError(codec string, err error) error {
	switch {
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("%s: %v: %w", codec, err, ErrTooLarge)
	}
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, codec, err)
}

// readStreamVarint reads a record's length varint, appending its bytes to
// (*rec)[:0]; it returns the value and how many bytes it took.
func readStreamVarint(br *bufio.Reader, rec *[]byte) (int64, int, error) {
	*rec = (*rec)[:0]
	for i := range maxVarintLen64 {
		c, err := br.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return 0, 0, errRecordVarint
			}
			return 0, 0, err
		}
		*rec = append(*rec, c)
		if c < 0x80 {
			v, pos := readVarint(*rec, 0)
			if pos < 0 {
				return 0, 0, errRecordVarint
			}
			return v, len(*rec), nil
		}
	}
	return 0, 0, errRecordVarint
}

// maxVarintLen64 is the longest encoding of a 64-bit varint.
const maxVarintLen64 = 10

// readStreamBytes appends n bytes read from br to rec. It grows rec as the
// bytes arrive, doubling at most, so a length that the data does not back
// costs no more than the data does.
func readStreamBytes(br *bufio.Reader, rec []byte, n int) ([]byte, error) {
	end := len(rec) + n
	for len(rec) < end {
		if len(rec) == cap(rec) {
			rec = append(rec, 0)[:len(rec)] // grow by Go's policy
		}
		m, err := io.ReadFull(br, rec[len(rec):min(cap(rec), end)])
		rec = rec[:len(rec)+m]
		if err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// streamBuffers holds the buffers records are read through.
var streamBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, streamBufferBytes) }}

// zstdStreams holds synchronous streaming zstd decoders. Their options are
// set per use (ResetWithOptions), since the limit is a caller's setting.
var zstdStreams = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return err
	}
	return d
}}

// decompressor returns a reader of src decompressed with c and a release
// func to call once done with it.
func decompressor(c Codec, src []byte, limit int) (io.Reader, func(), error) {
	switch c {
	case CodecGzip:
		zr := gzipReaders.Get().(*gzip.Reader)
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			gzipReaders.Put(zr)
			return nil, nil, fmt.Errorf("%w: gzip: %v", ErrCorrupt, err)
		}
		return zr, func() { gzipReaders.Put(zr) }, nil
	case CodecLZ4:
		zr := lz4Readers.Get().(*lz4.Reader)
		zr.Reset(bytes.NewReader(src))
		return zr, func() { zr.Reset(nil); lz4Readers.Put(zr) }, nil
	case CodecZstd:
		v := zstdStreams.Get()
		d, ok := v.(*zstd.Decoder)
		if !ok {
			return nil, nil, fmt.Errorf("segment: zstd decoder: %v", v)
		}
		// A window larger than the whole output allowed is refused before
		// it is allocated: the decoder's memory is its window.
		window := uint64(min(max(limit, zstd.MinWindowSize), zstd.MaxWindowSize))
		if err := d.ResetWithOptions(bytes.NewReader(src), zstd.WithDecoderMaxWindow(window), zstd.WithDecoderMaxMemory(uint64(max(limit, 1)))); err != nil {
			zstdStreams.Put(d)
			return nil, nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		return d, func() { _ = d.Reset(nil); zstdStreams.Put(d) }, nil
	case CodecSnappy:
		if len(src) >= xerialHeaderSize && bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
			return &xerialReader{chunks: src[xerialHeaderSize:], limit: limit}, func() {}, nil
		}
		out, err := decodeSnappyBlock(src, limit)
		if err != nil {
			return nil, nil, err
		}
		return bytes.NewReader(out), func() {}, nil
	}
	return nil, nil, fmt.Errorf("%w: %d", ErrUnsupportedCodec, int8(c))
}

// decodeSnappyBlock decodes one raw snappy block of at most limit bytes.
// The block format cannot be decoded in pieces, so the output is allocated
// whole, but only once its claimed length passed both the limit and what
// the input could decode to.
func decodeSnappyBlock(src []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	if n > limit {
		return nil, tooLarge(limit)
	}
	if n > maxSnappyExpansion*len(src) {
		return nil, fmt.Errorf("%w: snappy block of %d bytes claims %d", ErrCorrupt, len(src), n)
	}
	out, err := snappy.Decode(make([]byte, n), src)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	return out, nil
}

// xerialReader decodes xerial-framed snappy one chunk at a time.
type xerialReader struct {
	chunks  []byte
	limit   int
	decoded int    // bytes decoded so far
	cur     []byte // the rest of the current chunk's output
	buf     []byte // reused chunk output
}

// Read implements io.Reader.
func (x *xerialReader) Read(p []byte) (int, error) {
	for len(x.cur) == 0 {
		if len(x.chunks) == 0 {
			return 0, io.EOF
		}
		chunk, rest, err := xerialChunk(x.chunks)
		if err != nil {
			return 0, err
		}
		x.chunks = rest
		n, err := snappy.DecodedLen(chunk)
		if err != nil {
			return 0, fmt.Errorf("%w: xerial snappy chunk: %v", ErrCorrupt, err)
		}
		if n > x.limit-x.decoded {
			return 0, tooLarge(x.limit)
		}
		if n > maxSnappyExpansion*len(chunk) {
			return 0, fmt.Errorf("%w: xerial snappy chunk of %d bytes claims %d", ErrCorrupt, len(chunk), n)
		}
		if cap(x.buf) < n {
			x.buf = make([]byte, n)
		}
		d, err := snappy.Decode(x.buf[:n], chunk)
		if err != nil || len(d) != n {
			return 0, fmt.Errorf("%w: xerial snappy chunk: %v", ErrCorrupt, err)
		}
		x.decoded += n
		x.cur = d
	}
	m := copy(p, x.cur)
	x.cur = x.cur[m:]
	return m, nil
}
