package wal_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/morax-dev/morax/wire/wal"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// TestBadInput sends malformed and refused requests and checks each gets
// the right code and status, and that the node keeps serving after each.
func TestBadInput(t *testing.T) {
	const bodyLimit = 64 << 10
	n := waltest.Start(t, waltest.Options{Server: func(c *wal.Config) {
		c.MaxBodyBytes = bodyLimit
		c.Storage = wal.StorageIdentity{Scheme: "s3", Bucket: "mine", Endpoint: "http://127.0.0.1:9000", Region: "us-east-1"}
	}})
	ctx := t.Context()
	if err := n.Client.Create(ctx, "log", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client.Append(ctx, "log", [][]byte{[]byte("a"), []byte("b")}); err != nil {
		t.Fatal(err)
	}
	big := `{"name":"log","entries":[{"data":"` + strings.Repeat("QUFB", bodyLimit/4+1) + `"}]}`

	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		// contains is a piece of the message that says what is wrong.
		contains string
	}{
		{"malformed JSON", "POST", "/v1/append", `{"name": "log", "entries": [`, 400, "InvalidArgument", "malformed JSON"},
		{"not JSON at all", "POST", "/v1/read", `name=log`, 400, "InvalidArgument", "malformed JSON"},
		{"empty body", "POST", "/v1/read", ``, 400, "InvalidArgument", "empty request body"},
		{"JSON array body", "POST", "/v1/read", `[1,2]`, 400, "InvalidArgument", "JSON object"},
		{"trailing garbage", "POST", "/v1/read", `{"name":"log"} x`, 400, "InvalidArgument", "malformed JSON"},
		{"offset as string", "POST", "/v1/read", `{"name": "log", "offset": "0"}`, 400, "InvalidArgument", `field "offset"`},
		{"offset as float", "POST", "/v1/read", `{"name": "log", "offset": 1.5}`, 400, "InvalidArgument", `field "offset"`},
		{"name as number", "POST", "/v1/create", `{"name": 7}`, 400, "InvalidArgument", `field "name"`},
		{"entries as object", "POST", "/v1/append", `{"name": "log", "entries": {"data": "MA=="}}`, 400, "InvalidArgument", `field "entries"`},
		{"data as number", "POST", "/v1/append", `{"name": "log", "entries": [{"data": 5}]}`, 400, "InvalidArgument", `data`},
		{"bad base64", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA=="}, {"data": "not base64!"}]}`, 400, "InvalidArgument", "entries[1].data"},
		{"unpadded base64", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA"}]}`, 400, "InvalidArgument", "base64"},
		{"URL-safe base64", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "_-8="}]}`, 400, "InvalidArgument", "base64"},
		{"missing name (create)", "POST", "/v1/create", `{}`, 400, "InvalidArgument", "name is required"},
		{"missing name (append)", "POST", "/v1/append", `{"entries": [{"data": "MA=="}]}`, 400, "InvalidArgument", "name is required"},
		{"missing name (read)", "POST", "/v1/read", `{"offset": 0}`, 400, "InvalidArgument", "name is required"},
		{"bad name", "POST", "/v1/create", `{"name": "a/b"}`, 400, "InvalidArgument", "not allowed"},
		{"no entries", "POST", "/v1/append", `{"name": "log", "entries": []}`, 400, "InvalidArgument", "entries"},
		{"unknown log (read)", "POST", "/v1/read", `{"name": "ghost", "offset": 0}`, 404, "NotFound", "ghost"},
		{"unknown log (append)", "POST", "/v1/append", `{"name": "ghost", "entries": [{"data": "MA=="}]}`, 404, "NotFound", "ghost"},
		{"unknown log (describe)", "GET", "/v1/logs/ghost", ``, 404, "NotFound", "ghost"},
		{"unknown log (delete)", "DELETE", "/v1/logs/ghost", ``, 404, "NotFound", "ghost"},
		{"unknown log (tail)", "GET", "/v1/logs/ghost/tail?offset=0", ``, 404, "NotFound", "ghost"},
		{"unknown partition", "POST", "/v1/read", `{"name": "log", "offset": 0, "partition": 3}`, 404, "NotFound", "partition"},
		{"negative offset (read)", "POST", "/v1/read", `{"name": "log", "offset": -1}`, 400, "InvalidArgument", "negative"},
		{"negative offset (trim)", "POST", "/v1/trim", `{"name": "log", "offset": -5}`, 400, "InvalidArgument", "negative"},
		{"negative offset (tail)", "GET", "/v1/logs/log/tail?offset=-1", ``, 400, "InvalidArgument", "offset"},
		{"negative expected_offset", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA=="}], "expected_offset": -2}`, 400, "InvalidArgument", "expected_offset"},
		{"negative wait", "POST", "/v1/read", `{"name": "log", "offset": 0, "wait_ms": -1}`, 400, "InvalidArgument", "wait_ms"},
		{"trim without offset", "POST", "/v1/trim", `{"name": "log"}`, 400, "InvalidArgument", "offset is required"},
		{"offset past the end", "POST", "/v1/read", `{"name": "log", "offset": 9}`, 416, "OffsetOutOfRange", "offset 9"},
		{"trim past the end", "POST", "/v1/trim", `{"name": "log", "offset": 9}`, 416, "OffsetOutOfRange", "9"},
		{"oversized body", "POST", "/v1/append", big, 413, "PayloadTooLarge", "limit"},
		{"wrong method (GET append)", "GET", "/v1/append", ``, 405, "MethodNotAllowed", "POST"},
		{"wrong method (PUT logs)", "PUT", "/v1/logs/log", ``, 405, "MethodNotAllowed", "GET"},
		{"wrong method (POST health)", "POST", "/v1/health", `{}`, 405, "MethodNotAllowed", "GET"},
		{"unknown endpoint", "GET", "/v2/append", ``, 404, "NotFound", "endpoint"},
		{"conditional mismatch", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA=="}], "expected_offset": 0}`, 409, "Conflict", "ends at 2"},
		{"create existing", "POST", "/v1/create", `{"name": "log"}`, 409, "AlreadyExists", "log"},
		{"foreign storage", "POST", "/v1/create", `{"name": "other", "properties": {"storage": {"scheme": "s3", "bucket": "someone-elses", "endpoint": "http://evil.example:9000", "secret_access_key": "s3cr3t"}}}`, 403, "PermissionDenied", "per-log storage is disabled"},
		{"unknown config", "POST", "/v1/create", `{"name": "other", "properties": {"config": {"no.such.key": "1"}}}`, 400, "InvalidArgument", "no.such.key"},
		{"bad list limit", "GET", "/v1/logs?limit=0", ``, 400, "InvalidArgument", "limit"},
		{"bad list kind", "GET", "/v1/logs?kind=tables", ``, 400, "InvalidArgument", "kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := n.Do(t, c.method, c.path, c.body)
			var e struct {
				Code      string `json:"code"`
				Message   string `json:"message"`
				EndOffset *int64 `json:"end_offset"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("status %d, body %q is not a JSON error", status, body)
			}
			if status != c.status || e.Code != c.code {
				t.Errorf("got %d %s, want %d %s (body %s)", status, e.Code, c.status, c.code, body)
			}
			if !strings.Contains(e.Message, c.contains) {
				t.Errorf("message %q does not mention %q", e.Message, c.contains)
			}
			if strings.Contains(body, "s3cr3t") {
				t.Errorf("the response echoes a credential: %s", body)
			}
			if c.code == "Conflict" && (e.EndOffset == nil || *e.EndOffset != 2) {
				t.Errorf("conflict body %s lacks end_offset 2", body)
			}
			// The node keeps serving.
			if err := n.Client.Health(t.Context()); err != nil {
				t.Fatalf("node unhealthy after the bad request: %v", err)
			}
		})
	}
	// Nothing above appended anything.
	info, err := n.Client.Describe(ctx, "log")
	if err != nil {
		t.Fatal(err)
	}
	if info.EndOffset != 2 {
		t.Errorf("log ends at %d after the bad requests, want 2", info.EndOffset)
	}
}

// TestMalformedHTTP sends bytes that are not HTTP; the node answers 400 and
// keeps serving.
func TestMalformedHTTP(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(n.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("HELLO THERE\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	k, _ := conn.Read(buf)
	if !strings.HasPrefix(string(buf[:k]), "HTTP/1.1 400") {
		t.Errorf("answer to garbage: %q", buf[:k])
	}
	if err := n.Client.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestAppendEntryLimit checks that a flood of tiny entries is refused
// before it is decoded.
func TestAppendEntryLimit(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	if err := n.Client.Create(t.Context(), "log", nil); err != nil {
		t.Fatal(err)
	}
	body := `{"name":"log","entries":[` + strings.Repeat(`{},`, 70000) + `{}]}`
	status, resp := n.Post(t, "/v1/append", body)
	if status != 400 || !strings.Contains(resp, "at most 65536 entries") {
		t.Fatalf("70001 entries: %d %s", status, resp)
	}
	body = `{"name":"log","entries":[` + strings.Repeat(`{},`, 65535) + `{}]}`
	status, resp = n.Post(t, "/v1/append", body)
	if status != 200 || resp != `{"offsets":{"start":0,"end":65536}}` {
		t.Fatalf("65536 empty entries: %d %s", status, resp)
	}
	// A read of empty entries is bounded too.
	res, err := n.Client.Read(t.Context(), "log", 0, nil)
	if err != nil || len(res.Entries) == 0 || len(res.Entries) > (1<<20)/16 {
		t.Fatalf("read of empty entries: %d entries, %v", len(res.Entries), err)
	}
}
