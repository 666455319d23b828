package wal_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/morax-dev/morax/wire/wal"
	"github.com/morax-dev/morax/wire/wal/client"
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
	for _, name := range []string{"log", "other"} {
		if err := n.Client.Create(ctx, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.Client.Append(ctx, "log", [][]byte{[]byte("a"), []byte("b")}); err != nil {
		t.Fatal(err)
	}
	big := `{"name":"log","entries":[{"data":"` + strings.Repeat("QUFB", bodyLimit/4+1) + `"}]}`

	form := "application/x-www-form-urlencoded"
	multipart := "multipart/form-data; boundary=b"
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		// contains is a piece of the message that says what is wrong.
		contains string
		// header is sent with the request, when set (name, value).
		header [2]string
	}{
		{"malformed JSON", "POST", "/v1/append", `{"name": "log", "entries": [`, 400, "InvalidArgument", "malformed JSON", [2]string{}},
		{"not JSON at all", "POST", "/v1/read", `name=log`, 400, "InvalidArgument", "malformed JSON", [2]string{}},
		{"empty body", "POST", "/v1/read", ``, 400, "InvalidArgument", "empty request body", [2]string{}},
		{"JSON array body", "POST", "/v1/read", `[1,2]`, 400, "InvalidArgument", "JSON object", [2]string{}},
		{"trailing garbage", "POST", "/v1/read", `{"name":"log"} x`, 400, "InvalidArgument", "malformed JSON", [2]string{}},
		{"offset as string", "POST", "/v1/read", `{"name": "log", "offset": "0"}`, 400, "InvalidArgument", `field "offset"`, [2]string{}},
		{"offset as float", "POST", "/v1/read", `{"name": "log", "offset": 1.5}`, 400, "InvalidArgument", `field "offset"`, [2]string{}},
		{"name as number", "POST", "/v1/create", `{"name": 7}`, 400, "InvalidArgument", `field "name"`, [2]string{}},
		{"entries as object", "POST", "/v1/append", `{"name": "log", "entries": {"data": "MA=="}}`, 400, "InvalidArgument", `field "entries"`, [2]string{}},
		{"data as number", "POST", "/v1/append", `{"name": "log", "entries": [{"data": 5}]}`, 400, "InvalidArgument", `data`, [2]string{}},
		{"bad base64", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA=="}, {"data": "not base64!"}]}`, 400, "InvalidArgument", "entries[1].data", [2]string{}},
		{"unpadded base64", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA"}]}`, 400, "InvalidArgument", "base64", [2]string{}},
		{"URL-safe base64", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "_-8="}]}`, 400, "InvalidArgument", "base64", [2]string{}},
		{"missing name (create)", "POST", "/v1/create", `{}`, 400, "InvalidArgument", "name is required", [2]string{}},
		{"missing name (append)", "POST", "/v1/append", `{"entries": [{"data": "MA=="}]}`, 400, "InvalidArgument", "name is required", [2]string{}},
		{"missing name (read)", "POST", "/v1/read", `{"offset": 0}`, 400, "InvalidArgument", "name is required", [2]string{}},
		{"bad name", "POST", "/v1/create", `{"name": "a/b"}`, 400, "InvalidArgument", "not allowed", [2]string{}},
		{"no entries", "POST", "/v1/append", `{"name": "log", "entries": []}`, 400, "InvalidArgument", "entries", [2]string{}},
		{"unknown log (read)", "POST", "/v1/read", `{"name": "ghost", "offset": 0}`, 404, "NotFound", "ghost", [2]string{}},
		{"unknown log (append)", "POST", "/v1/append", `{"name": "ghost", "entries": [{"data": "MA=="}]}`, 404, "NotFound", "ghost", [2]string{}},
		{"unknown log (describe)", "GET", "/v1/logs/ghost", ``, 404, "NotFound", "ghost", [2]string{}},
		{"unknown log (delete)", "DELETE", "/v1/logs/ghost", ``, 404, "NotFound", "ghost", [2]string{}},
		{"unknown log (tail)", "GET", "/v1/logs/ghost/tail?offset=0", ``, 404, "NotFound", "ghost", [2]string{}},
		{"unknown partition", "POST", "/v1/read", `{"name": "log", "offset": 0, "partition": 3}`, 404, "NotFound", "partition", [2]string{}},
		{"negative offset (read)", "POST", "/v1/read", `{"name": "log", "offset": -1}`, 400, "InvalidArgument", "negative", [2]string{}},
		{"negative offset (trim)", "POST", "/v1/trim", `{"name": "log", "offset": -5}`, 400, "InvalidArgument", "negative", [2]string{}},
		{"negative offset (tail)", "GET", "/v1/logs/log/tail?offset=-1", ``, 400, "InvalidArgument", "offset", [2]string{}},
		{"negative expected_offset", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA=="}], "expected_offset": -2}`, 400, "InvalidArgument", "expected_offset", [2]string{}},
		{"negative wait", "POST", "/v1/read", `{"name": "log", "offset": 0, "wait_ms": -1}`, 400, "InvalidArgument", "wait_ms", [2]string{}},
		{"trim without offset", "POST", "/v1/trim", `{"name": "log"}`, 400, "InvalidArgument", "offset is required", [2]string{}},
		{"offset past the end", "POST", "/v1/read", `{"name": "log", "offset": 9}`, 416, "OffsetOutOfRange", "offset 9", [2]string{}},
		{"trim past the end", "POST", "/v1/trim", `{"name": "log", "offset": 9}`, 416, "OffsetOutOfRange", "9", [2]string{}},
		{"oversized body", "POST", "/v1/append", big, 413, "PayloadTooLarge", "limit", [2]string{}},
		{"wrong method (GET append)", "GET", "/v1/append", ``, 405, "MethodNotAllowed", "POST", [2]string{}},
		{"wrong method (PUT logs)", "PUT", "/v1/logs/log", ``, 405, "MethodNotAllowed", "GET", [2]string{}},
		{"wrong method (POST health)", "POST", "/v1/health", `{}`, 405, "MethodNotAllowed", "GET", [2]string{}},
		{"unknown endpoint", "GET", "/v2/append", ``, 404, "NotFound", "endpoint", [2]string{}},
		{"conditional mismatch", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA=="}], "expected_offset": 0}`, 409, "Conflict", "ends at 2", [2]string{}},
		{"create existing", "POST", "/v1/create", `{"name": "log"}`, 409, "AlreadyExists", "log", [2]string{}},
		{"foreign storage", "POST", "/v1/create", `{"name": "other", "properties": {"storage": {"scheme": "s3", "bucket": "someone-elses", "endpoint": "http://evil.example:9000", "secret_access_key": "s3cr3t"}}}`, 403, "PermissionDenied", "per-log storage is disabled", [2]string{}},
		{"unknown config", "POST", "/v1/create", `{"name": "other", "properties": {"config": {"no.such.key": "1"}}}`, 400, "InvalidArgument", "no.such.key", [2]string{}},
		{"bad list limit", "GET", "/v1/logs?limit=0", ``, 400, "InvalidArgument", "limit", [2]string{}},
		{"bad list kind", "GET", "/v1/logs?kind=tables", ``, 400, "InvalidArgument", "kind", [2]string{}},
		{"form body (Content-Type is not a body format)", "POST", "/v1/read", `name=log&offset=0`, 400, "InvalidArgument", "malformed JSON", [2]string{"Content-Type", form}},
		{"multipart body", "POST", "/v1/append", "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nlog\r\n--b--\r\n", 400, "InvalidArgument", "malformed JSON", [2]string{"Content-Type", multipart}},
		{"offset over int64", "POST", "/v1/read", `{"name": "log", "offset": 9223372036854775808}`, 400, "InvalidArgument", `field "offset"`, [2]string{}},
		{"expected_offset over int64", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA=="}], "expected_offset": 1e30}`, 400, "InvalidArgument", "expected_offset", [2]string{}},
		{"partition over int32", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA=="}], "partition": 2147483648}`, 400, "InvalidArgument", "partition 2147483648", [2]string{}},
		{"negative partition (read)", "POST", "/v1/read", `{"name": "log", "partition": -1}`, 400, "InvalidArgument", "partition -1", [2]string{}},
		{"negative partition (trim)", "POST", "/v1/trim", `{"name": "log", "offset": 0, "partition": -3}`, 400, "InvalidArgument", "partition -3", [2]string{}},
		{"negative max_entries", "POST", "/v1/read", `{"name": "log", "max_entries": -1}`, 400, "InvalidArgument", "max_entries", [2]string{}},
		{"negative max_bytes", "POST", "/v1/read", `{"name": "log", "max_bytes": -1}`, 400, "InvalidArgument", "max_bytes", [2]string{}},
		{"wait_ms as string", "POST", "/v1/read", `{"name": "log", "wait_ms": "10"}`, 400, "InvalidArgument", `field "wait_ms"`, [2]string{}},
		{"offset as string (trim)", "POST", "/v1/trim", `{"name": "log", "offset": "1"}`, 400, "InvalidArgument", `field "offset"`, [2]string{}},
		{"bad base64 key", "POST", "/v1/append", `{"name": "log", "entries": [{"data": "MA==", "key": "%%"}]}`, 400, "InvalidArgument", "entries[0].key", [2]string{}},
		{"null body", "POST", "/v1/append", `null`, 400, "InvalidArgument", "name is required", [2]string{}},
		{"name too long", "POST", "/v1/create", `{"name": "` + strings.Repeat("n", 250) + `"}`, 400, "InvalidArgument", "limit is 249", [2]string{}},
		{"reserved name", "POST", "/v1/create", `{"name": ".."}`, 400, "InvalidArgument", "reserved", [2]string{}},
		{"name with invalid UTF-8", "POST", "/v1/create", "{\"name\": \"l\xff\"}", 400, "InvalidArgument", "not allowed", [2]string{}},
		{"unknown log (trim)", "POST", "/v1/trim", `{"name": "ghost", "offset": 0}`, 404, "NotFound", "ghost", [2]string{}},
		{"invalid name in path", "GET", "/v1/logs/bad%20name", ``, 400, "InvalidArgument", "not allowed", [2]string{}},
		{"partition query not a number", "GET", "/v1/logs/log?partition=x", ``, 400, "InvalidArgument", "partition", [2]string{}},
		{"partition query negative", "GET", "/v1/logs/log?partition=-1", ``, 400, "InvalidArgument", "partition", [2]string{}},
		{"tail offset not a number", "GET", "/v1/logs/log/tail?offset=abc", ``, 400, "InvalidArgument", "offset", [2]string{}},
		{"tail offset over int64", "GET", "/v1/logs/log/tail?offset=99999999999999999999", ``, 400, "InvalidArgument", "offset", [2]string{}},
		{"tail Last-Event-ID garbage", "GET", "/v1/logs/log/tail", ``, 400, "InvalidArgument", "Last-Event-ID", [2]string{"Last-Event-ID", "abc"}},
		{"tail past the end", "GET", "/v1/logs/log/tail?offset=99", ``, 416, "OffsetOutOfRange", "99", [2]string{}},
		{"wrong method (POST tail)", "POST", "/v1/logs/log/tail", `{}`, 405, "MethodNotAllowed", "GET", [2]string{}},
		{"list limit over the maximum", "GET", "/v1/logs?limit=1001", ``, 400, "InvalidArgument", "limit", [2]string{}},
		{"list limit not a number", "GET", "/v1/logs?limit=ten", ``, 400, "InvalidArgument", "limit", [2]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(t, n.URL, c.method, c.path, c.body, c.header)
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
			// The node keeps serving another client.
			stillServes(t, n)
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

// do sends a request with one optional extra header (a JSON Content-Type
// when there is a body and the header is not Content-Type) and returns
// status and body.
func do(t *testing.T, base, method, path, body string, header [2]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if header[0] != "" {
		req.Header.Set(header[0], header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// stillServes checks that a separate client can append to and read from
// the node's second log after a bad request.
func stillServes(t *testing.T, n *waltest.Node) {
	t.Helper()
	cl, err := client.New(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	off, err := cl.Append(t.Context(), "other", [][]byte{[]byte("ok")})
	if err != nil {
		t.Fatalf("append after the bad request: %v", err)
	}
	res, err := cl.Read(t.Context(), "other", off.Start, &client.ReadOptions{MaxEntries: 1})
	if err != nil || len(res.Entries) != 1 || string(res.Entries[0].Data) != "ok" {
		t.Fatalf("read after the bad request: %+v, %v", res, err)
	}
}
