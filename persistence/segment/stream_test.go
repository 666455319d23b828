package segment_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/morax-dev/morax/persistence/segment"
	"github.com/morax-dev/morax/persistence/segment/segmenttest"
)

// bombCase is one compression bomb: a batch of a few KB claiming one
// record of expands bytes.
type bombCase struct {
	name    string
	codec   segment.Codec
	xerial  bool
	records int32
	expands int64 // per record
}

// bombCases cover every codec. Raw snappy needs its whole input to be
// built, so its bomb is smaller (still 8 times the limit used below).
var bombCases = []bombCase{
	{"gzip", segment.CodecGzip, false, 1, 64 << 20},
	{"lz4", segment.CodecLZ4, false, 1, 64 << 20},
	{"zstd", segment.CodecZstd, false, 1, 64 << 20},
	{"snappy", segment.CodecSnappy, false, 1, 8 << 20},
	{"snappy-xerial", segment.CodecSnappy, true, 1, 64 << 20},
	// Records each within the limit, together far beyond it: the bound
	// is on the whole batch, found while reading.
	{"zstd-many-records", segment.CodecZstd, false, 256, 256 << 10},
	{"lz4-many-records", segment.CodecLZ4, false, 256, 256 << 10},
}

// TestValidateRecordsRefusesBombs: every codec's bomb is refused as
// ErrTooLarge at the limit, having allocated a small fraction of what it
// claims. The bound allows the limit plus the codec's own state, which
// does not grow with the claim: lz4 frames of 4 MiB blocks need two block
// buffers, a zstd window is at most the limit.
func TestValidateRecordsRefusesBombs(t *testing.T) {
	const limit = 1 << 20
	for _, bc := range bombCases {
		t.Run(bc.name, func(t *testing.T) {
			b, err := segmenttest.Bomb(bc.codec, bc.records, bc.expands, bc.xerial)
			if err != nil {
				t.Fatalf("build bomb: %v", err)
			}
			allocated := allocatedBy(func() { _, err = segment.ValidateRecords(b, limit) })
			if !errors.Is(err, segment.ErrTooLarge) {
				t.Fatalf("ValidateRecords of a %d-byte batch expanding to %d: %v, want ErrTooLarge", len(b), int64(bc.records)*bc.expands, err)
			}
			t.Logf("%d-byte batch claiming %d bytes: refused after allocating %d bytes (%v)", len(b), int64(bc.records)*bc.expands, allocated, err)
			if bound := uint64(2*limit + 8<<20); allocated > bound {
				t.Errorf("allocated %d bytes refusing it, want under %d", allocated, bound)
			}
			// Reading it back (data stored before appends were checked)
			// fails the same way, having passed on only the records
			// within the limit.
			n := 0
			err = segment.EachRecord(b, limit, func(*segment.Record) bool { n++; return true })
			if !errors.Is(err, segment.ErrTooLarge) || int64(n)*bc.expands > limit {
				t.Errorf("EachRecord: %d records, %v; want ErrTooLarge within the limit", n, err)
			}
			// Within a limit it fits, it is a valid batch.
			if total := int64(bc.records) * bc.expands; total <= 8<<20 {
				if _, err := segment.ValidateRecords(b, int(total)+1024*int(bc.records)); err != nil {
					t.Errorf("ValidateRecords with room for it: %v", err)
				}
			}
		})
	}
}

// allocatedBy is the bytes fn allocated on the heap.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestRecordCountMustMatch: a compressed batch claiming fewer or more
// records than it holds is corrupt (uncompressed ones already were).
func TestRecordCountMustMatch(t *testing.T) {
	recs := []segment.Record{{Value: []byte("a")}, {Value: []byte("b")}, {Value: []byte("c")}}
	for _, c := range []segment.Codec{segment.CodecNone, segment.CodecGzip, segment.CodecSnappy, segment.CodecLZ4, segment.CodecZstd} {
		b, err := segment.BuildBatch(recs, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, claim := range []int32{1, 2, 4, 100} {
			t.Run(fmt.Sprintf("%v/claims-%d-holds-3", c, claim), func(t *testing.T) {
				bad := segmenttest.Recount(b, claim)
				if _, err := segment.ValidateRecords(bad, 1<<20); !errors.Is(err, segment.ErrCorrupt) || errors.Is(err, segment.ErrTooLarge) {
					t.Errorf("ValidateRecords: %v, want ErrCorrupt", err)
				}
				if err := segment.EachRecord(bad, 1<<20, func(*segment.Record) bool { return true }); !errors.Is(err, segment.ErrCorrupt) {
					t.Errorf("EachRecord: %v, want ErrCorrupt", err)
				}
			})
		}
	}
}

// TestEachRecordMatchesRecords: streaming gives the records Records gives,
// for every codec, and stops when asked.
func TestEachRecordMatchesRecords(t *testing.T) {
	var recs []segment.Record
	for i := range 300 {
		recs = append(recs, segment.Record{
			Timestamp: int64(1000 + i),
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     bytes.Repeat([]byte{byte(i)}, i*37%5000),
			Headers:   []segment.Header{{Key: "h", Value: []byte("v")}},
		})
	}
	for _, c := range []segment.Codec{segment.CodecNone, segment.CodecGzip, segment.CodecSnappy, segment.CodecLZ4, segment.CodecZstd} {
		b, err := segment.BuildBatch(recs, c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := segment.Records(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := segment.ValidateRecords(b, 1<<20); err != nil {
			t.Errorf("%v: ValidateRecords: %v", c, err)
		}
		i := 0
		err = segment.EachRecord(b, 1<<20, func(r *segment.Record) bool {
			w := want[i]
			if r.Offset != w.Offset || r.Timestamp != w.Timestamp || !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) || len(r.Headers) != 1 {
				t.Errorf("%v: record %d differs", c, i)
			}
			i++
			return i < 100
		})
		if err != nil || i != 100 {
			t.Errorf("%v: EachRecord stopped after %d records: %v", c, i, err)
		}
		// A limit below the batch's records is ErrTooLarge.
		if _, err := segment.ValidateRecords(b, 64<<10); c != segment.CodecNone && !errors.Is(err, segment.ErrTooLarge) {
			t.Errorf("%v: ValidateRecords over the limit: %v", c, err)
		}
	}
}
