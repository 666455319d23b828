package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/morax-dev/morax/wire/wal"
	"github.com/morax-dev/morax/wire/wal/client"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

func entries(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return out
}

func mustAPIError(t *testing.T, err error, code string) *client.APIError {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	if ae.Code != code {
		t.Fatalf("error code %s (%v), want %s", ae.Code, err, code)
	}
	return ae
}

// TestClient exercises every call against a real node on each backend.
func TestClient(t *testing.T) {
	waltest.ForEachBackend(t, waltest.Options{}, func(t *testing.T, n *waltest.Node) {
		ctx := t.Context()
		c := n.Client
		if err := c.Health(ctx); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"orders", "orders.eu", "payments"} {
			if err := c.Create(ctx, name, nil); err != nil {
				t.Fatalf("create %s: %v", name, err)
			}
		}
		err := c.Create(ctx, "orders", nil)
		mustAPIError(t, err, client.CodeAlreadyExists)

		// Append, then a conditional append that fits and one that does not.
		r, err := c.Append(ctx, "orders", entries("a", 3))
		if err != nil || r != (client.Range{Start: 0, End: 3}) {
			t.Fatalf("append: %v %v", r, err)
		}
		r, err = c.AppendIf(ctx, "orders", entries("b", 2), 3)
		if err != nil || r != (client.Range{Start: 3, End: 5}) {
			t.Fatalf("conditional append at the end: %v %v", r, err)
		}
		_, err = c.AppendIf(ctx, "orders", entries("c", 1), 3)
		ae := mustAPIError(t, err, client.CodeConflict)
		if ae.EndOffset != 5 || ae.Status != http.StatusConflict {
			t.Fatalf("conflict: end %d status %d, want 5 and 409", ae.EndOffset, ae.Status)
		}
		// Empty and binary entries survive the round trip.
		bin := []byte{0, 1, 2, 0xff, '\n'}
		if _, err := c.Append(ctx, "orders", [][]byte{{}, bin, nil}); err != nil {
			t.Fatal(err)
		}

		// Read everything, then with limits.
		res, err := c.Read(ctx, "orders", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Concat(entries("a", 3), entries("b", 2), [][]byte{{}, bin, {}})
		if len(res.Entries) != len(want) || res.EndOffset != 8 {
			t.Fatalf("read %d entries, end %d; want %d, 8", len(res.Entries), res.EndOffset, len(want))
		}
		for i, e := range res.Entries {
			if e.Index != int64(i) || string(e.Data) != string(want[i]) || e.Key != nil {
				t.Errorf("entry %d: %+v, want data %q", i, e, want[i])
			}
		}
		res, err = c.Read(ctx, "orders", 2, &client.ReadOptions{MaxEntries: 2})
		if err != nil || len(res.Entries) != 2 || res.Entries[0].Index != 2 || res.Next(2) != 4 {
			t.Fatalf("read with max_entries: %+v %v", res, err)
		}
		res, err = c.Read(ctx, "orders", 0, &client.ReadOptions{MaxBytes: 1})
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("read with max_bytes 1 returns the first entry only: %+v %v", res, err)
		}
		res, err = c.Read(ctx, "orders", 8, nil)
		if err != nil || len(res.Entries) != 0 || res.Next(8) != 8 {
			t.Fatalf("read at the end: %+v %v", res, err)
		}

		// Describe and list.
		info, err := c.Describe(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "orders" || info.Kind != "wal" || info.StartOffset != 0 || info.EndOffset != 8 || info.Bytes < 0 ||
			time.Since(info.CreatedAt) > time.Hour || info.CreatedAt.IsZero() {
			t.Errorf("describe: %+v", info)
		}
		page, err := c.List(ctx, client.ListOptions{Prefix: "orders"})
		if err != nil || len(page.Logs) != 2 || page.Logs[0].Name != "orders" || page.Logs[1].Name != "orders.eu" || page.Next != "" {
			t.Fatalf("list by prefix: %+v %v", page, err)
		}
		page, err = c.List(ctx, client.ListOptions{Limit: 2})
		if err != nil || len(page.Logs) != 2 || page.Next != "orders.eu" {
			t.Fatalf("first page of 2: %+v %v", page, err)
		}
		page, err = c.List(ctx, client.ListOptions{Limit: 2, After: page.Next})
		if err != nil || len(page.Logs) != 1 || page.Logs[0].Name != "payments" || page.Next != "" {
			t.Fatalf("second page: %+v %v", page, err)
		}
		var names []string
		for l, err := range c.Logs(ctx, client.ListOptions{Limit: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, l.Name)
		}
		if !slices.Equal(names, []string{"orders", "orders.eu", "payments"}) {
			t.Errorf("Logs iterated %v", names)
		}

		// Trim, then reading below the start is out of range.
		start, err := c.Trim(ctx, "orders", 3)
		if err != nil || start != 3 {
			t.Fatalf("trim: %d %v", start, err)
		}
		_, err = c.Read(ctx, "orders", 0, nil)
		ae = mustAPIError(t, err, client.CodeOffsetOutOfRange)
		if ae.StartOffset != 3 || ae.EndOffset != 8 || ae.Status != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("out of range: %+v", ae)
		}
		res, err = c.Read(ctx, "orders", 3, &client.ReadOptions{MaxEntries: 1})
		if err != nil || len(res.Entries) != 1 || string(res.Entries[0].Data) != "b-0" {
			t.Fatalf("read at the new start: %+v %v", res, err)
		}
		_, err = c.Trim(ctx, "orders", 100)
		mustAPIError(t, err, client.CodeOffsetOutOfRange)

		// Delete.
		if err := c.Delete(ctx, "orders"); err != nil {
			t.Fatal(err)
		}
		_, err = c.Describe(ctx, "orders")
		mustAPIError(t, err, client.CodeNotFound)
		_, err = c.Append(ctx, "orders", entries("x", 1))
		if client.CodeOf(err) != client.CodeNotFound {
			t.Errorf("append to a deleted log: %v", err)
		}
		err = c.Delete(ctx, "orders")
		mustAPIError(t, err, client.CodeNotFound)
	})
}

