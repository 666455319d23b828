package segment

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestBuilder(t *testing.T) {
	var b Builder
	if b.Len() != 0 || b.BaseOffset() != -1 || b.EndOffset() != -1 || b.MaxTimestamp() != -1 || len(b.Index()) != 0 {
		t.Fatal("empty builder")
	}
	var want []byte
	var maxTs int64 = -1 << 63
	off := int64(500)
	for i := range 40 {
		n := 1 + i%7
		batch := buildAt(t, off, n)
		if i == 10 {
			SetLogAppendTime(batch, 1_900_000_000_000)
		}
		if err := b.Append(batch); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		want = append(want, batch...)
		maxTs = max(maxTs, must(ParseHeader(batch)).MaxTimestamp)
		off += int64(n)
		if i == 20 {
			off += 3 // offsets may skip
		}
	}
	if !bytes.Equal(b.Bytes(), want) || b.Len() != len(want) {
		t.Fatal("bytes differ")
	}
	if b.BaseOffset() != 500 || b.EndOffset() != off || b.MaxTimestamp() != maxTs || maxTs != 1_900_000_000_000 {
		t.Fatalf("offsets %d-%d max ts %d", b.BaseOffset(), b.EndOffset(), b.MaxTimestamp())
	}
	checkIndex(t, b.Bytes(), b.Index(), DefaultIndexInterval)

	// Out of order, overlapping, malformed.
	for name, tc := range map[string]struct {
		batch []byte
		want  error
	}{
		"before end":  {buildAt(t, off-1, 1), ErrOutOfOrder},
		"way before":  {buildAt(t, 0, 1), ErrOutOfOrder},
		"two batches": {append(buildAt(t, off, 1), buildAt(t, off+1, 1)...), ErrBadLength},
		"truncated":   {buildAt(t, off, 2)[:70], ErrBadLength},
		"legacy":      {legacyMessage(1), ErrBadMagic},
		"empty":       {nil, ErrTruncated},
		"negative delta": {patched(buildAt(t, off, 1), true, func(b []byte) {
			put32(b, posLastDelta, -1)
		}), ErrCorrupt},
	} {
		if err := b.Append(tc.batch); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatal("failed Append changed the segment")
	}

	// Reset lets go of the buffers: what was handed out stays intact.
	b.IndexInterval = 100
	bytesBefore, indexBefore := b.Bytes(), slices.Clone(b.Index())
	idx := b.Index()
	b.Reset()
	if b.Len() != 0 || b.BaseOffset() != -1 || b.EndOffset() != -1 || len(b.Index()) != 0 || b.IndexInterval != 100 {
		t.Fatal("Reset")
	}
	if err := b.Append(buildAt(t, 3, 2)); err != nil { // any offset after Reset
		t.Fatal(err)
	}
	if !bytes.Equal(bytesBefore, want) || !slices.Equal(idx, indexBefore) {
		t.Fatal("Reset reused handed-out memory")
	}
}

// checkIndex verifies idx against the index rule by walking seg.
func checkIndex(t *testing.T, seg []byte, idx []IndexEntry, interval int) {
	t.Helper()
	var want []IndexEntry
	pos := 0
	for batch, err := range Batches(seg) {
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 || int64(pos)-want[len(want)-1].Position >= int64(interval) {
			want = append(want, IndexEntry{Offset: must(ParseHeader(batch)).BaseOffset, Position: int64(pos)})
		}
		pos += len(batch)
	}
	if !slices.Equal(idx, want) {
		t.Fatalf("index\n got %v\nwant %v", idx, want)
	}
}

func TestBuilderIndexInterval(t *testing.T) {
	batches := make([][]byte, 20)
	off := int64(0)
	for i := range batches {
		batches[i] = buildAt(t, off, 1+i%3)
		off += int64(1 + i%3)
	}
	total := len(bytes.Join(batches, nil))
	for _, tt := range []struct {
		interval, entries int
	}{
		{1, 20},
		{len(batches[0]), 20}, // every batch is at least this far from the last
		{total, 1},            // only the first
		{0, -1},               // default
		{-5, -1},              // default
		{3 * len(batches[0]), -1},
	} {
		b := Builder{IndexInterval: tt.interval}
		for _, batch := range batches {
			if err := b.Append(batch); err != nil {
				t.Fatal(err)
			}
		}
		interval := tt.interval
		if interval <= 0 {
			interval = DefaultIndexInterval
		}
		checkIndex(t, b.Bytes(), b.Index(), interval)
		if tt.entries >= 0 && len(b.Index()) != tt.entries {
			t.Fatalf("interval %d: %d entries, want %d", tt.interval, len(b.Index()), tt.entries)
		}
	}
}

