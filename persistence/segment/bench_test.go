package segment

import (
	"bytes"
	"fmt"
	"testing"
)

// batch16K builds a ~16 KiB batch of 100-byte values, a typical produce.
func batch16K(t testing.TB, c Codec) []byte {
	recs := make([]Record, 135)
	for i := range recs {
		recs[i] = Record{
			Timestamp: 1_700_000_000_000 + int64(i),
			Key:       []byte(fmt.Sprintf("user-%06d", i)),
			Value:     bytes.Repeat([]byte{'a' + byte(i%26)}, 100),
		}
	}
	b := mustBuild(t, recs, c)
	if c == CodecNone && (len(b) < 15<<10 || len(b) > 17<<10) {
		t.Fatalf("batch is %d bytes", len(b))
	}
	return b
}

func BenchmarkValidate(b *testing.B) {
	for _, c := range []Codec{CodecNone, CodecZstd} {
		batch := batch16K(b, c)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Validate(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSetBaseOffset(b *testing.B) {
	batch := batch16K(b, CodecNone)
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		SetBaseOffset(batch, off)
		off++
	}
}

func BenchmarkSetLogAppendTime(b *testing.B) {
	batch := batch16K(b, CodecNone)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	var ts int64
	for b.Loop() {
		SetLogAppendTime(batch, ts)
		ts++
	}
}

func BenchmarkRecords(b *testing.B) {
	for _, c := range allCodecs {
		batch := batch16K(b, c)
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			var recs []Record
			for b.Loop() {
				var err error
				if recs, err = AppendRecords(recs[:0], batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendBatch(b *testing.B) {
	recs := must(Records(batch16K(b, CodecNone)))
	for _, c := range allCodecs {
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = AppendBatch(buf[:0], recs, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
