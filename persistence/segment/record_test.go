package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestRoundTrip(t *testing.T) {
	for _, c := range allCodecs {
		for _, n := range []int{1, 2, 100, 1000} {
			recs := sampleRecords(n)
			b := mustBuild(t, recs, c)
			h, err := Validate(b)
			if err != nil {
				t.Fatalf("%v/%d: Validate: %v", c, n, err)
			}
			if h.Compression() != c || h.NumRecords != int32(n) || h.BaseOffset != 0 ||
				h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 || h.PartitionLeaderEpoch != -1 ||
				h.LogAppendTime() || h.Transactional() || h.Control() {
				t.Fatalf("%v/%d: header %+v", c, n, h)
			}
			maxTs := recs[0].Timestamp
			for _, r := range recs {
				maxTs = max(maxTs, r.Timestamp)
			}
			if h.FirstTimestamp != recs[0].Timestamp || h.MaxTimestamp != maxTs {
				t.Fatalf("%v/%d: timestamps %d %d", c, n, h.FirstTimestamp, h.MaxTimestamp)
			}
			got, err := Records(b)
			if err != nil {
				t.Fatalf("%v/%d: Records: %v", c, n, err)
			}
			equalRecords(t, got, withOffsets(recs, 0))
		}
	}
}

func TestRoundTripExtremes(t *testing.T) {
	recs := []Record{
		{Timestamp: math.MaxInt64, Key: bytes.Repeat([]byte{1}, 70_000)},
		{Timestamp: math.MinInt64, Value: bytes.Repeat([]byte{2}, 200)}, // delta overflows and wraps back
		{Timestamp: -1, Headers: make([]Header, 300)},
	}
	for i := range recs[2].Headers {
		recs[2].Headers[i] = Header{Key: string(rune('a' + i%26)), Value: []byte{byte(i)}}
	}
	for _, c := range allCodecs {
		got, err := Records(mustBuild(t, recs, c))
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		equalRecords(t, got, withOffsets(recs, 0))
	}
}

func TestBuildBatchErrors(t *testing.T) {
	if _, err := BuildBatch(nil, CodecNone); !errors.Is(err, ErrEmpty) {
		t.Fatalf("no records: %v", err)
	}
	if _, err := BuildBatch(sampleRecords(1), 5); !errors.Is(err, ErrUnsupportedCodec) {
		t.Fatalf("codec 5: %v", err)
	}
	prefix := []byte("prefix")
	out, err := AppendBatch(prefix, nil, CodecNone)
	if err == nil || !bytes.Equal(out, prefix) {
		t.Fatalf("dst changed on error: %q %v", out, err)
	}
}

func TestAppendBatch(t *testing.T) {
	for _, c := range allCodecs {
		prefix := []byte("prefix")
		out, err := AppendBatch(slices.Clip(prefix), sampleRecords(20), c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("%v: prefix clobbered", c)
		}
		if _, err := Validate(out[len(prefix):]); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		// Appending into a buffer with room must not allocate for
		// uncompressed batches.
		if c == CodecNone && !raceEnabled {
			recs := sampleRecords(20)
			buf := make([]byte, 0, 64<<10)
			allocs := testing.AllocsPerRun(20, func() { buf, _ = AppendBatch(buf[:0], recs, CodecNone) })
			if allocs != 0 {
				t.Fatalf("AppendBatch allocates %v times", allocs)
			}
		}
	}
}

