package segment

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestParseHeader(t *testing.T) {
	good := mustBuild(t, sampleRecords(3), CodecNone)
	SetBaseOffset(good, 42)
	SetPartitionLeaderEpoch(good, 7)

	h, err := ParseHeader(good[:HeaderSize]) // needs only the header
	if err != nil {
		t.Fatal(err)
	}
	want := BatchHeader{
		BaseOffset: 42, BatchLength: int32(len(good) - 12), PartitionLeaderEpoch: 7, Magic: 2,
		CRC: h.CRC, Attributes: 0, LastOffsetDelta: 2,
		FirstTimestamp: sampleRecords(3)[0].Timestamp, MaxTimestamp: h.MaxTimestamp,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, NumRecords: 3,
	}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}
	if h.Size() != len(good) || h.LastOffset() != 44 {
		t.Fatalf("Size %d LastOffset %d", h.Size(), h.LastOffset())
	}

	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"16 bytes", good[:16], ErrTruncated},
		{"17 bytes", good[:17], ErrTruncated},
		{"60 bytes", good[:60], ErrTruncated},
		{"magic 0", legacyMessage(0), ErrBadMagic},
		{"magic 1", legacyMessage(1), ErrBadMagic},
		{"magic 1 short", legacyMessage(1)[:17], ErrBadMagic},
		{"magic 3", patched(good, false, func(b []byte) { b[posMagic] = 3 }), ErrBadMagic},
		{"length 48", patched(good, false, func(b []byte) { put32(b, posBatchLength, 48) }), ErrBadLength},
		{"length negative", patched(good, false, func(b []byte) { put32(b, posBatchLength, -1) }), ErrBadLength},
		{"length 49", patched(good, false, func(b []byte) { put32(b, posBatchLength, 49) }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHeader(tt.b)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHeaderAttributes(t *testing.T) {
	tests := []struct {
		attrs             int16
		codec             Codec
		lat, txn, control bool
	}{
		{0x00, CodecNone, false, false, false},
		{0x01, CodecGzip, false, false, false},
		{0x02, CodecSnappy, false, false, false},
		{0x03, CodecLZ4, false, false, false},
		{0x04, CodecZstd, false, false, false},
		{0x0C, CodecZstd, true, false, false},
		{0x10, CodecNone, false, true, false},
		{0x30, CodecNone, false, true, true},
		{0x5B, CodecLZ4, true, true, false}, // 0x40: delete horizon, ignored
	}
	for _, tt := range tests {
		h := BatchHeader{Attributes: tt.attrs}
		if h.Compression() != tt.codec || h.LogAppendTime() != tt.lat || h.Transactional() != tt.txn || h.Control() != tt.control {
			t.Errorf("attrs %#x: codec %v lat %v txn %v control %v", tt.attrs, h.Compression(), h.LogAppendTime(), h.Transactional(), h.Control())
		}
	}
	for _, c := range allCodecs {
		if c.String() == "" || !c.valid() {
			t.Errorf("codec %d", c)
		}
	}
	if Codec(5).valid() || Codec(5).String() != "codec(5)" {
		t.Error("codec 5 accepted")
	}
}

func TestValidate(t *testing.T) {
	good := mustBuild(t, sampleRecords(5), CodecNone)
	one := mustBuild(t, sampleRecords(1), CodecNone)
	type tc struct {
		name string
		b    []byte
		want error
	}
	tests := []tc{
		{"good", good, nil},
		{"one record", one, nil},
		{"base offset and epoch are not covered by the CRC", patched(good, false, func(b []byte) {
			SetBaseOffset(b, 1<<40)
			SetPartitionLeaderEpoch(b, 99)
		}), nil},
		{"truncated by one", good[:len(good)-1], ErrTruncated},
		{"header only", good[:HeaderSize], ErrTruncated},
		{"short header", good[:30], ErrTruncated},
		{"trailing byte", append(slices.Clone(good), 0), ErrBadLength},
		{"two batches", append(slices.Clone(good), good...), ErrBadLength},
		{"length too large", patched(good, false, func(b []byte) { put32(b, posBatchLength, int32(len(good))) }), ErrTruncated},
		{"length too small", patched(good, false, func(b []byte) { put32(b, posBatchLength, int32(len(good)-14)) }), ErrBadLength},
		{"length below header", patched(good, false, func(b []byte) { put32(b, posBatchLength, 10) }), ErrBadLength},
		{"magic 0", legacyMessage(0), ErrBadMagic},
		{"magic 1", legacyMessage(1), ErrBadMagic},
		{"bad CRC field", patched(good, false, func(b []byte) { b[posCRC] ^= 1 }), ErrBadCRC},
		{"record byte flipped", patched(good, false, func(b []byte) { b[len(b)-1] ^= 0x80 }), ErrBadCRC},
		{"attributes changed", patched(good, false, func(b []byte) { b[posAttributes+1] |= attrTransactional }), ErrBadCRC},
		{"zero records", patched(good, true, func(b []byte) {
			put32(b, posNumRecords, 0)
			put32(b, posLastDelta, -1)
		}), ErrCorrupt},
		{"negative records", patched(good, true, func(b []byte) {
			put32(b, posNumRecords, -1)
			put32(b, posLastDelta, -2)
		}), ErrCorrupt},
		{"count above last delta", patched(good, true, func(b []byte) { put32(b, posNumRecords, 6) }), ErrCorrupt},
		{"count below last delta", patched(good, true, func(b []byte) { put32(b, posLastDelta, 5) }), ErrCorrupt},
		{"fewer records than counted", patched(good, true, func(b []byte) {
			put32(b, posNumRecords, 6)
			put32(b, posLastDelta, 5)
		}), ErrCorrupt},
		{"more records than counted", patched(good, true, func(b []byte) {
			put32(b, posNumRecords, 4)
			put32(b, posLastDelta, 3)
		}), ErrCorrupt},
		{"huge record count", patched(good, true, func(b []byte) {
			put32(b, posNumRecords, 1<<30)
			put32(b, posLastDelta, 1<<30-1)
		}), ErrCorrupt},
		{"codec 5", patched(good, true, func(b []byte) { put16(b, posAttributes, 5) }), ErrUnsupportedCodec},
		{"codec 7", patched(good, true, func(b []byte) { put16(b, posAttributes, 7) }), ErrUnsupportedCodec},
		{"record length overruns", patched(one, true, func(b []byte) { b[HeaderSize] = 0x7E }), ErrCorrupt},
		{"record length too short", patched(one, true, func(b []byte) { b[HeaderSize] = 2 }), ErrCorrupt},
		{"record offset delta", patched(one, true, func(b []byte) { b[HeaderSize+3] = 2 }), ErrCorrupt},
	}
	// Uncompressed records with a bad header: null header key.
	badHeader := mustBuild(t, []Record{{Value: []byte("v"), Headers: []Header{{Key: "k"}}}}, CodecNone)
	// Record: len, attrs, ts, off, key(-1), value(1 'v'), count 1, key len 1 'k', value -1.
	if i := bytes.LastIndexByte(badHeader, 'k'); i > 0 {
		badHeader[i-1] = 1 // key length varint -1
		badHeader[i] = 1   // and a null value in place of 'k'; the record now ends early
		fixCRC(badHeader)
	}
	tests = append(tests, tc{"null header key", badHeader, ErrCorrupt})
	for _, c := range allCodecs[1:] {
		tests = append(tests, tc{"good " + c.String(), mustBuild(t, sampleRecords(50), c), nil})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Validate(tt.b)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if h.Size() != len(tt.b) || h.NumRecords != h.LastOffsetDelta+1 {
					t.Fatalf("header %+v", h)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			checkSentinel(t, err)
			// Records must reject whatever Validate rejects.
			if _, rerr := Records(tt.b); rerr == nil {
				t.Fatalf("Records accepted a batch Validate rejects (%v)", err)
			}
		})
	}
}

func TestValidateDistinguishesLegacy(t *testing.T) {
	// A v0/v1 message set must not be reported as corrupt: Kafka answers it
	// differently.
	for _, m := range []int8{0, 1} {
		_, err := Validate(legacyMessage(m))
		if !errors.Is(err, ErrBadMagic) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrBadCRC) {
			t.Fatalf("magic %d: %v", m, err)
		}
	}
}

