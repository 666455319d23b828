//go:build !race

package segment

import (
	"bytes"
	"testing"
)

// The race detector adds allocations, so this file is built only without
// it; `task test` runs it in a separate pass without -race.

func TestHotPathAllocs(t *testing.T) {
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
	// Append keeps the batches it is given: allocations are the growth of
	// its list of them and of the index, nothing per batch; Bytes joins
	// them with one more.
	batches := make([][]byte, 64)
	for i := range batches {
		batches[i] = bytes.Clone(b)
		SetBaseOffset(batches[i], int64(i)*1000)
	}
	var bld Builder
	if n := testing.AllocsPerRun(20, func() {
		bld.Reset()
		for _, bt := range batches {
			if err := bld.Append(bt); err != nil {
				t.Fatal(err)
			}
		}
		_ = bld.Bytes()
	}); n >= 32 {
		t.Errorf("Builder allocates %v times for 64 batches", n)
	}
}