// TestCreateStorage checks how properties.storage is judged.
func TestCreateStorage(t *testing.T) {
	own := wal.StorageIdentity{Scheme: "s3", Bucket: "mine", Endpoint: "http://minio:9000", Region: "us-east-1"}
	n := waltest.Start(t, waltest.Options{Server: func(c *wal.Config) { c.Storage = own }})
	ctx := t.Context()
	ok := []client.Storage{
		{Scheme: "s3", Bucket: "mine", Endpoint: "http://minio:9000", Region: "us-east-1", AccessKeyID: "k", SecretAccessKey: "s"},
		{Scheme: "S3", Bucket: "mine", Endpoint: "HTTP://MINIO:9000/"},
		{Bucket: "mine"},
		{},
	}
	for i, s := range ok {
		if err := n.Client.Create(ctx, fmt.Sprintf("ok-%d", i), &client.CreateOptions{Storage: &s}); err != nil {
			t.Errorf("create with %v: %v", s, err)
		}
	}
	bad := []client.Storage{
		{Scheme: "s3", Bucket: "theirs"},
		{Scheme: "s3", Bucket: "mine", Endpoint: "http://elsewhere:9000"},
		{Scheme: "fs"},
		{Bucket: "mine", Region: "eu-west-1"},
	}
	for i, s := range bad {
		err := n.Client.Create(ctx, fmt.Sprintf("bad-%d", i), &client.CreateOptions{Storage: &s})
		mustAPIError(t, err, client.CodePermissionDenied)
	}

	allowed := waltest.Start(t, waltest.Options{Server: func(c *wal.Config) { c.Storage = own; c.AllowPerLogStorage = true }})
	err := allowed.Client.Create(ctx, "elsewhere", &client.CreateOptions{Storage: &bad[0]})
	mustAPIError(t, err, client.CodeUnimplemented)

	// Config overrides reach the topic.
	if err := n.Client.Create(ctx, "short", &client.CreateOptions{Config: map[string]string{"retention.ms": "60000"}}); err != nil {
		t.Fatal(err)
	}
	err = n.Client.Create(ctx, "wrong", &client.CreateOptions{Config: map[string]string{"retention.ms": "soon"}})
	mustAPIError(t, err, client.CodeInvalidArgument)
}