func TestLookup(t *testing.T) {
	idx := []IndexEntry{{10, 0}, {20, 4096}, {35, 9000}}
	tests := []struct {
		index  []IndexEntry
		offset int64
		want   int64
	}{
		{nil, 5, 0},
		{idx, 0, 0},
		{idx, 9, 0},
		{idx, 10, 0},
		{idx, 19, 0},
		{idx, 20, 4096},
		{idx, 34, 4096},
		{idx, 35, 9000},
		{idx, 1 << 60, 9000},
		{idx[:1], 50, 0},
	}
	for _, tt := range tests {
		if got := Lookup(tt.index, tt.offset); got != tt.want {
			t.Errorf("Lookup(%v, %d) = %d, want %d", tt.index, tt.offset, got, tt.want)
		}
	}
}

// TestLookupSlice is the ranged-read path end to end: index lookup, ranged
// "GET" of a window, CompleteBatches, Slice; the first batch returned holds
// the offset asked for.
func TestLookupSlice(t *testing.T) {
	b := Builder{IndexInterval: 1000}
	off := int64(0)
	for i := range 60 {
		if err := b.Append(buildAt(t, off, 1+i%9)); err != nil {
			t.Fatal(err)
		}
		off += int64(1 + i%9)
	}
	seg, idx := b.Bytes(), must(DecodeIndex(EncodeIndex(b.Index())))
	for o := range b.EndOffset() {
		pos := Lookup(idx, o)
		window := seg[pos:min(int(pos)+3000, len(seg))]
		n, err := CompleteBatches(window)
		if err != nil {
			t.Fatal(err)
		}
		rest := Slice(window[:n], o)
		h, err := ParseHeader(rest)
		if err != nil {
			t.Fatalf("offset %d: %v", o, err)
		}
		if h.BaseOffset > o || h.LastOffset() < o {
			t.Fatalf("offset %d: got batch %d-%d", o, h.BaseOffset, h.LastOffset())
		}
	}
}

func TestIndexEncoding(t *testing.T) {
	for _, idx := range [][]IndexEntry{
		nil,
		{{0, 0}},
		{{1 << 62, 1 << 40}},
		{{5, 0}, {9, 4100}, {1000, 8300}, {1001, 1 << 33}},
	} {
		enc := EncodeIndex(idx)
		got, err := DecodeIndex(enc)
		if err != nil || !slices.Equal(got, idx) {
			t.Fatalf("%v: got %v, %v", idx, got, err)
		}
	}
	// Compactness: a realistic index costs a few bytes per entry.
	idx := make([]IndexEntry, 1000)
	for i := range idx {
		idx[i] = IndexEntry{Offset: 1_000_000 + int64(i)*37, Position: int64(i) * 4200}
	}
	if n := len(EncodeIndex(idx)); n > 4*len(idx)+16 {
		t.Fatalf("%d bytes for %d entries", n, len(idx))
	}

	good := EncodeIndex([]IndexEntry{{5, 0}, {9, 100}})
	tests := map[string][]byte{
		"empty":              nil,
		"format 0":           {0, 0},
		"format 2":           append([]byte{2}, good[1:]...),
		"no count":           {indexFormat},
		"count varint cut":   {indexFormat, 0x80},
		"count too large":    {indexFormat, 3, 2, 0, 2, 2},
		"huge count":         {indexFormat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0},
		"truncated":          good[:len(good)-1],
		"trailing":           append(slices.Clone(good), 0),
		"zero count trailer": {indexFormat, 0, 1},
		"negative offset":    EncodeIndex([]IndexEntry{{-1, 0}}),
		"negative position":  EncodeIndex([]IndexEntry{{1, -1}}),
		"equal offsets":      EncodeIndex([]IndexEntry{{5, 0}, {5, 100}}),
		"equal positions":    EncodeIndex([]IndexEntry{{5, 0}, {6, 0}}),
		"descending":         EncodeIndex([]IndexEntry{{5, 0}, {9, 100}, {7, 200}}),
		"varint overflow":    {indexFormat, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0},
	}
	for name, b := range tests {
		if idx, err := DecodeIndex(b); !errors.Is(err, ErrCorrupt) || idx != nil {
			t.Errorf("%s: %v, %v", name, idx, err)
		}
	}
}
