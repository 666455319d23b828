package wal_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/wire/wal"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// answerWithin bounds the wait for one fuzzed request's answer: a hang
// detector, not a latency check (long polls are capped at 50 ms below).
const answerWithin = 30 * time.Second

// httpCase is one fuzz input: a request as a client would put it on the
// wire, with the headers the routes (and fasthttp's body reading) look at.
type httpCase struct {
	method, uri string
	// contentType, acceptEncoding and lastEventID are sent when not empty.
	contentType, acceptEncoding, lastEventID string
	// contentLength is sent as Content-Length when >= 0; -1 sends the
	// body's length.
	contentLength int32
	body          []byte
}

// raw renders the request. Connection: close makes the node answer one
// request per connection, so a Content-Length shorter than the body cannot
// turn the rest into a second request.
func (c httpCase) raw() []byte {
	var b bytes.Buffer
	b.WriteString(c.method + " " + c.uri + " HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n")
	for _, h := range [][2]string{{"Content-Type", c.contentType}, {"Accept-Encoding", c.acceptEncoding}, {"Last-Event-ID", c.lastEventID}} {
		if h[1] != "" {
			b.WriteString(h[0] + ": " + h[1] + "\r\n")
		}
	}
	cl := int64(len(c.body))
	if c.contentLength >= 0 {
		cl = int64(c.contentLength)
	}
	b.WriteString("Content-Length: " + strconv.FormatInt(cl, 10) + "\r\n\r\n")
	b.Write(c.body)
	return b.Bytes()
}

// served is the body the node reads: at most Content-Length bytes.
func (c httpCase) served() []byte {
	if c.contentLength >= 0 && int(c.contentLength) < len(c.body) {
		return c.body[:c.contentLength]
	}
	return c.body
}