// TestLongPoll checks that a read at the end parks until an append commits,
// and returns empty when the wait passes.
func TestLongPoll(t *testing.T) {
	waltest.ForEachBackend(t, waltest.Options{}, func(t *testing.T, n *waltest.Node) {
		ctx := t.Context()
		c := n.Client
		if err := c.Create(ctx, "lp", nil); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := c.Read(ctx, "lp", 0, &client.ReadOptions{Wait: 200 * time.Millisecond})
		if err != nil || len(res.Entries) != 0 || res.EndOffset != 0 {
			t.Fatalf("empty long poll: %+v %v", res, err)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("long poll returned after %v, before its wait", d)
		}

		got := make(chan client.ReadResult, 1)
		go func() {
			res, err := c.Read(ctx, "lp", 0, &client.ReadOptions{Wait: 20 * time.Second})
			if err != nil {
				t.Error(err)
			}
			got <- res
		}()
		time.Sleep(100 * time.Millisecond) // let it park
		if _, err := c.Append(ctx, "lp", entries("x", 1)); err != nil {
			t.Fatal(err)
		}
		select {
		case res := <-got:
			if len(res.Entries) != 1 || string(res.Entries[0].Data) != "x-0" {
				t.Fatalf("woken read: %+v", res)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("parked read not woken by the append")
		}
	})
}

// TestLongPollCapped checks that the server caps wait_ms at MaxWait.
func TestLongPollCapped(t *testing.T) {
	n := waltest.Start(t, waltest.Options{Server: func(c *wal.Config) { c.MaxWait = 100 * time.Millisecond }})
	ctx := t.Context()
	if err := n.Client.Create(ctx, "lp", nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := n.Client.Read(ctx, "lp", 0, &client.ReadOptions{Wait: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a wait of an hour capped at 100ms took %v", d)
	}
}

// TestTail follows a log while entries are appended.
func TestTail(t *testing.T) {
	waltest.ForEachBackend(t, waltest.Options{}, func(t *testing.T, n *waltest.Node) {
		ctx := t.Context()
		c := n.Client
		if err := c.Create(ctx, "tl", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Append(ctx, "tl", entries("old", 3)); err != nil {
			t.Fatal(err)
		}
		const total = 23
		go func() {
			for i := 3; i < total; i += 5 {
				if _, err := c.Append(ctx, "tl", entries(fmt.Sprint("new", i), 5)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		var got []int64
		for e, err := range c.Tail(ctx, "tl", 1, nil) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e.Index)
			if e.Index == total-1 {
				break
			}
		}
		for i, idx := range got {
			if idx != int64(i+1) {
				t.Fatalf("tail delivered %v, want 1..%d in order", got, total-1)
			}
		}

		// FromEnd sees only what comes after.
		tctx, cancel := context.WithCancel(ctx)
		defer cancel()
		first := make(chan client.Entry, 1)
		go func() {
			for e, err := range c.Tail(tctx, "tl", 0, &client.TailOptions{FromEnd: true}) {
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Error(err)
					}
					return
				}
				first <- e
				return
			}
		}()
		time.Sleep(200 * time.Millisecond)
		if _, err := c.Append(ctx, "tl", [][]byte{[]byte("latest")}); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-first:
			if e.Index != total || string(e.Data) != "latest" {
				t.Errorf("tail from the end got %+v", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("tail from the end saw nothing")
		}

		// Errors come as the iterator's last value.
		for _, err := range c.Tail(ctx, "ghost", 0, nil) {
			mustAPIError(t, err, client.CodeNotFound)
		}
		for _, err := range c.Tail(ctx, "tl", 999, nil) {
			mustAPIError(t, err, client.CodeOffsetOutOfRange)
		}
	})
}

// TestTailCancel checks that cancelling the context ends a tail with the
// context's error.
func TestTailCancel(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	if err := n.Client.Create(t.Context(), "tc", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	var last error
	for _, err := range n.Client.Tail(ctx, "tc", 0, nil) {
		last = err
	}
	if !errors.Is(last, context.DeadlineExceeded) {
		t.Fatalf("tail ended with %v, want the context's deadline", last)
	}
}

// TestTailEndsOnClose checks that closing the server ends tail streams
// cleanly, with ErrStreamEnded, and promptly.
func TestTailEndsOnClose(t *testing.T) {
	n := waltest.Start(t, waltest.Options{})
	ctx := t.Context()
	if err := n.Client.Create(ctx, "te", nil); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		var last error
		for e, err := range n.Client.Tail(ctx, "te", 0, nil) {
			if err != nil {
				last = err
				break
			}
			if e.Index == 0 {
				close(started)
			}
		}
		ended <- last
	}()
	if _, err := n.Client.Append(ctx, "te", entries("x", 1)); err != nil {
		t.Fatal(err)
	}
	<-started
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := n.Server.Close(closeCtx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("close took %v with a tail open", d)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, client.ErrStreamEnded) {
			t.Fatalf("tail ended with %v, want ErrStreamEnded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail still open after Close")
	}
}

// TestTailClientGoesAway checks that a stream whose client disconnects
// stops on the server: its parked fetch is not renewed.
func TestTailClientGoesAway(t *testing.T) {
	n := waltest.Start(t, waltest.Options{Server: func(c *wal.Config) { c.TailHeartbeat = 50 * time.Millisecond }})
	ctx := t.Context()
	if err := n.Client.Create(ctx, "tg", nil); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n.Client.Tail(tctx, "tg", 0, nil) {
		}
	}()
	waitParked := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if got := parkedReaders(t, n); got == want {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("parked readers %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitParked(1)
	cancel()
	<-done
	waitParked(0)
}

// parkedReaders reads the broker's parked-readers gauge from /metrics.
func parkedReaders(t *testing.T, n *waltest.Node) float64 {
	t.Helper()
	status, body := n.Do(t, "GET", "/metrics", "")
	if status != 200 {
		t.Fatalf("metrics: %d", status)
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, "morax_parked_readers "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("no morax_parked_readers in /metrics")
	return 0
}

// TestErrorKinds checks that a JSON error body becomes *APIError and
// anything else *StatusError.
func TestErrorKinds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/read":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"code": "Unexpected", "message": "boom"}`)
		case "/v1/append":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		case "/v1/health":
			io.WriteString(w, "not ok")
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"unrelated": true}`)
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err = c.Read(ctx, "x", 0, nil)
	ae := mustAPIError(t, err, client.CodeUnexpected)
	if ae.Message != "boom" || ae.Status != 500 || ae.Temporary() {
		t.Errorf("API error: %+v", ae)
	}
	_, err = c.Append(ctx, "x", entries("a", 1))
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadGateway || !strings.Contains(se.Body, "Bad Gateway") {
		t.Errorf("HTML error: %v (%T)", err, err)
	}
	var ae2 *client.APIError
	if errors.As(err, &ae2) {
		t.Errorf("an HTML error is not an APIError")
	}
	if _, err = c.Describe(ctx, "x"); !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("JSON without a code: %v (%T)", err, err)
	}
	if err := c.Health(ctx); !errors.As(err, &se) {
		t.Errorf("health answering %q: %v", "not ok", err)
	}
}

// TestWaitHealthy checks the retry loop of WaitHealthy.
func TestWaitHealthy(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 4 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "OK")
	}))
	defer srv.Close()
	c, err := client.New(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.Health(ctx); err == nil {
		t.Fatal("first health check passed; the server fails three times")
	}
	if err := c.WaitHealthy(ctx, client.Backoff{Initial: time.Millisecond, Attempts: 2}); err == nil {
		t.Fatal("two attempts were enough; the server fails three times")
	}
	if err := c.WaitHealthy(ctx, client.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	down, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := down.WaitHealthy(sctx, client.Backoff{Initial: time.Millisecond}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitHealthy on a dead endpoint: %v", err)
	}
}

// TestNew checks endpoint validation.
func TestNew(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:8848", "ftp://host", "http://", "::"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	c, err := client.New("http://host:1/base/")
	if err != nil || c.Endpoint() != "http://host:1/base" {
		t.Fatalf("New with a path: %v %v", c, err)
	}
	s := client.Storage{SecretAccessKey: "hunter2"}
	if strings.Contains(fmt.Sprint(s), "hunter2") || strings.Contains(fmt.Sprintf("%#v", s), "hunter2") {
		t.Error("Storage prints its secret")
	}
}
