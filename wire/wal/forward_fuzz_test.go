package wal

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/morax-dev/morax/persistence/segment"
)

// seedAnswers are answers of forwarded requests the answer decoders start
// from: what a node sends, and damaged or foreign variants.
var seedAnswers = []string{
	`{"entries":[],"end_offset":0}`,
	`{"entries":[{"index":0,"data":"MA=="},{"index":1,"data":"","key":"a2V5"}],"end_offset":2}`,
	`{"entries":[ {"index":5, "data":"MA==" ,"x":{"y":[1,2]}} ],"end_offset":9}`,
	`{"entries":[{"index":2,"data":"MA=="},{"index":2,"data":"MA=="}],"end_offset":3}`,
	`{"entries":[{"index":-1,"data":"MA=="}],"end_offset":3}`,
	`{"entries":[{"data":"MA=="}],"end_offset":1}`,
	`{"entries":[1],"end_offset":1}`,
	`{"entries":null}`,
	`{"code":"OffsetOutOfRange","message":"offset 9 out of range","start_offset":0,"end_offset":3}`,
	`{"code":"Unavailable","message":"retry"}`,
	`{"code":"Bad\"Code","message":"x"}`,
	`{"code":"","message":""}`,
	`{"name":"a","end_offset":7,"start_offset":1}`,
	`<html>502 Bad Gateway</html>`, `null`, `[]`, `{`, ``,
}

func addAnswerSeeds(f *testing.F) {
	for _, s := range seedAnswers {
		f.Add([]byte(s))
	}
}

// FuzzDecodeReadResponse checks that an accepted read answer yields
// entries a tail can send as events: strictly increasing indexes, each
// entry one line of valid JSON that still says its index.
func FuzzDecodeReadResponse(f *testing.F) {
	addAnswerSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rr, err := decodeReadResponse(body)
		if err != nil {
			if !errors.Is(err, errBadAnswer) {
				t.Fatalf("error %v does not wrap errBadAnswer", err)
			}
			return
		}
		if rr.EndOffset < 0 {
			t.Fatalf("negative end offset %d", rr.EndOffset)
		}
		for i, e := range rr.Entries {
			if e.Index < 0 || (i > 0 && e.Index <= rr.Entries[i-1].Index) {
				t.Fatalf("entry %d: index %d out of order", i, e.Index)
			}
			if bytes.ContainsAny(e.JSON, "\r\n") || !json.Valid(e.JSON) {
				t.Fatalf("entry %d: %q is not one line of JSON", i, e.JSON)
			}
			var back struct {
				Index int64 `json:"index"`
			}
			if err := json.Unmarshal(e.JSON, &back); err != nil || back.Index != e.Index {
				t.Fatalf("entry %d: %q does not decode to index %d: %v", i, e.JSON, e.Index, err)
			}
		}
	})
}

// TestReadResponseRoundTrip checks that entries encoded as a read answers
// them come back byte for byte, so a tail through a non-owner sends the
// same events as one on the owner.
func TestReadResponseRoundTrip(t *testing.T) {
	recs := []segment.Record{
		{Offset: 7, Value: []byte("hello")},
		{Offset: 8, Value: []byte{}, Key: []byte("k")},
		{Offset: 10, Value: []byte("\n\"<&>\x00")},
	}
	body := []byte(`{"entries":[`)
	var want [][]byte
	for i := range recs {
		if i > 0 {
			body = append(body, ',')
		}
		e := appendEntryJSON(nil, &recs[i])
		want = append(want, e)
		body = append(body, e...)
	}
	body = append(body, `],"end_offset":11}`...)
	rr, err := decodeReadResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	if rr.EndOffset != 11 || len(rr.Entries) != len(recs) {
		t.Fatalf("decoded %+v", rr)
	}
	for i, e := range rr.Entries {
		if e.Index != recs[i].Offset || !bytes.Equal(e.JSON, want[i]) {
			t.Fatalf("entry %d: %d %s, want %d %s", i, e.Index, e.JSON, recs[i].Offset, want[i])
		}
	}
}

// FuzzDecodeErrorBody checks that any error answer becomes an error event
// that is valid JSON carrying an error status and a plain code.
func FuzzDecodeErrorBody(f *testing.F) {
	addAnswerSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, status := range []int{200, 404, 416, 503, 999} {
			e := decodeErrorBody(status, body)
			if e.status < 400 || e.status > 599 || !validCode(e.code) {
				t.Fatalf("status %d body %q: got status %d code %q", status, body, e.status, e.code)
			}
			e.inStream = true
			out := appendErrorJSON(nil, e)
			var back struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Status  int    `json:"status"`
			}
			if err := json.Unmarshal(out, &back); err != nil || back.Code != e.code || back.Status != e.status {
				t.Fatalf("event %s: %v", out, err)
			}
			if !strings.Contains(string(out), `"message":`) {
				t.Fatalf("event %s has no message", out)
			}
		}
	})
}

// FuzzDecodeEndOffset checks the describe answer decoder accepts only a
// non-negative end offset.
func FuzzDecodeEndOffset(f *testing.F) {
	addAnswerSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		end, err := decodeEndOffset(body)
		if err != nil {
			if !errors.Is(err, errBadAnswer) {
				t.Fatalf("error %v does not wrap errBadAnswer", err)
			}
			return
		}
		if end < 0 {
			t.Fatalf("negative end offset %d", end)
		}
	})
}
