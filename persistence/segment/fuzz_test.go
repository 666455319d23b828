package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/klauspost/compress/snappy/xerial"
)

// seedBatches returns valid batches of every codec plus a few odd ones, as
// fuzz seeds.
func seedBatches(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, c := range allCodecs {
		seeds = append(seeds, mustBuild(t, sampleRecords(1), c), mustBuild(t, sampleRecords(7), c))
	}
	lat := mustBuild(t, sampleRecords(3), CodecLZ4)
	SetBaseOffset(lat, 1<<40)
	SetLogAppendTime(lat, 12345)
	seeds = append(seeds, lat, legacyMessage(0), legacyMessage(1))
	// Java-style xerial snappy.
	plain := mustBuild(t, sampleRecords(5), CodecNone)
	x := append(slices.Clone(plain[:HeaderSize]), xerial.Encode(nil, plain[HeaderSize:])...)
	put32(x, posBatchLength, int32(len(x)-12))
	put16(x, posAttributes, int16(CodecSnappy))
	seeds = append(seeds, fixCRC(x))
	return seeds
}

// checkBatch asserts the invariants between Validate, ParseHeader and
// Records on arbitrary input.
func checkBatch(t *testing.T, b []byte) {
	h, err := Validate(b)
	checkSentinel(t, err)
	hp, perr := ParseHeader(b)
	checkSentinel(t, perr)
	if perr != nil && err == nil {
		t.Fatalf("Validate accepted what ParseHeader rejects: %v", perr)
	}
	recs, rerr := Records(b)
	checkSentinel(t, rerr)
	if err != nil {
		if rerr == nil {
			t.Fatalf("Records accepted what Validate rejects: %v", err)
		}
		return
	}
	if hp != h || h.Size() != len(b) || h.NumRecords <= 0 || h.NumRecords != h.LastOffsetDelta+1 || !h.Compression().valid() {
		t.Fatalf("Validate accepted header %+v (ParseHeader %+v) for %d bytes", h, hp, len(b))
	}
	if h.Compression() == CodecNone && rerr != nil {
		t.Fatalf("Validate walked the records, yet Records fails: %v", rerr)
	}
	if rerr != nil {
		return
	}
	if len(recs) != int(h.NumRecords) {
		t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
	}
	for i, r := range recs {
		if r.Offset != h.BaseOffset+int64(i) {
			t.Fatalf("record %d offset %d, base %d", i, r.Offset, h.BaseOffset)
		}
		if h.LogAppendTime() && r.Timestamp != h.MaxTimestamp {
			t.Fatalf("record %d: timestamp %d in a log-append-time batch stamped %d", i, r.Timestamp, h.MaxTimestamp)
		}
	}
	// Re-encoding what was decoded gives the same records.
	rebuilt, err := BuildBatch(recs, CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	SetBaseOffset(rebuilt, h.BaseOffset)
	again, err := Records(rebuilt)
	if err != nil {
		t.Fatalf("rebuilt batch: %v", err)
	}
	equalRecords(t, again, recs)

	// The in-place setters keep a valid batch valid.
	c := slices.Clone(b)
	SetBaseOffset(c, h.BaseOffset^0x5555)
	SetPartitionLeaderEpoch(c, ^h.PartitionLeaderEpoch)
	SetLogAppendTime(c, h.MaxTimestamp+1)
	if _, err := Validate(c); err != nil {
		t.Fatalf("after setters: %v", err)
	}
}

// FuzzValidate feeds raw bytes to Validate, ParseHeader and Records. Random
// mutations rarely keep the CRC right, so this mostly exercises header
// checks; FuzzRecords goes deeper.
func FuzzValidate(f *testing.F) {
	for _, s := range seedBatches(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkBatch(t, b)
	})
}

// FuzzRecords fixes up the framing of its input (magic, length, CRC) before
// checking it, so the fuzzer reaches the record parser and decompressors
// instead of stopping at the CRC.
func FuzzRecords(f *testing.F) {
	for _, s := range seedBatches(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = slices.Clone(b) // the fuzzer's input must not be modified
		if len(b) >= HeaderSize {
			b[posMagic] = Magic
			binary.BigEndian.PutUint32(b[posBatchLength:], uint32(len(b)-lengthOverhead))
			fixCRC(b)
		}
		checkBatch(t, b)
	})
}

// FuzzBatches checks Batches, CompleteBatches and Slice agree on arbitrary
// input.
func FuzzBatches(f *testing.F) {
	seeds := seedBatches(f)
	seg := bytes.Join([][]byte{buildAt(f, 0, 3), buildAt(f, 3, 1), buildAt(f, 10, 5)}, nil)
	f.Add(seg, int64(4))
	f.Add(seg[:len(seg)-7], int64(11))
	f.Add(seg[:70], int64(0))
	f.Add(bytes.Join(seeds, nil), int64(-1))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, data []byte, from int64) {
		n, cerr := CompleteBatches(data)
		checkSentinel(t, cerr)
		if n < 0 || n > len(data) {
			t.Fatalf("CompleteBatches = %d of %d", n, len(data))
		}
		total := 0
		var berr error
		for batch, err := range Batches(data) {
			if err != nil {
				berr = err
				break
			}
			h, err := ParseHeader(batch)
			if err != nil || h.Size() != len(batch) || cap(batch) != len(batch) {
				t.Fatalf("yielded a bad batch: %v", err)
			}
			total += len(batch)
		}
		checkSentinel(t, berr)
		if total != n {
			t.Fatalf("Batches covers %d bytes, CompleteBatches %d", total, n)
		}
		switch {
		case berr == nil:
			if n != len(data) || cerr != nil {
				t.Fatalf("Batches read it all; CompleteBatches = %d of %d, %v", n, len(data), cerr)
			}
		case errors.Is(berr, ErrTruncated):
			if cerr != nil {
				t.Fatalf("partial tail: CompleteBatches says %v", cerr)
			}
		default:
			if cerr == nil {
				t.Fatalf("Batches fails with %v, CompleteBatches does not", berr)
			}
		}

		rest := Slice(data, from)
		skipped := len(data) - len(rest)
		if !bytes.Equal(rest, data[skipped:]) {
			t.Fatal("Slice did not return a suffix")
		}
		for batch, err := range Batches(data[:skipped]) {
			if err != nil {
				if len(rest) != 0 {
					t.Fatalf("Slice skipped a partial batch but returned %d bytes", len(rest))
				}
				break
			}
			if h := must(ParseHeader(batch)); h.LastOffset() >= from {
				t.Fatalf("Slice skipped batch %d-%d, from %d", h.BaseOffset, h.LastOffset(), from)
			}
		}
		if h, err := ParseHeader(rest); err == nil && h.LastOffset() < from {
			t.Fatalf("Slice stopped at batch %d-%d, from %d", h.BaseOffset, h.LastOffset(), from)
		}
	})
}

