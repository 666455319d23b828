// Package segmenttest builds hostile record batches for tests: compression
// bombs and batches whose record count disagrees with their records. It is
// test support; the binary must not link it.
package segmenttest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/morax-dev/morax/persistence/segment"
)

// Kafka RecordBatch v2 header positions that the builders rewrite.
const (
	posBatchLength = 8
	posCRC         = 17
	posAttributes  = 21
	posLastDelta   = 23
	posNumRecords  = 57
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Bomb returns a valid batch compressed with codec holding records
// records, each with a value of valueBytes zero bytes: a few KB that
// decompress to records*valueBytes. The compressor streams, so building a large bomb costs time
// but not memory, except for raw snappy, whose block format needs the
// whole input (keep its valueBytes to what a test can allocate).
// CodecSnappy builds the xerial framing (Java's client) when xerial is
// set, a raw block otherwise.
func Bomb(codec segment.Codec, records int32, valueBytes int64, xerial bool) ([]byte, error) {
	var payload bytes.Buffer
	suffix := []byte{0} // no headers
	zeros := make([]byte, 64<<10)
	writeAll := func(w io.Writer) error {
		for i := range records {
			if _, err := w.Write(recordPrefix(i, valueBytes)); err != nil {
				return err
			}
			for left := valueBytes; left > 0; {
				n := min(left, int64(len(zeros)))
				if _, err := w.Write(zeros[:n]); err != nil {
					return err
				}
				left -= n
			}
			if _, err := w.Write(suffix); err != nil {
				return err
			}
		}
		return nil
	}
	switch codec {
	case segment.CodecGzip:
		w, _ := gzip.NewWriterLevel(&payload, gzip.BestSpeed)
		if err := writeAll(w); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case segment.CodecLZ4:
		w := lz4.NewWriter(&payload)
		if err := writeAll(w); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case segment.CodecZstd:
		w, err := zstd.NewWriter(&payload, zstd.WithWindowSize(1<<20))
		if err != nil {
			return nil, err
		}
		if err := writeAll(w); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case segment.CodecSnappy:
		var raw bytes.Buffer
		if xerial {
			payload.Write([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1})
			cw := &xerialWriter{out: &payload}
			if err := writeAll(cw); err != nil {
				return nil, err
			}
			cw.flush()
			break
		}
		if err := writeAll(&raw); err != nil {
			return nil, err
		}
		payload.Write(snappy.Encode(nil, raw.Bytes()))
	default:
		return nil, fmt.Errorf("segmenttest: no bomb for codec %v", codec)
	}
	return withPayload(codec, records, payload.Bytes())
}

// recordPrefix encodes the start of record i (offset delta i, null key)
// whose value is valueBytes long: all but the value and the header count.
func recordPrefix(i int32, valueBytes int64) []byte {
	var body []byte
	body = append(body, 0)                       // attributes
	body = binary.AppendVarint(body, 0)          // timestamp delta
	body = binary.AppendVarint(body, int64(i))   // offset delta
	body = binary.AppendVarint(body, -1)         // null key
	body = binary.AppendVarint(body, valueBytes) // value length
	length := int64(len(body)) + valueBytes + 1  // + header count
	return append(binary.AppendVarint(nil, length), body...)
}

// xerialWriter frames what is written as xerial snappy chunks of 32 KiB.
type xerialWriter struct {
	out *bytes.Buffer
	buf []byte
}

func (x *xerialWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(len(p), 32<<10-len(x.buf))
		x.buf = append(x.buf, p[:take]...)
		p = p[take:]
		if len(x.buf) == 32<<10 {
			x.flush()
		}
	}
	return n, nil
}

func (x *xerialWriter) flush() {
	if len(x.buf) == 0 {
		return
	}
	enc := snappy.Encode(nil, x.buf)
	x.out.Write(binary.BigEndian.AppendUint32(nil, uint32(len(enc))))
	x.out.Write(enc)
	x.buf = x.buf[:0]
}

// Recount returns a copy of batch claiming n records (record count and
// last offset delta), with its CRC fixed, so only the records' count
// disagrees with the header.
func Recount(batch []byte, n int32) []byte {
	b := bytes.Clone(batch)
	binary.BigEndian.PutUint32(b[posNumRecords:], uint32(n))
	binary.BigEndian.PutUint32(b[posLastDelta:], uint32(n-1))
	binary.BigEndian.PutUint32(b[posCRC:], crc32.Checksum(b[posAttributes:], castagnoli))
	return b
}

// withPayload builds a batch of codec claiming n records around an already
// compressed payload: a valid batch header for it (length, count, CRC).
func withPayload(codec segment.Codec, n int32, payload []byte) ([]byte, error) {
	tmpl, err := segment.BuildBatch([]segment.Record{{Value: []byte("x")}}, codec)
	if err != nil {
		return nil, err
	}
	b := append(bytes.Clone(tmpl[:segment.HeaderSize]), payload...)
	binary.BigEndian.PutUint32(b[posBatchLength:], uint32(len(b)-12))
	return Recount(b, n), nil
}