// FuzzHandler drives the whole HTTP path of a real node (fasthttp's request
// parsing, routing, decoding, the broker, the answer) over a socket, with
// arbitrary methods, URIs (every route, query parameters), the headers the
// routes read (Content-Type, Content-Length, Accept-Encoding,
// Last-Event-ID) and bodies. It checks that:
//
//   - every request is answered, except one whose Content-Length promises
//     more than was sent (the node then waits for the rest, and closes when
//     the client hangs up);
//   - no answer is a 500 (a recovered handler panic answers 500
//     Unexpected);
//   - every answer of 400 or above is a JSON {"code","message"} of
//     Content-Type application/json;
//   - a JSON endpoint never answers 2xx to a body its decoder rejects, and
//     its 2xx answers are JSON;
//   - a tail that starts is a text/event-stream.
func FuzzHandler(f *testing.F) {
	n := waltest.Start(f, waltest.Options{Server: func(c *wal.Config) {
		// Long polls and idle tails end quickly, so iterations stay cheap.
		c.MaxWait, c.TailHeartbeat = 50*time.Millisecond, 50*time.Millisecond
		c.MaxBodyBytes = 64 << 10
	}})
	if err := n.Client.Create(f.Context(), "log", nil); err != nil {
		f.Fatal(err)
	}
	if _, err := n.Client.Append(f.Context(), "log", [][]byte{[]byte("a")}); err != nil {
		f.Fatal(err)
	}
	const js = "application/json"
	for _, c := range []httpCase{
		{"POST", "/v1/append", js, "", "", -1, []byte(`{"name":"log","entries":[{"data":"MA=="}]}`)},
		{"POST", "/v1/append", js, "", "", -1, []byte(`{"name":"log","entries":[{"data":"MA==","key":"aw=="}],"expected_offset":1,"partition":0}`)},
		{"POST", "/v1/read", js, "gzip", "", -1, []byte(`{"name":"log","offset":0,"max_entries":1,"max_bytes":100,"wait_ms":10}`)},
		{"POST", "/v1/create", js, "", "", -1, []byte(`{"name":"fz","properties":{"config":{"retention.ms":"1000"}}}`)},
		{"POST", "/v1/create", js, "", "", -1, []byte(`{"name":"fz2","properties":{"storage":{"scheme":"s3","bucket":"b"}}}`)},
		{"POST", "/v1/trim", js, "", "", -1, []byte(`{"name":"log","offset":0}`)},
		{"POST", "/v1/read", "application/x-www-form-urlencoded", "", "", -1, []byte(`name=log&offset=0`)},
		{"POST", "/v1/read", js, "", "", 5, []byte(`{"name":"log"}`)},
		{"POST", "/v1/read", js, "", "", 40, []byte(`{"name":"log"}`)},
		{"POST", "/v1/append", js, "", "", 1 << 20, nil},
		{"GET", "/v1/logs?prefix=l&limit=2&kind=all&after=a", "", "deflate", "", -1, nil},
		{"GET", "/v1/logs/?limit=x", "", "", "", -1, nil},
		{"GET", "/v1/logs/log?partition=0", "", "", "", -1, nil},
		{"GET", "/v1/logs/log/tail?offset=0", "", "", "", -1, nil},
		{"GET", "/v1/logs/log/tail", "", "", "0", -1, nil},
		{"GET", "/v1/logs/log/tail?partition=1", "", "", "x", -1, nil},
		{"DELETE", "/v1/logs/nope", "", "", "", -1, nil},
		{"GET", "/v1/health", "", "", "", -1, nil},
		{"HEAD", "/v1/health", "", "", "", -1, nil},
		{"GET", "/v1/cluster", "", "", "", -1, nil},
		{"GET", "/v1/status", "", "gzip", "", -1, nil},
		{"PATCH", "/v1/read", js, "", "", -1, []byte(`{}`)},
		{"GET", "/metrics", "", "gzip", "", -1, nil},
		{"GET", "//v1/../v1/logs/%2e%2e", "", "", "", -1, nil},
	} {
		f.Add(c.method, c.uri, c.contentType, c.acceptEncoding, c.lastEventID, c.contentLength, c.body)
	}
	addr := strings.TrimPrefix(n.URL, "http://")
	f.Fuzz(func(t *testing.T, method, uri, contentType, acceptEncoding, lastEventID string, contentLength int32, body []byte) {
		c := httpCase{method, uri, contentType, acceptEncoding, lastEventID, contentLength, body}
		for _, s := range []string{method, uri, contentType, acceptEncoding, lastEventID} {
			if strings.ContainsAny(s, "\r\n") {
				return // header injection: a different request than the fields say
			}
		}
		if method == "" || strings.ContainsAny(method, " \t") || uri == "" || strings.ContainsAny(uri, " \t") {
			return // not a request line; TestMalformedHTTP covers garbage
		}
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(answerWithin))
		if _, err := nc.Write(c.raw()); err != nil {
			t.Fatalf("write: %v", err)
		}
		// The node sees the end of the request: a body shorter than its
		// Content-Length ends there instead of waiting for the rest.
		_ = nc.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(nc), &http.Request{Method: method})
		if err != nil {
			if int64(c.contentLength) > int64(len(body)) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				return // promised more body than it sent, then hung up
			}
			t.Fatalf("%s %s: no answer: %v", method, uri, err)
		}
		ctype := resp.Header.Get("Content-Type")
		if resp.StatusCode == http.StatusOK && ctype == "text/event-stream" {
			// A tail started; it ends when the node sees the close. The
			// socket goes first, or closing the body would read the
			// stream to its end.
			nc.Close()
			resp.Body.Close()
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: read the answer: %v", method, uri, err)
		}
		answer, ok := decompress(t, resp.Header.Get("Content-Encoding"), raw)
		// The answer to HEAD has no body to check.
		ok = ok && method != http.MethodHead
		status := resp.StatusCode
		if status >= 500 && status != http.StatusServiceUnavailable {
			t.Fatalf("%s %s %q: %d %s", method, uri, c.served(), status, answer)
		}
		if status >= 400 {
			var e struct{ Code, Message string }
			if ctype != "application/json" || ok && (json.Unmarshal(answer, &e) != nil || e.Code == "" || e.Message == "") {
				t.Fatalf("%s %s: status %d with %s body %q", method, uri, status, ctype, answer)
			}
			return
		}
		path := requestPath(uri)
		if status/100 == 2 && method == http.MethodPost {
			if err := wal.DecodeBody(path, c.served()); err != nil {
				t.Fatalf("POST %s %q: %d although the decoder refuses the body: %v", path, c.served(), status, err)
			}
		}
		if status/100 == 2 && ctype == "application/json" && ok && !json.Valid(answer) {
			t.Fatalf("%s %s: %d with invalid JSON %q", method, uri, status, answer)
		}
	})
}

// requestPath is the path the node routes uri by, normalized as fasthttp
// normalizes it.
func requestPath(uri string) string {
	var u fasthttp.URI
	if err := u.Parse([]byte("fuzz"), []byte(uri)); err != nil {
		return ""
	}
	return string(u.Path())
}

// decompress undoes the Content-Encoding the node chose; ok is false for an
// encoding the standard library cannot read (br, zstd), whose body is then
// not checked.
func decompress(t *testing.T, encoding string, b []byte) ([]byte, bool) {
	t.Helper()
	var r io.Reader
	var err error
	switch encoding {
	case "":
		return b, true
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(b))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(b))
	default:
		return b, false
	}
	if err == nil {
		b, err = io.ReadAll(r)
	}
	if err != nil {
		t.Fatalf("%s answer does not decompress: %v", encoding, err)
	}
	return b, true
}