func TestAppendRecords(t *testing.T) {
	a, b := buildAt(t, 0, 3), buildAt(t, 3, 5)
	recs, err := AppendRecords(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	recs, err = AppendRecords(recs, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 8 || recs[7].Offset != 7 {
		t.Fatalf("got %d records, last offset %d", len(recs), recs[len(recs)-1].Offset)
	}
	before := slices.Clone(recs)
	bad := slices.Clone(b)
	bad[len(bad)-1] ^= 1
	recs2, err := AppendRecords(recs, bad)
	if !errors.Is(err, ErrBadCRC) || len(recs2) != len(before) {
		t.Fatalf("error path: %d records, %v", len(recs2), err)
	}
}

func TestRecordsAliasing(t *testing.T) {
	// Keys and values must not be able to grow into each other.
	b := mustBuild(t, []Record{{Key: []byte("ab"), Value: []byte("cd")}}, CodecNone)
	recs := must(Records(b))
	_ = append(recs[0].Key, 'X')
	if string(recs[0].Value) != "cd" {
		t.Fatal("appending to Key overwrote Value")
	}
}

// compressedBatch builds a batch whose records section is raw compressed
// by the test with an independent encoder, to check Records decodes what
// other producers send.
func compressedBatch(t *testing.T, recs []Record, c Codec, compressed func(raw []byte) []byte) []byte {
	t.Helper()
	plain := mustBuild(t, recs, CodecNone)
	b := append(slices.Clone(plain[:HeaderSize]), compressed(plain[HeaderSize:])...)
	put32(b, posBatchLength, int32(len(b)-12))
	put16(b, posAttributes, int16(c))
	return fixCRC(b)
}

func TestSnappyFramings(t *testing.T) {
	recs := sampleRecords(200)
	want := withOffsets(recs, 0)
	framings := map[string]func([]byte) []byte{
		"raw":           func(raw []byte) []byte { return snappy.Encode(nil, raw) },
		"xerial":        func(raw []byte) []byte { return xerial.Encode(nil, raw) },
		"xerial chunks": func(raw []byte) []byte { return xerialChunks(raw, 100) },
	}
	for name, fn := range framings {
		t.Run(name, func(t *testing.T) {
			b := compressedBatch(t, recs, CodecSnappy, fn)
			got, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			equalRecords(t, got, want)
		})
	}
	// Header only: no chunks, no records.
	empty := compressedBatch(t, recs[:1], CodecSnappy, func([]byte) []byte { return xerialChunks(nil, 1) })
	if _, err := Records(empty); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("empty xerial: %v", err)
	}
}

// xerialChunks frames raw as xerial snappy with chunks of at most size
// bytes, as the Java client does with 32 KiB.
func xerialChunks(raw []byte, size int) []byte {
	out := append(slices.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1)
	for len(raw) > 0 {
		n := min(size, len(raw))
		enc := snappy.Encode(nil, raw[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(enc)))
		out = append(out, enc...)
		raw = raw[n:]
	}
	return out
}

// TestKgoCodecs cross-checks compression with franz-go, a widely deployed
// client: its compressed batches decode here, and ours decode there.
func TestKgoCodecs(t *testing.T) {
	kcodec := map[Codec]kgo.CompressionCodec{
		CodecGzip: kgo.GzipCompression(), CodecSnappy: kgo.SnappyCompression(),
		CodecLZ4: kgo.Lz4Compression(), CodecZstd: kgo.ZstdCompression(),
	}
	recs := sampleRecords(300)
	plain := mustBuild(t, recs, CodecNone)
	raw := plain[HeaderSize:]
	dec := kgo.DefaultDecompressor()
	for c, kc := range kcodec {
		t.Run(c.String(), func(t *testing.T) {
			comp, err := kgo.DefaultCompressor(kc)
			if err != nil {
				t.Fatal(err)
			}
			b := compressedBatch(t, recs, c, func(raw []byte) []byte {
				out, typ := comp.Compress(new(bytes.Buffer), raw)
				if int(typ) != int(c) {
					t.Fatalf("kgo compressed with %v", typ)
				}
				return slices.Clone(out)
			})
			got, err := Records(b)
			if err != nil {
				t.Fatalf("kgo-compressed batch: %v", err)
			}
			equalRecords(t, got, withOffsets(recs, 0))

			ours := mustBuild(t, recs, c)
			out, err := dec.Decompress(ours[HeaderSize:], kgo.CompressionCodecType(c))
			if err != nil || !bytes.Equal(out, raw) {
				t.Fatalf("kgo cannot decompress our batch: %v", err)
			}
		})
	}
}

// TestKmsgCrossCheck checks the batch and record codecs against franz-go's
// kmsg, an independent implementation of the wire format.
func TestKmsgCrossCheck(t *testing.T) {
	// kmsg-built batch validates and decodes here.
	var records []byte
	var want []Record
	for i := range 5 {
		kr := kmsg.Record{
			TimestampDelta64: int64(i * 10), OffsetDelta: int32(i),
			Key: []byte{byte('a' + i)}, Value: bytes.Repeat([]byte{'v'}, i),
			Headers: []kmsg.Header{{Key: "h", Value: []byte{byte(i)}}},
		}
		if i == 2 {
			kr.Key = nil
		}
		body := kr.AppendTo(nil)
		kr.Length = int32(len(body) - 1) // Length=0 took one byte
		records = kr.AppendTo(records)
		r := Record{Offset: 100 + int64(i), Timestamp: 5000 + int64(i*10), Key: kr.Key, Value: kr.Value,
			Headers: []Header{{Key: "h", Value: []byte{byte(i)}}}}
		want = append(want, r)
	}
	kb := kmsg.RecordBatch{
		FirstOffset: 100, PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: 4,
		FirstTimestamp: 5000, MaxTimestamp: 5040, ProducerID: 7, ProducerEpoch: 1, FirstSequence: 0,
		NumRecords: 5, Records: records,
	}
	kb.Length = int32(HeaderSize - 12 + len(records))
	b := kb.AppendTo(nil)
	fixCRC(b)
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.ProducerID != 7 || h.ProducerEpoch != 1 || h.BaseSequence != 0 || h.LastOffset() != 104 {
		t.Fatalf("header %+v", h)
	}
	got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, got, want)

	// Our batch parses with kmsg, field by field.
	recs := sampleRecords(20)
	ours := mustBuild(t, recs, CodecNone)
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(ours); err != nil {
		t.Fatal(err)
	}
	if rb.Magic != 2 || int(rb.Length) != len(ours)-12 || rb.NumRecords != 20 || rb.LastOffsetDelta != 19 ||
		uint32(rb.CRC) != must(ParseHeader(ours)).CRC || rb.FirstTimestamp != recs[0].Timestamp {
		t.Fatalf("kmsg sees %+v", rb)
	}
	p := rb.Records
	for i := range recs {
		l, n := binary.Varint(p)
		var kr kmsg.Record
		if err := kr.ReadFrom(p[:n+int(l)]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		p = p[n+int(l):]
		if int(kr.OffsetDelta) != i || kr.TimestampDelta64 != recs[i].Timestamp-recs[0].Timestamp ||
			!sameBytes(kr.Key, recs[i].Key) || !sameBytes(kr.Value, recs[i].Value) || len(kr.Headers) != len(recs[i].Headers) {
			t.Fatalf("record %d: kmsg sees %+v", i, kr)
		}
		for j, hd := range kr.Headers {
			if hd.Key != recs[i].Headers[j].Key || !sameBytes(hd.Value, recs[i].Headers[j].Value) {
				t.Fatalf("record %d header %d: %+v", i, j, hd)
			}
		}
	}
	if len(p) != 0 {
		t.Fatalf("%d bytes left", len(p))
	}
}

func TestRecordsCorrupt(t *testing.T) {
	recs := sampleRecords(10)
	for _, c := range allCodecs[1:] {
		t.Run(c.String(), func(t *testing.T) {
			good := mustBuild(t, recs, c)
			tests := map[string][]byte{
				"garbage": compressedBatch(t, recs, c, func([]byte) []byte { return []byte("definitely not compressed data") }),
				"empty":   compressedBatch(t, recs, c, func([]byte) []byte { return nil }),
				"cut":     compressedBatch(t, recs, c, func([]byte) []byte { return slices.Clone(good[HeaderSize : len(good)-5]) }),
				// Valid compression of records that do not match the header.
				"count": patched(good, true, func(b []byte) {
					put32(b, posNumRecords, 11)
					put32(b, posLastDelta, 10)
				}),
				"trailing": compressedBatch(t, recs, c, func(raw []byte) []byte {
					return must(compress(nil, c, append(slices.Clone(raw), 0)))
				}),
			}
			for name, b := range tests {
				if _, err := Validate(b); err != nil {
					t.Fatalf("%s: Validate does not look inside compressed batches, yet: %v", name, err)
				}
				_, err := Records(b)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: %v", name, err)
				}
				checkSentinel(t, err)
			}
		})
	}
}