func TestSetters(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			recs := sampleRecords(10)
			b := mustBuild(t, recs, c)
			crc := (must(ParseHeader(b))).CRC

			SetBaseOffset(b, 1000)
			SetPartitionLeaderEpoch(b, 3)
			h, err := Validate(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset != 1000 || h.PartitionLeaderEpoch != 3 || h.CRC != crc || h.LastOffset() != 1009 {
				t.Fatalf("after setters: %+v", h)
			}
			got, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			equalRecords(t, got, withOffsets(recs, 1000))

			// SetLogAppendTime changes covered fields and must recompute
			// the CRC, leaving FirstTimestamp alone like Kafka.
			const now = 1_800_000_000_000
			SetLogAppendTime(b, now)
			h2, err := Validate(b)
			if err != nil {
				t.Fatal(err)
			}
			if !h2.LogAppendTime() || h2.MaxTimestamp != now || h2.FirstTimestamp != h.FirstTimestamp ||
				h2.CRC == crc || h2.Compression() != c {
				t.Fatalf("after SetLogAppendTime: %+v", h2)
			}
			got, err = Records(b)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if got[i].Timestamp != now {
					t.Fatalf("record %d timestamp %d, want log append time", i, got[i].Timestamp)
				}
			}
			// Idempotent, and a later time restamps.
			SetLogAppendTime(b, now)
			SetLogAppendTime(b, now+1)
			if h3, err := Validate(b); err != nil || h3.MaxTimestamp != now+1 {
				t.Fatalf("restamp: %+v %v", h3, err)
			}
		})
	}
}

