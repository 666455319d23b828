package metasql

import (
	"errors"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/morax-dev/morax/persistence/meta"
)

func TestBatchesRoundTrip(t *testing.T) {
	for _, bs := range [][]meta.ProducerBatch{
		nil,
		{{FirstSeq: 0, LastSeq: 4, BaseOffset: 10, LastOffset: 14, Timestamp: 1_700_000_000_000}},
		{{FirstSeq: -1, LastSeq: 1 << 30, BaseOffset: -5, LastOffset: 1 << 62, Timestamp: -1}, {}},
	} {
		got, err := DecodeBatches(EncodeBatches(bs))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(bs) || (len(bs) > 0 && !slices.Equal(got, bs)) {
			t.Fatalf("round trip of %+v gave %+v", bs, got)
		}
	}
	for _, bad := range [][]byte{nil, {}, {2}, {1, 0}, append(EncodeBatches([]meta.ProducerBatch{{}}), 0)} {
		if _, err := DecodeBatches(bad); err == nil {
			t.Errorf("DecodeBatches(%v) accepted", bad)
		}
	}
}

func FuzzDecodeBatches(f *testing.F) {
	f.Add(EncodeBatches([]meta.ProducerBatch{{FirstSeq: 1, LastSeq: 2}}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := DecodeBatches(b)
		if err != nil {
			return
		}
		if again := EncodeBatches(bs); string(again) != string(b) {
			t.Fatalf("decode then encode changed %x to %x", b, again)
		}
	})
}

func TestConfig(t *testing.T) {
	b, err := EncodeConfig(nil)
	if err != nil || string(b) != "{}" {
		t.Fatalf("EncodeConfig(nil) = %s, %v", b, err)
	}
	in := map[string]string{"retention.ms": "1", "x": `"quoted"`}
	b, err = EncodeConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeConfig(b)
	if err != nil || len(out) != 2 || out["x"] != in["x"] {
		t.Fatalf("DecodeConfig = %v, %v", out, err)
	}
	if out, err := DecodeConfig(nil); err != nil || out == nil || len(out) != 0 {
		t.Fatalf("DecodeConfig(nil) = %v, %v", out, err)
	}
	if _, err := DecodeConfig([]byte("[1]")); err == nil {
		t.Fatal("DecodeConfig accepted an array")
	}
}

func TestPrefixEnd(t *testing.T) {
	for prefix, want := range map[string]string{
		"a":          "b",
		"p/":         "p0",
		"a\xff":      "b",
		"ab\xff\xff": "ac",
		"é":          "\xc3\xaa",
	} {
		if got, ok := PrefixEnd(prefix); !ok || got != want {
			t.Errorf("PrefixEnd(%q) = %q, %v; want %q", prefix, got, ok, want)
		}
	}
	for _, prefix := range []string{"", "\xff", "\xff\xff"} {
		if _, ok := PrefixEnd(prefix); ok {
			t.Errorf("PrefixEnd(%q) has an end", prefix)
		}
	}
}

func TestValidateCommit(t *testing.T) {
	ok := meta.FlushCommit{Owner: "n1", Segment: meta.Segment{BaseOffset: 0, EndOffset: 1, ObjectKey: "k"}}
	if err := ValidateCommit(ok); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.Segment.Size = -1
	if err := ValidateCommit(bad); !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("negative size: %v", err)
	}
}

func TestDedupe(t *testing.T) {
	ps := DedupeProducers([]meta.ProducerState{{ProducerID: 1, LastUpdate: 1}, {ProducerID: 2}, {ProducerID: 1, LastUpdate: 2}})
	if len(ps) != 2 || ps[0].ProducerID != 2 || ps[1].LastUpdate != 2 {
		t.Fatalf("DedupeProducers = %+v", ps)
	}
	os := DedupeOffsets([]meta.OffsetCommit{{Topic: "a", Offset: 1}, {Topic: "a", Partition: 1}, {Topic: "a", Offset: 2}})
	if len(os) != 2 || os[0].Partition != 1 || os[1].Offset != 2 {
		t.Fatalf("DedupeOffsets = %+v", os)
	}
}

func TestLoadMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_more.sql": {Data: []byte("B")},
		"m/0001_init.sql": {Data: []byte("A")},
		"m/README":        {Data: []byte("not a migration")},
	}
	ms, err := LoadMigrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 1 || ms[0].SQL != "A" || ms[1].Name != "0002_more.sql" {
		t.Fatalf("migrations: %+v", ms)
	}
	pending, err := Pending(ms, []int{1})
	if err != nil || len(pending) != 1 || pending[0].Version != 2 {
		t.Fatalf("Pending: %+v, %v", pending, err)
	}
	if _, err := Pending(ms, []int{1, 2, 3}); err == nil {
		t.Fatalf("Pending with a newer schema: %v", err)
	}
	for name, fs := range map[string]fstest.MapFS{
		"gap":       {"m/0001_a.sql": {}, "m/0003_c.sql": {}},
		"duplicate": {"m/0001_a.sql": {}, "m/0001_b.sql": {}},
		"no number": {"m/init.sql": {}},
		"empty":     {"m/x.txt": {}},
	} {
		if _, err := LoadMigrations(fs, "m"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestValidateCommits(t *testing.T) {
	a := meta.FlushCommit{Owner: "n1", Segment: meta.Segment{BaseOffset: 0, EndOffset: 1, ObjectKey: "k"}}
	b := a
	b.Segment.Partition, b.Segment.Position = 1, 10
	if err := ValidateCommits([]meta.FlushCommit{a, b}); err != nil {
		t.Fatal(err)
	}
	neg := b
	neg.Segment.Position = -1
	over := b
	over.Segment.Position, over.Segment.Size = 1<<62, 1<<62
	dup := b
	dup.Segment.Position = 0
	for name, cs := range map[string][]meta.FlushCommit{
		"none":              nil,
		"negative position": {a, neg},
		"end overflows":     {over},
		"same slice twice":  {a, dup},
	} {
		if err := ValidateCommits(cs); !errors.Is(err, meta.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestUniqueKeys(t *testing.T) {
	in := []string{"b", "a", "b", "c", "a"}
	if got := UniqueKeys(in); !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Fatalf("UniqueKeys = %q", got)
	}
	if !slices.Equal(in, []string{"b", "a", "b", "c", "a"}) {
		t.Fatalf("UniqueKeys changed its argument: %q", in)
	}
	if got := UniqueKeys(nil); len(got) != 0 {
		t.Fatalf("UniqueKeys(nil) = %q", got)
	}
}