func TestHeaderCountBomb(t *testing.T) {
	// A record claiming 2^30 headers must fail before allocating them.
	b := mustBuild(t, []Record{{Value: []byte("v")}}, CodecNone)
	b = append(b[:len(b)-1], 0x80, 0x80, 0x80, 0x80, 0x08) // header count varint 2^30
	b[HeaderSize] += 8                                     // record length +4 (zigzag)
	put32(b, posBatchLength, int32(len(b)-12))
	fixCRC(b)
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := Records(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v", err)
		}
	})
	if allocs > 10 && !raceEnabled {
		t.Fatalf("%v allocations", allocs)
	}
}

func TestDecompressLimit(t *testing.T) {
	raw := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for _, c := range allCodecs[1:] {
		comp := must(compress(nil, c, raw))
		for _, limit := range []int{len(raw), len(raw) + 1} {
			out, err := decompress(c, comp, limit)
			if err != nil || !bytes.Equal(out, raw) {
				t.Fatalf("%v limit %d: %v", c, limit, err)
			}
		}
		for _, limit := range []int{0, 1, len(raw) - 1} {
			_, err := decompress(c, comp, limit)
			if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v limit %d: %v", c, limit, err)
			}
		}
	}
	xer := xerialChunks(raw, 1000)
	if _, err := decompress(CodecSnappy, xer, len(raw)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("xerial: %v", err)
	}
	if out, err := decompress(CodecSnappy, xer, len(raw)); err != nil || !bytes.Equal(out, raw) {
		t.Fatalf("xerial: %v", err)
	}
}

