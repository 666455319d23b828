package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressedSize is the most bytes one batch's records may decompress
// to. Kafka brokers accept batches of up to max.message.bytes (1 MiB by
// default) compressed, so real batches stay far below this; the cap stops a
// small hostile batch (a "zip bomb") from exhausting memory.
const MaxDecompressedSize = 64 << 20

// xerialMagic starts snappy data framed the way Kafka's Java client writes it
// (xerial snappy-java's SnappyOutputStream): the magic, a 4-byte version and
// a 4-byte compatible version, then chunks each prefixed with a big-endian
// 4-byte length. Other clients (librdkafka, franz-go) send a raw snappy
// block, so a reader must accept both.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// tooLarge builds the error for output beyond limit. It wraps ErrCorrupt as
// well, so callers that only map ErrCorrupt still reject the batch.
func tooLarge(limit int) error {
	return fmt.Errorf("%w: over %d bytes (%w)", ErrTooLarge, limit, ErrCorrupt)
}

// Pools for the streaming codecs, whose state (tens of KiB to MiBs of
// buffers) is too costly to allocate per batch.
var (
	gzipReaders = sync.Pool{New: func() any { return new(gzip.Reader) }}
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	lz4Writers  = sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		// Kafka's own producer writes 64 KiB blocks; the 4 MiB default would
		// make every pooled writer hold 4 MiB buffers. Options survive Reset.
		_ = w.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
		return w
	}}
)

// zstd coders are safe for concurrent EncodeAll/DecodeAll, so one of each
// serves the process; they are built on first use so that importing the
// package costs nothing.
var (
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil)
	})
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0), // one per CPU: partitions decode in parallel
			zstd.WithDecoderMaxMemory(MaxDecompressedSize))
	})
)

// sliceWriter is an io.Writer that appends to a byte slice, so streaming
// compressors write straight into the batch being built.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// compress appends src compressed with c to dst. c is a valid codec other
// than CodecNone.
func compress(dst []byte, c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecGzip:
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		return compressStream(dst, w, src)
	case CodecLZ4:
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		return compressStream(dst, w, src)
	case CodecSnappy:
		n := snappy.MaxEncodedLen(len(src))
		if n < 0 {
			return dst, fmt.Errorf("%w: %d bytes too large for snappy", ErrBadLength, len(src))
		}
		dst = slices.Grow(dst, n)
		enc := snappy.Encode(dst[len(dst):len(dst)+n], src) // encodes in place: room is there
		return append(dst, enc...), nil
	case CodecZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return dst, fmt.Errorf("segment: zstd encoder: %w", err)
		}
		return enc.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("%w: %d", ErrUnsupportedCodec, int8(c))
}

// resetWriteCloser is the part of gzip.Writer and lz4.Writer compressStream
// needs.
type resetWriteCloser interface {
	io.WriteCloser
	Reset(io.Writer)
}

// compressStream appends src compressed by the (pooled) stream writer w.
func compressStream(dst []byte, w resetWriteCloser, src []byte) ([]byte, error) {
	sw := &sliceWriter{b: dst}
	w.Reset(sw)
	_, err := w.Write(src)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	w.Reset(nil) // do not keep the batch reachable from the pool
	if err != nil {
		return dst, fmt.Errorf("segment: compress: %w", err)
	}
	return sw.b, nil
}

// decompress returns src decompressed with c, failing with ErrTooLarge past
// limit bytes and ErrCorrupt on malformed input.
func decompress(c Codec, src []byte, limit int) ([]byte, error) {
	switch c {
	case CodecGzip:
		// A pooled reader keeps its last input reachable until reused (gzip
		// has no way to detach it); pools are emptied by the GC anyway.
		zr := gzipReaders.Get().(*gzip.Reader)
		defer gzipReaders.Put(zr)
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCorrupt, err)
		}
		return readAll(zr, len(src), limit, "gzip")
	case CodecLZ4:
		zr := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(zr)
		zr.Reset(bytes.NewReader(src))
		out, err := readAll(zr, len(src), limit, "lz4")
		zr.Reset(nil)
		return out, err
	case CodecSnappy:
		if len(src) >= xerialHeaderSize && bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
			return decodeXerial(src[xerialHeaderSize:], limit)
		}
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
		}
		if n > limit {
			return nil, tooLarge(limit)
		}
		out, err := snappy.Decode(make([]byte, n), src)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
		}
		return out, nil
	case CodecZstd:
		dec, err := zstdDecoder()
		if err != nil {
			return nil, fmt.Errorf("segment: zstd decoder: %w", err)
		}
		out, err := dec.DecodeAll(src, nil)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out) > limit {
			return nil, tooLarge(limit)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnsupportedCodec, int8(c))
}

// decodeXerial decodes the chunks of xerial-framed snappy (after the
// header). A first pass checks the framing and sums the decoded lengths, so
// the output is allocated once and never beyond limit.
func decodeXerial(chunks []byte, limit int) ([]byte, error) {
	total := 0
	for p := chunks; len(p) > 0; {
		chunk, rest, err := xerialChunk(p)
		if err != nil {
			return nil, err
		}
		n, err := snappy.DecodedLen(chunk)
		if err != nil {
			return nil, fmt.Errorf("%w: xerial snappy chunk: %v", ErrCorrupt, err)
		}
		if n > limit-total {
			return nil, tooLarge(limit)
		}
		total += n
		p = rest
	}
	out := make([]byte, total)
	pos := 0
	for p := chunks; len(p) > 0; {
		chunk, rest, _ := xerialChunk(p) // validated by the first pass
		n, _ := snappy.DecodedLen(chunk)
		d, err := snappy.Decode(out[pos:pos+n], chunk)
		if err != nil {
			return nil, fmt.Errorf("%w: xerial snappy chunk: %v", ErrCorrupt, err)
		}
		if len(d) != n {
			return nil, fmt.Errorf("%w: xerial snappy chunk length", ErrCorrupt)
		}
		pos += n
		p = rest
	}
	return out, nil
}

// xerialChunk splits the length-prefixed chunk at the start of p from the
// rest.
func xerialChunk(p []byte) (chunk, rest []byte, err error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: xerial snappy: truncated chunk length", ErrCorrupt)
	}
	n := uint64(binary.BigEndian.Uint32(p))
	p = p[4:]
	if n > uint64(len(p)) {
		return nil, nil, fmt.Errorf("%w: xerial snappy: chunk of %d bytes, %d left", ErrCorrupt, n, len(p))
	}
	return p[:n], p[n:], nil
}

// readAll reads r to EOF, growing the output geometrically from a guess
// based on the compressed size but never past limit+1 bytes, which is how it
// detects output beyond limit without reading all of it.
func readAll(r io.Reader, compressedSize, limit int, codec string) ([]byte, error) {
	buf := make([]byte, 0, min(max(4*compressedSize, 512), limit+1))
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), limit+1-len(buf)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, tooLarge(limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, codec, err)
		}
	}
}

// scratch buffers hold the uncompressed records while AppendBatch compresses
// them.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledScratch keeps rare huge batches from pinning memory in the pool.
const maxPooledScratch = 4 << 20

func getScratch(size int) *[]byte {
	b := scratchPool.Get().(*[]byte)
	*b = slices.Grow((*b)[:0], size)
	return b
}

func putScratch(b *[]byte) {
	if cap(*b) <= maxPooledScratch {
		scratchPool.Put(b)
	}
}
