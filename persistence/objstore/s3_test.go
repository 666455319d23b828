package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/persistence/objstore/objstoretest"
)

// s3Config returns a config for a fresh bucket on the dev MinIO server.
func s3Config(t *testing.T) objstore.S3Config {
	t.Helper()
	c := itest.S3(t)
	return objstore.S3Config{
		Bucket:          "t-" + itest.RandomName(10),
		Region:          c.Region,
		Endpoint:        c.Endpoint,
		AccessKeyID:     c.AccessKey,
		SecretAccessKey: c.SecretKey,
		PathStyle:       true,
		RequestTimeout:  30 * time.Second,
		MaxAttempts:     3,
	}
}

// openS3 opens cfg, creates its bucket and removes the bucket when the test
// ends, so the shared dev server does not fill up with test buckets.
func openS3(t *testing.T, cfg objstore.S3Config, wrap func(http.RoundTripper) http.RoundTripper) *objstore.S3 {
	t.Helper()
	s, err := objstore.NewS3WithTransport(t.Context(), cfg, wrap)
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	if err := s.EnsureBucket(t.Context()); err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
	t.Cleanup(func() { removeBucket(t, s) })
	return s
}

func removeBucket(t *testing.T, s *objstore.S3) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := s.Client()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket())})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Logf("cleanup: list %s: %v", s.Bucket(), err)
			return
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket()), Key: o.Key}); err != nil {
				t.Logf("cleanup: delete %s: %v", aws.ToString(o.Key), err)
			}
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(s.Bucket())}); err != nil {
		t.Logf("cleanup: delete bucket %s: %v", s.Bucket(), err)
	}
}

func TestS3Acceptance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return openS3(t, s3Config(t), nil) })
}

// TestS3AcceptanceWithPrefix checks that a key prefix is invisible: the
// suite's listings and ranges must come out the same.
func TestS3AcceptanceWithPrefix(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		cfg := s3Config(t)
		cfg.Prefix = "cluster-1/"
		return openS3(t, cfg, nil)
	})
}

func TestS3Prefix(t *testing.T) {
	cfg := s3Config(t)
	whole := openS3(t, cfg, nil)
	cfg.Prefix = "tenant-a/"
	a, err := objstore.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := a.Put(ctx, "seg/1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := whole.Put(ctx, "seg/2", []byte("outside the prefix")); err != nil {
		t.Fatal(err)
	}
	// The prefix is really prepended on the server...
	got, err := whole.Get(ctx, "tenant-a/seg/1", 0, -1)
	if err != nil || string(got) != "one" {
		t.Fatalf("Get(tenant-a/seg/1) without prefix = %q, %v", got, err)
	}
	// ...and invisible through the prefixed store.
	var keys []string
	if err := a.List(ctx, "", func(o objstore.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "seg/1" {
		t.Fatalf("prefixed List = %q, want [seg/1]", keys)
	}
	if _, err := a.Get(ctx, "seg/2", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("prefixed Get of an unprefixed key = %v, want ErrNotFound", err)
	}
	if err := a.Delete(ctx, "seg/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := whole.Get(ctx, "tenant-a/seg/1", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("after prefixed Delete, Get = %v, want ErrNotFound", err)
	}
}

// loseFirstPut stores the first PUT it sees on the server but tells the
// client 503, as when a response is lost after the write happened; the SDK
// then retries a request whose object already exists.
type loseFirstPut struct {
	next http.RoundTripper
	lost atomic.Bool
}

func (l *loseFirstPut) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodPut || !strings.Contains(req.URL.Path, "/lost/") || !l.lost.CompareAndSwap(false, true) {
		return resp, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return &http.Response{
		Status:     "503 Service Unavailable",
		StatusCode: http.StatusServiceUnavailable,
		Proto:      resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header:  http.Header{"Content-Type": {"application/xml"}},
		Body:    io.NopCloser(strings.NewReader(`<Error><Code>SlowDown</Code><Message>injected</Message></Error>`)),
		Request: req,
	}, nil
}

func TestS3PutRetryAfterLostResponse(t *testing.T) {
	var rt *loseFirstPut
	s := openS3(t, s3Config(t), func(next http.RoundTripper) http.RoundTripper {
		rt = &loseFirstPut{next: next}
		return rt
	})
	data := bytes.Repeat([]byte("segment"), 1000)
	if err := s.Put(t.Context(), "lost/1", data); err != nil {
		t.Fatalf("Put whose first response was lost = %v, want nil (the retry finds our own object)", err)
	}
	if !rt.lost.Load() {
		t.Fatal("the transport did not lose a response; the test proved nothing")
	}
	got, err := s.Get(t.Context(), "lost/1", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %d bytes, %v", len(got), err)
	}
	// Without a lost response, identical content is still refused.
	if err := s.Put(t.Context(), "lost/1", data); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("second Put = %v, want ErrExists", err)
	}
}

func TestS3LostResponseOtherContent(t *testing.T) {
	// The first attempt of the second Put is lost after storing nothing new
	// (412), so the retry sees someone else's object: ErrExists, not success.
	var rt *loseFirstPut
	s := openS3(t, s3Config(t), func(next http.RoundTripper) http.RoundTripper {
		rt = &loseFirstPut{next: next}
		rt.lost.Store(true) // armed below
		return rt
	})
	if err := s.Put(t.Context(), "lost/2", []byte("theirs")); err != nil {
		t.Fatal(err)
	}
	rt.lost.Store(false)
	if err := s.Put(t.Context(), "lost/2", []byte("ours")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("Put over another object = %v, want ErrExists", err)
	}
}

func TestS3MissingBucket(t *testing.T) {
	cfg := s3Config(t)
	s, err := objstore.NewS3(t.Context(), cfg) // no EnsureBucket
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A missing bucket is misconfiguration, never "no such object".
	if _, err := s.Get(t.Context(), "k", 0, -1); err == nil || errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get in a missing bucket = %v, want an error other than ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), "k"); err == nil {
		t.Fatalf("Delete in a missing bucket succeeded")
	}
	if err := s.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeBucket(t, s) })
	if err := s.EnsureBucket(t.Context()); err != nil {
		t.Fatalf("second EnsureBucket: %v", err)
	}
}

func TestS3ManyConcurrentPuts(t *testing.T) {
	s := openS3(t, s3Config(t), nil)
	errs := make(chan error, 32)
	data := bytes.Repeat([]byte{1}, 256<<10)
	for i := range cap(errs) {
		go func() { errs <- s.Put(t.Context(), fmt.Sprintf("many/%02d", i), data) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestS3ConfigRedactsSecret(t *testing.T) {
	c := objstore.S3Config{Bucket: "b", AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "very-secret"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", &c)} {
		if strings.Contains(s, "very-secret") {
			t.Fatalf("formatted config leaks the secret: %s", s)
		}
	}
}
