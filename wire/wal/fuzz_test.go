package wal

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
)

// seedBodies are request bodies every JSON decoder's fuzz target starts
// from: the original protocol's, the additive fields, and known bad ones.
var seedBodies = []string{
	`{"name": "db_log", "properties": {"storage": {"scheme": "s3", "bucket": "b", "region": "r", "endpoint": "http://e", "access_key_id": "a", "secret_access_key": "s"}}}`,
	`{"name": "db_log", "properties": {"config": {"retention.ms": "1"}}}`,
	`{"name": "db_log", "entries": [{"data": "MA=="}, {"data": "MQ=="}]}`,
	`{"name": "db_log", "entries": [{"data": "MA==", "key": "a2V5"}], "expected_offset": 2, "partition": 1}`,
	`{"name": "db_log", "offset": 0}`,
	`{"name": "db_log", "offset": 3, "max_entries": 10, "max_bytes": 100, "wait_ms": 1000, "partition": 0}`,
	`{"name": "db_log", "offset": "0"}`,
	`{"name": "db_log", "entries": [{"data": "not base64"}]}`,
	`{"name": 1}`, `[]`, `null`, `{`, ``, `{"name":"a","offset":-1}`,
	`{"name":"a","offset":9223372036854775807,"max_bytes":99999999999999}`,
}

func addSeeds(f *testing.F) {
	for _, s := range seedBodies {
		f.Add([]byte(s))
	}
}

// checkDecodeErr: every decoder error is an InvalidArgument.
func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, actors.ErrInvalidArgument) {
		t.Fatalf("decoder error %v does not wrap ErrInvalidArgument", err)
	}
}

func FuzzDecodeCreate(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeCreate(body)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if checkName(r.Name) != nil {
			t.Fatalf("accepted invalid name %q", r.Name)
		}
	})
}

func FuzzDecodeAppend(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		r, err := decodeAppend(body)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if checkName(r.Name) != nil || len(r.Entries) == 0 || r.ExpectedOffset < -1 || r.Partition < 0 {
			t.Fatalf("accepted out-of-domain request %+v", r)
		}
		// The decoded entries share no memory with the body: scribbling on
		// it (as fasthttp does when it reuses the buffer) changes nothing.
		before := make([][]byte, len(r.Entries))
		for i, e := range r.Entries {
			if e.Data == nil {
				t.Fatalf("entry %d has nil data; empty entries must be non-nil", i)
			}
			before[i] = bytes.Clone(e.Data)
		}
		for i := range body {
			body[i] = 'X'
		}
		for i, e := range r.Entries {
			if !bytes.Equal(e.Data, before[i]) {
				t.Fatalf("entry %d aliases the request buffer", i)
			}
		}
		copy(body, orig)
		// The entries encode into batches that decode to the same values.
		batches, err := buildBatches(r.Entries, 1, 4096)
		if errors.Is(err, actors.ErrMessageTooLarge) {
			return
		}
		if err != nil {
			t.Fatalf("buildBatches: %v", err)
		}
		var got [][]byte
		err = eachRecord(batches, 0, segment.MaxDecompressedSize, func(rec *segment.Record) bool {
			got = append(got, bytes.Clone(rec.Value))
			return true
		}, func(int64) {})
		if err != nil {
			t.Fatalf("decode built batches: %v", err)
		}
		if len(got) != len(r.Entries) {
			t.Fatalf("%d records for %d entries", len(got), len(r.Entries))
		}
		for i := range got {
			if !bytes.Equal(got[i], r.Entries[i].Data) {
				t.Fatalf("record %d: %q, entry %q", i, got[i], r.Entries[i].Data)
			}
		}
	})
}

func FuzzDecodeRead(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRead(body)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if checkName(r.Name) != nil || r.Offset < 0 || r.MaxEntries < 0 || r.MaxBytes < 0 || r.WaitMs < 0 || r.Partition < 0 {
			t.Fatalf("accepted out-of-domain request %+v", r)
		}
	})
}

func FuzzDecodeTrim(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeTrim(body)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if checkName(r.Name) != nil || r.Offset < 0 || r.Partition < 0 {
			t.Fatalf("accepted out-of-domain request %+v", r)
		}
	})
}

