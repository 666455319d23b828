package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

// TestEncodeAppend checks the hand-written append body against
// encoding/json's reading of it.
func TestEncodeAppend(t *testing.T) {
	zero := int64(0)
	req := appendRequest{
		Name:           "we\"ird\\<name>\u2028é",
		Entries:        []appendEntry{{Data: []byte("a")}, {Data: nil}, {Data: []byte{}, Key: []byte{}}, {Data: []byte{0, 0xff}, Key: []byte("k")}},
		ExpectedOffset: &zero,
		Partition:      7,
	}
	name, _ := json.Marshal(req.Name)
	body := encodeAppend(name, req)
	var got struct {
		Name    string `json:"name"`
		Entries []struct {
			Data *[]byte `json:"data"`
			Key  *[]byte `json:"key"`
		} `json:"entries"`
		ExpectedOffset *int64 `json:"expected_offset"`
		Partition      int32  `json:"partition"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if got.Name != req.Name || got.ExpectedOffset == nil || *got.ExpectedOffset != 0 || got.Partition != 7 || len(got.Entries) != 4 {
		t.Fatalf("decoded %+v from %s", got, body)
	}
	for i, e := range got.Entries {
		want := req.Entries[i]
		if e.Data == nil || !bytes.Equal(*e.Data, want.Data) {
			t.Errorf("entry %d data: %v, want %q (never null)", i, e.Data, want.Data)
		}
		if (e.Key == nil) != (want.Key == nil) || (e.Key != nil && !bytes.Equal(*e.Key, want.Key)) {
			t.Errorf("entry %d key: %v, want %v", i, e.Key, want.Key)
		}
	}
	body = encodeAppend([]byte(`"x"`), appendRequest{Name: "x", Entries: []appendEntry{{Data: []byte("0")}}})
	if string(body) != `{"name":"x","entries":[{"data":"MA=="}]}` {
		t.Errorf("plain append body %s", body)
	}
}

// FuzzReadResult checks the read response fast path against encoding/json.
func FuzzReadResult(f *testing.F) {
	for _, s := range []string{
		`{"entries":[{"index":0,"data":"MA=="},{"index":1,"data":"MQ=="}],"end_offset":2}`,
		`{"entries":[],"end_offset":0}`, `{"end_offset":3}`, `{}`, `{"entries":null}`,
		`{"entries":[{"index":5,"data":"","key":"a2V5"},{"data":null,"key":null,"index":-0}],"end_offset":9}`,
		`{"entries":[{"index":5,"data":"MA==","index":6}]}`, `{"entries":[{"index":1.5,"data":"MA=="}]}`,
		`{"entries":[{"index":1,"data":"M\nA=="}]}`, `{"Entries":[]}`, `{"entries":[],"start_offset":1,"end_offset":2}`,
		` {"entries" : [ {"index" : 1 , "data" : "MA==" } ] , "end_offset" : 2 } `, `{"entries":[]}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := fastReadResult(body)
		if !ok {
			return
		}
		var slow ReadResult
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", body, err)
		}
		if fast.EndOffset != slow.EndOffset || len(fast.Entries) != len(slow.Entries) || (fast.Entries == nil) != (slow.Entries == nil) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", body, fast, slow)
		}
		for i := range fast.Entries {
			a, b := fast.Entries[i], slow.Entries[i]
			if a.Index != b.Index || !bytes.Equal(a.Data, b.Data) || (a.Data == nil) != (b.Data == nil) ||
				!bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil) {
				t.Fatalf("%q entry %d: fast %+v, encoding/json %+v", body, i, a, b)
			}
		}
	})
}

// FuzzSSEReader feeds the tail stream parser arbitrary bytes: it must not
// panic, and no event may exceed its limit.
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("id: 1\ndata: {\"index\":1,\"data\":\"MA==\"}\n\n: keep-alive\n\nevent: end\ndata: {}\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\nevent: error\ndata: {\"code\":\"NotFound\"}\n\n"))
	f.Add([]byte("data:" + string(bytes.Repeat([]byte("x"), 3000)) + "\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 1024
		sr := sseReader{r: bufio.NewReaderSize(bytes.NewReader(in), 16), limit: limit}
		for range 10000 {
			ev, err := sr.next()
			if err != nil {
				return
			}
			if len(ev.data) > limit {
				t.Fatalf("event of %d bytes past the %d limit", len(ev.data), limit)
			}
		}
	})
}