// FuzzDecompress throws arbitrary bytes at each decompressor under a small
// limit.
func FuzzDecompress(f *testing.F) {
	raw := mustBuild(f, sampleRecords(20), CodecNone)[HeaderSize:]
	for _, c := range allCodecs[1:] {
		f.Add(uint8(c), must(compress(nil, c, raw)))
	}
	f.Add(uint8(CodecSnappy), xerial.Encode(nil, raw))
	f.Add(uint8(CodecSnappy), xerialChunks(raw, 50))
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, codec uint8, data []byte) {
		c := Codec(codec%4 + 1)
		out, err := decompress(c, data, limit)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v: %v does not wrap ErrCorrupt", c, err)
			}
			return
		}
		if len(out) > limit {
			t.Fatalf("%v: %d bytes over the limit", c, len(out))
		}
	})
}

// FuzzDecodeIndex checks DecodeIndex never panics and only accepts indexes
// that are sorted, non-negative and round-trip.
func FuzzDecodeIndex(f *testing.F) {
	f.Add(EncodeIndex(nil))
	f.Add(EncodeIndex([]IndexEntry{{0, 0}}))
	f.Add(EncodeIndex([]IndexEntry{{5, 0}, {9, 4100}, {1000, 8300}, {1001, 1 << 33}}))
	f.Add([]byte{indexFormat, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := DecodeIndex(b)
		if err != nil {
			if idx != nil || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v, %v", idx, err)
			}
			return
		}
		for i, e := range idx {
			if e.Offset < 0 || e.Position < 0 || (i > 0 && (e.Offset <= idx[i-1].Offset || e.Position <= idx[i-1].Position)) {
				t.Fatalf("accepted entry %d %+v", i, e)
			}
		}
		again, err := DecodeIndex(EncodeIndex(idx))
		if err != nil || !slices.Equal(again, idx) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzIndexRoundTrip builds a valid index from the fuzz input and checks
// that it round-trips and that Lookup agrees with a linear scan.
func FuzzIndexRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, int64(0), int64(3))
	f.Add([]byte{0xff, 0xff, 0, 0, 7}, int64(1<<50), int64(1<<50+300))
	f.Fuzz(func(t *testing.T, deltas []byte, start, probe int64) {
		if start < 0 {
			start = -(start + 1)
		}
		var idx []IndexEntry
		off, pos := start, int64(0)
		for i := 0; i+1 < len(deltas); i += 2 {
			if len(idx) > 0 {
				off += int64(deltas[i]) + 1
				pos += int64(deltas[i+1])*37 + 1
			}
			if off < 0 {
				break // overflow: not a valid index
			}
			idx = append(idx, IndexEntry{Offset: off, Position: pos})
		}
		got, err := DecodeIndex(EncodeIndex(idx))
		if err != nil || !slices.Equal(got, idx) {
			t.Fatalf("round trip of %v: %v, %v", idx, got, err)
		}
		want := int64(0)
		for _, e := range idx {
			if e.Offset <= probe {
				want = e.Position
			}
		}
		if p := Lookup(idx, probe); p != want {
			t.Fatalf("Lookup(%d) = %d, want %d", probe, p, want)
		}
	})
}

// FuzzBuildBatch round-trips fuzzed records through every codec.
func FuzzBuildBatch(f *testing.F) {
	f.Add([]byte("key"), []byte("value"), "hdr", []byte("hv"), int64(1_700_000_000_000), int64(-5), uint8(3), uint8(0), uint8(0))
	f.Add([]byte{}, []byte{}, "", []byte{}, int64(-1), int64(1<<62), uint8(1), uint8(0xff), uint8(4))
	f.Fuzz(func(t *testing.T, key, value []byte, hk string, hv []byte, ts, tsStep int64, n, nils, codec uint8) {
		recs := make([]Record, int(n%16)+1)
		for i := range recs {
			r := Record{Timestamp: ts + int64(i)*tsStep, Key: key, Value: value}
			if nils&1 != 0 {
				r.Key = nil
			}
			if nils&2 != 0 {
				r.Value = nil
			}
			if nils&4 == 0 {
				h := Header{Key: hk, Value: hv}
				if nils&8 != 0 {
					h.Value = nil
				}
				r.Headers = []Header{h, h}
			}
			nils = nils>>1 | nils<<7
			recs[i] = r
		}
		c := Codec(codec % 5)
		b, err := BuildBatch(recs, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Validate(b); err != nil {
			t.Fatal(err)
		}
		got, err := Records(b)
		if err != nil {
			t.Fatal(err)
		}
		equalRecords(t, got, withOffsets(recs, 0))
	})
}