func FuzzDecodeQueries(f *testing.F) {
	for _, s := range []string{"prefix=a&after=b&limit=10&kind=all", "limit=0", "limit=x", "kind=kafka", "offset=5&partition=2",
		"offset=-1", "partition=99999999999", "offset=%zz", "", "limit=1001"} {
		f.Add(s, "")
		f.Add(s, "41")
	}
	f.Add("", "9223372036854775807")
	f.Fuzz(func(t *testing.T, query, lastEventID string) {
		var args fasthttp.Args
		args.Parse(query)
		l, err := decodeList(&args)
		checkDecodeErr(t, err)
		if err == nil && (l.Limit < 1 || l.Limit > maxListLimit || (l.Kind != "wal" && l.Kind != "kafka" && l.Kind != "all")) {
			t.Fatalf("list query accepted out of domain: %+v", l)
		}
		q, err := decodeTail(&args, []byte(lastEventID))
		checkDecodeErr(t, err)
		if err == nil && (q.Offset < -1 || q.Partition < 0) {
			t.Fatalf("tail query accepted out of domain: %+v", q)
		}
		p, err := decodePartitionQuery(&args)
		checkDecodeErr(t, err)
		if err == nil && p < 0 {
			t.Fatalf("negative partition %d", p)
		}
	})
}

// FuzzAppendJSONString checks the hand-written JSON string encoder against
// encoding/json's decoder.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quo"te\`, "\x00\x1f\n\t", "<&>", "\u2028\u2029", "\xff\xfe", "é漢字🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, enc, err)
		}
		// encoding/json replaces invalid UTF-8 the same way.
		ref, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q round-trips to %q, encoding/json's to %q", s, got, want)
		}
	})
}

// TestBuildBatchesSplits checks that a large append is split into batches
// within max.message.bytes, and an entry too large alone is refused.
func TestBuildBatchesSplits(t *testing.T) {
	entries := make([]appendEntry, 100)
	for i := range entries {
		entries[i].Data = bytes.Repeat([]byte{byte(i)}, 1000)
	}
	const limit = 10_000
	batches, err := buildBatches(entries, 1, limit)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rest := batches; len(rest) > 0; n++ {
		h, err := segment.ParseHeader(rest)
		if err != nil {
			t.Fatal(err)
		}
		if h.Size() > limit {
			t.Fatalf("batch of %d bytes over the %d limit", h.Size(), limit)
		}
		rest = rest[h.Size():]
	}
	if n < 10 || n > 12 {
		t.Errorf("%d batches for 100 KB at a 10 KB limit", n)
	}
	_, err = buildBatches([]appendEntry{{Data: make([]byte, limit)}}, 1, limit)
	if !errors.Is(err, actors.ErrMessageTooLarge) {
		t.Fatalf("oversized entry: %v", err)
	}
}

// FuzzFastAppend checks the append fast path against encoding/json: on
// every body it accepts, the request (or the refusal) is the same.
func FuzzFastAppend(f *testing.F) {
	addSeeds(f)
	for _, s := range []string{
		`{"name":"a","entries":[{"data":"MA==","key":null},{"key":"","data":null}],"partition":null,"expected_offset":0}`,
		` { "entries" : [ { } ] , "name" : "a" } `,
		`{"name":"a","expected_offset":1,"expected_offset":null,"entries":[{"data":"QUJD"}]}`,
		`{"name":"a","entries":[{"data":"QU\nJD"}]}`, `{"name":"a","entries":[{"data":"QU\\nJD"}]}`,
		`{"name":"a","entries":[{"data":"QUJD","data":"QUJD"}]}`, `{"Name":"a","entries":[{"data":"QUJD"}]}`,
		`{"name":"a","entries":[{"data":"QUJD"}],"partition":-0}`, `{"name":"a","entries":[{"data":"QUJD"}],"partition":01}`,
		`{"name":"a","entries":[{"data":"QUJD"}]}x`, `{"name":"é","entries":[{"data":"QUJD"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w, ok := fastAppend(body)
		if !ok {
			return
		}
		fast, ferr := checkAppend(w.name, len(w.entries), w.expected, w.partition)
		fast.Entries = w.entries
		slow, serr := decodeAppendSlow(body)
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("fast path error %v, encoding/json %v", ferr, serr)
		}
		if ferr != nil {
			return
		}
		if fast.Name != slow.Name || fast.ExpectedOffset != slow.ExpectedOffset || fast.Partition != slow.Partition || len(fast.Entries) != len(slow.Entries) {
			t.Fatalf("fast path %+v, encoding/json %+v", fast, slow)
		}
		for i := range fast.Entries {
			f, s := fast.Entries[i], slow.Entries[i]
			if !bytes.Equal(f.Data, s.Data) || f.Data == nil || !bytes.Equal(f.Key, s.Key) || (f.Key == nil) != (s.Key == nil) {
				t.Fatalf("entry %d: fast path %+v, encoding/json %+v", i, f, s)
			}
		}
	})
}