// TestDecompressionBomb checks the real limit end to end: a batch whose
// single value is one byte over MaxDecompressedSize compresses to a few KiB
// and must be rejected.
func TestDecompressionBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 64 MiB per codec")
	}
	codecs := allCodecs[1:]
	if raceEnabled {
		// gzip, lz4 and snappy share their limit checks with
		// TestDecompressLimit; zstd's decoder enforces its own.
		codecs = []Codec{CodecZstd}
	}
	value := make([]byte, MaxDecompressedSize)
	for _, c := range codecs {
		b := mustBuild(t, []Record{{Value: value}}, c)
		if len(b) > 4<<20 {
			t.Fatalf("%v: bomb is %d bytes", c, len(b))
		}
		if _, err := Validate(b); err != nil {
			t.Fatal(err)
		}
		if _, err := Records(b); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%v: %v", c, err)
		}
	}
	// A raw snappy block announcing too much fails before decoding.
	snappyBomb := binary.AppendUvarint(nil, MaxDecompressedSize+1)
	if _, err := decompress(CodecSnappy, append(snappyBomb, 0, 0, 0), MaxDecompressedSize); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("snappy length: %v", err)
	}
	if raceEnabled {
		return
	}
	// Just under the limit decodes.
	value = value[:MaxDecompressedSize-64]
	b := mustBuild(t, []Record{{Value: value}}, CodecZstd)
	if recs, err := Records(b); err != nil || len(recs[0].Value) != len(value) {
		t.Fatalf("under the limit: %v", err)
	}
}