func TestSetLogAppendTimeInSegment(t *testing.T) {
	// The batch may be followed by others: only its own bytes are covered.
	a, b := buildAt(t, 0, 3), buildAt(t, 3, 4)
	seg := append(slices.Clone(a), b...)
	SetLogAppendTime(seg, 5)
	if _, err := Validate(seg[:len(a)]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seg[len(a):], b) {
		t.Fatal("next batch modified")
	}
}

func TestSettersPanicOnShortInput(t *testing.T) {
	for name, fn := range map[string]func(){
		"SetBaseOffset":           func() { SetBaseOffset(make([]byte, 7), 1) },
		"SetPartitionLeaderEpoch": func() { SetPartitionLeaderEpoch(make([]byte, 15), 1) },
		"SetLogAppendTime":        func() { SetLogAppendTime(make([]byte, 30), 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			fn()
		}()
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// threeBatches returns a segment of batches at offsets 0-1, 2-4 and 5-8.
func threeBatches(t *testing.T) (seg []byte, batches [][]byte) {
	batches = [][]byte{buildAt(t, 0, 2), buildAt(t, 2, 3), buildAt(t, 5, 4)}
	return bytes.Join(batches, nil), batches
}

func TestBatches(t *testing.T) {
	seg, batches := threeBatches(t)
	collect := func(b []byte) (got [][]byte, err error) {
		for batch, err := range Batches(b) {
			if err != nil {
				return got, err
			}
			got = append(got, batch)
		}
		return got, nil
	}

	got, err := collect(seg)
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d batches, %v", len(got), err)
	}
	for i := range got {
		if !bytes.Equal(got[i], batches[i]) || cap(got[i]) != len(got[i]) {
			t.Fatalf("batch %d differs or has spare capacity", i)
		}
	}
	if got, err := collect(nil); len(got) != 0 || err != nil {
		t.Fatalf("empty: %d %v", len(got), err)
	}
	for _, cut := range []int{1, 16, 17, 60, 61, len(batches[2]) - 1} {
		got, err := collect(seg[:len(seg)-len(batches[2])+cut])
		if len(got) != 2 || !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut %d: %d batches, %v", cut, len(got), err)
		}
	}
	garbage := append(slices.Clone(seg[:len(batches[0])]), legacyMessage(1)...)
	if got, err := collect(garbage); len(got) != 1 || !errors.Is(err, ErrBadMagic) {
		t.Fatalf("garbage: %d batches, %v", len(got), err)
	}
	// Stopping early, and iterating twice.
	seq := Batches(seg)
	for range 2 {
		n := 0
		for range seq {
			n++
			break
		}
		if n != 1 {
			t.Fatal("break did not stop")
		}
	}
}

func TestCompleteBatches(t *testing.T) {
	seg, batches := threeBatches(t)
	last := len(seg) - len(batches[2])
	tests := []struct {
		name    string
		b       []byte
		n       int
		wantErr error
	}{
		{"empty", nil, 0, nil},
		{"whole", seg, len(seg), nil},
		{"one byte", seg[:1], 0, nil},
		{"first header", seg[:HeaderSize], 0, nil},
		{"tail 1", seg[:last+1], last, nil},
		{"tail 17", seg[:last+17], last, nil},
		{"tail header", seg[:last+HeaderSize], last, nil},
		{"tail minus one", seg[:len(seg)-1], last, nil},
		{"bad magic after first", append(slices.Clone(batches[0]), legacyMessage(0)...), len(batches[0]), ErrBadMagic},
		{"bad length after first", append(slices.Clone(batches[0]), patched(batches[1], false, func(b []byte) { put32(b, posBatchLength, 3) })...), len(batches[0]), ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := CompleteBatches(tt.b)
			if n != tt.n || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("got %d, %v; want %d, %v", n, err, tt.n, tt.wantErr)
			}
		})
	}
}

func TestSlice(t *testing.T) {
	seg, batches := threeBatches(t)
	l0, l1 := len(batches[0]), len(batches[1])
	tests := []struct {
		name string
		seg  []byte
		from int64
		skip int // bytes skipped
	}{
		{"before start", seg, -5, 0},
		{"first offset", seg, 0, 0},
		{"inside first", seg, 1, 0},
		{"second batch start", seg, 2, l0},
		{"inside second", seg, 4, l0},
		{"last batch", seg, 5, l0 + l1},
		{"last offset", seg, 8, l0 + l1},
		{"past end", seg, 9, len(seg)},
		{"empty", nil, 3, 0},
		{"partial batch below from", seg[:l0+HeaderSize+5], 5, l0 + HeaderSize + 5},
		{"partial batch at from", seg[:l0+HeaderSize+5], 4, l0},
		{"partial header is kept", seg[:l0+10], 2, l0},
		{"partial header below from", seg[:l0+HeaderSize-1], 5, l0},
		{"garbage stops", append(slices.Clone(batches[0]), 1, 2, 3), 9, l0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Slice(tt.seg, tt.from)
			if !bytes.Equal(got, tt.seg[tt.skip:]) {
				t.Fatalf("skipped %d bytes, want %d", len(tt.seg)-len(got), tt.skip)
			}
		})
	}
}
