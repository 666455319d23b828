package wal_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/morax-dev/morax/wire/wal"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("not JSON: %q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("not JSON: %q: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// TestCompatibility sends the original protocol's exact requests (as the
// morax-wal-client 0.1.x sends them) and checks the exact response bytes.
// The original server wrote compact JSON; new response fields come after
// the original ones, and without them a response is the original's.
func TestCompatibility(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG-EXAMPLEKEY"
	var logs syncBuffer
	n := waltest.Start(t, waltest.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Server: func(c *wal.Config) {
			// The node's own storage, as the original client names it.
			c.Storage = wal.StorageIdentity{Scheme: "s3", Bucket: "wal-bucket", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000"}
		},
	})

	steps := []struct {
		name, method, path, body string
		status                   int
		want                     string
		// original is the response as the original server sent it, when
		// ours adds fields.
		original string
	}{
		{name: "health", method: "GET", path: "/v1/health", status: 200, want: "OK"},
		{
			name: "create", method: "POST", path: "/v1/create",
			body:   `{"name": "db_log", "properties": {"storage": {"scheme": "s3", "bucket": "wal-bucket", "region": "us-east-1", "endpoint": "http://127.0.0.1:9000", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "` + secret + `"}}}`,
			status: 200, want: `{"name":"db_log"}`,
		},
		{
			name: "append", method: "POST", path: "/v1/append",
			body:   `{"name": "db_log", "entries": [{"data": "MA=="}, {"data": "MQ=="}]}`,
			status: 200, want: `{"offsets":{"start":0,"end":2}}`,
		},
		{
			name: "read", method: "POST", path: "/v1/read",
			body:     `{"name": "db_log", "offset": 0}`,
			status:   200,
			want:     `{"entries":[{"index":0,"data":"MA=="},{"index":1,"data":"MQ=="}],"end_offset":2}`,
			original: `{"entries": [{"index": 0, "data": "MA=="}, {"index": 1, "data": "MQ=="}]}`,
		},
		{
			name: "append more", method: "POST", path: "/v1/append",
			body:   `{"name": "db_log", "entries": [{"data": "Mg=="}]}`,
			status: 200, want: `{"offsets":{"start":2,"end":3}}`,
		},
		{
			name: "read from the middle", method: "POST", path: "/v1/read",
			body:   `{"name": "db_log", "offset": 1}`,
			status: 200, want: `{"entries":[{"index":1,"data":"MQ=="},{"index":2,"data":"Mg=="}],"end_offset":3}`,
		},
		{
			name: "read at the end", method: "POST", path: "/v1/read",
			body:   `{"name": "db_log", "offset": 3}`,
			status: 200, want: `{"entries":[],"end_offset":3}`,
		},
		{
			name: "create again", method: "POST", path: "/v1/create",
			body:   `{"name": "db_log", "properties": {"storage": {"scheme": "s3", "bucket": "wal-bucket", "region": "us-east-1", "endpoint": "http://127.0.0.1:9000", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "` + secret + `"}}}`,
			status: 409, want: `{"code":"AlreadyExists","message":"topic already exists: db_log"}`,
		},
		{
			name: "read unknown log", method: "POST", path: "/v1/read",
			body:   `{"name": "nope", "offset": 0}`,
			status: 404, want: `{"code":"NotFound","message":"log \"nope\" does not exist: unknown topic"}`,
		},
	}
	for _, s := range steps {
		status, body := n.Do(t, s.method, s.path, s.body)
		if status != s.status || body != s.want {
			t.Errorf("%s: %s %s %s\n got %d %s\nwant %d %s", s.name, s.method, s.path, s.body, status, body, s.status, s.want)
		}
		if s.original != "" {
			var m map[string]any
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			delete(m, "end_offset")
			stripped, _ := json.Marshal(m)
			if !sameJSON(t, string(stripped), s.original) {
				t.Errorf("%s: without the additive fields the response is %s, the original's was %s", s.name, stripped, s.original)
			}
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the node logged the secret access key")
	}
}

// TestCompatibilityErrorShape checks that every error body has the
// original's two fields, code and message, as strings.
func TestCompatibilityErrorShape(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/v1/read", `{"name": "missing", "offset": 0}`},
		{"POST", "/v1/append", `not json`},
		{"GET", "/v1/append", ``},
		{"GET", "/v1/nothing-here", ``},
	} {
		status, body := n.Do(t, req.method, req.path, req.body)
		var e map[string]any
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Errorf("%s %s: %d body %q is not JSON", req.method, req.path, status, body)
			continue
		}
		if _, ok := e["code"].(string); !ok {
			t.Errorf("%s %s: body %s has no string code", req.method, req.path, body)
		}
		if _, ok := e["message"].(string); !ok {
			t.Errorf("%s %s: body %s has no string message", req.method, req.path, body)
		}
		if status < 400 {
			t.Errorf("%s %s: status %d for an error", req.method, req.path, status)
		}
	}
}

// TestGzip checks that a response is gzipped when the request asks, and
// decompresses to the same bytes as an uncompressed one.
func TestGzip(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	ctx := t.Context()
	if err := n.Client.Create(ctx, "gz", nil); err != nil {
		t.Fatal(err)
	}
	entries := make([][]byte, 50)
	for i := range entries {
		entries[i] = bytes.Repeat([]byte("compressible "), 20)
	}
	if _, err := n.Client.Append(ctx, "gz", entries); err != nil {
		t.Fatal(err)
	}
	read := func(acceptGzip bool) (string, []byte) {
		req, _ := http.NewRequestWithContext(ctx, "POST", n.URL+"/v1/read", strings.NewReader(`{"name":"gz","offset":0}`))
		if acceptGzip {
			// Setting it by hand turns off net/http's transparent gunzip.
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get("Content-Encoding"), b
	}
	enc, zipped := read(true)
	if enc != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", enc)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	enc, plain := read(false)
	if enc != "" {
		t.Fatalf("Content-Encoding %q without Accept-Encoding", enc)
	}
	if !bytes.Equal(unzipped, plain) {
		t.Fatalf("gzipped answer differs from the plain one")
	}
	if len(zipped) >= len(plain) {
		t.Errorf("gzip did not shrink %d bytes (got %d)", len(plain), len(zipped))
	}
}
