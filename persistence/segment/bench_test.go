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

func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds allocations")
	}
	for _, c := range allCodecs {
		b := batch16K(t, c)
		if n := testing.AllocsPerRun(100, func() {
			if _, err := Validate(b); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Validate(%v) allocates %v times", c, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			SetBaseOffset(b, 77)
			SetPartitionLeaderEpoch(b, 3)
			SetLogAppendTime(b, 1)
		}); n != 0 {
			t.Errorf("setters allocate %v times", n)
		}
	}
	b := batch16K(t, CodecNone)
	// One allocation for the record slice; keys and values alias b.
	if n := testing.AllocsPerRun(100, func() { _, _ = Records(b) }); n != 1 {
		t.Errorf("Records allocates %v times", n)
	}
	// Append copies into a growing buffer: allocations are the buffer's
	// and the index's growth, nothing per batch.
	var bld Builder
	if n := testing.AllocsPerRun(20, func() {
		bld.Reset()
		for i := range 64 {
			SetBaseOffset(b, int64(i)*1000)
			if err := bld.Append(b); err != nil {
				t.Fatal(err)
			}
		}
	}); n >= 32 {
		t.Errorf("Builder allocates %v times for 64 batches", n)
	}
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
