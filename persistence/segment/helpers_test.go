package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// sampleRecords returns n records exercising every encoding corner: null and
// empty keys and values, headers with null values and duplicate keys,
// timestamps going backwards and far apart.
func sampleRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := Record{Timestamp: 1_700_000_000_000 + int64(i*37%11)*1000 - 5000}
		switch i % 4 {
		case 0:
			r.Key = []byte(fmt.Sprintf("key-%d", i))
			r.Value = bytes.Repeat([]byte{byte(i)}, i%300)
		case 1:
			r.Value = []byte{} // null key, empty value
		case 2:
			r.Key = []byte{} // empty key, null value
			r.Headers = []Header{{Key: "h", Value: nil}, {Key: "h", Value: []byte("dup")}}
		case 3:
			r.Key = []byte("k")
			r.Value = []byte(fmt.Sprintf("value %d", i))
			r.Headers = []Header{{Key: "", Value: []byte{}}, {Key: "trace-id", Value: []byte("abc")}}
		}
		recs[i] = r
	}
	return recs
}

func mustBuild(t testing.TB, recs []Record, c Codec) []byte {
	t.Helper()
	b, err := BuildBatch(recs, c)
	if err != nil {
		t.Fatalf("BuildBatch(%d records, %v): %v", len(recs), c, err)
	}
	return b
}

// buildAt builds an uncompressed batch of n sample records at base offset.
func buildAt(t testing.TB, base int64, n int) []byte {
	t.Helper()
	b := mustBuild(t, sampleRecords(n), CodecNone)
	SetBaseOffset(b, base)
	return b
}

// fixCRC recomputes the CRC of the batch at the start of b after a test
// tampered with covered fields.
func fixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[posCRC:], crc32.Checksum(b[posAttributes:], castagnoli))
	return b
}

// patched returns a copy of b with fn applied, CRC recomputed when fix is
// set.
func patched(b []byte, fix bool, fn func(b []byte)) []byte {
	c := slices.Clone(b)
	fn(c)
	if fix {
		fixCRC(c)
	}
	return c
}

func put16(b []byte, pos int, v int16) { binary.BigEndian.PutUint16(b[pos:], uint16(v)) }
func put32(b []byte, pos int, v int32) { binary.BigEndian.PutUint32(b[pos:], uint32(v)) }

// legacyMessage returns a v0 or v1 message set holding one message, as an
// old producer would send it: offset, size, CRC, magic, attributes,
// [timestamp,] key, value. Only the layout up to the magic matters here.
func legacyMessage(magic int8) []byte {
	var msg []byte
	msg = append(msg, 0, 0, 0, 0) // crc (not checked: magic is rejected first)
	msg = append(msg, byte(magic), 0)
	if magic == 1 {
		msg = binary.BigEndian.AppendUint64(msg, 1_700_000_000_000)
	}
	msg = binary.BigEndian.AppendUint32(msg, 0xFFFFFFFF) // null key
	msg = binary.BigEndian.AppendUint32(msg, 5)
	msg = append(msg, "hello"...)
	b := binary.BigEndian.AppendUint64(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

// sentinels lists every error the package's errors must wrap one of.
var sentinels = []error{ErrTruncated, ErrBadMagic, ErrBadCRC, ErrBadLength, ErrCorrupt, ErrTooLarge, ErrUnsupportedCodec, ErrEmpty, ErrOutOfOrder}

func checkSentinel(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %q wraps no sentinel", err)
}

// equalRecords compares records including the nil/empty distinction.
func equalRecords(t testing.TB, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || g.Timestamp != w.Timestamp {
			t.Fatalf("record %d: offset/timestamp %d/%d, want %d/%d", i, g.Offset, g.Timestamp, w.Offset, w.Timestamp)
		}
		if !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) {
			t.Fatalf("record %d: key/value %q/%q (nil %v/%v), want %q/%q (nil %v/%v)", i,
				g.Key, g.Value, g.Key == nil, g.Value == nil, w.Key, w.Value, w.Key == nil, w.Value == nil)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// withOffsets returns recs with Offset set to base+i, as Records reports
// them.
func withOffsets(recs []Record, base int64) []Record {
	out := slices.Clone(recs)
	for i := range out {
		out[i].Offset = base + int64(i)
	}
	return out
}
