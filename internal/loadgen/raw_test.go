package loadgen

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/objstore"
)

// countObjects lists what is left under the raw benchmark's prefix.
func countObjects(t *testing.T, s objstore.Store) int {
	t.Helper()
	n := 0
	if err := s.List(context.Background(), rawKeyPrefix+"/", func(objstore.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func checkRawPut(t *testing.T, s objstore.Store) {
	t.Helper()
	res, err := RawPut(t.Context(), s, "test", RawOptions{Duration: 300 * time.Millisecond, Concurrency: 3, ObjectSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindRawS3 || res.Ops == 0 || res.Bytes != res.Ops*64<<10 || res.MiBPerSec <= 0 || len(res.Errors) != 0 {
		t.Errorf("result %+v", res)
	}
	if res.Latency.Count != uint64(res.Ops) || res.Latency.P50Ms <= 0 {
		t.Errorf("latency %+v for %d PUTs", res.Latency, res.Ops)
	}
	if n := countObjects(t, s); n != 0 {
		t.Errorf("%d benchmark objects left behind", n)
	}
}

func TestRawPutFS(t *testing.T) {
	s, err := objstore.NewFS(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkRawPut(t, s)
	if _, err := RawPut(t.Context(), s, "test", RawOptions{Duration: time.Second}); err == nil {
		t.Error("zero concurrency accepted")
	}
}

func TestRawPutMinIO(t *testing.T) {
	c := itest.S3(t)
	s, err := objstore.NewS3(t.Context(), objstore.S3Config{
		Bucket: "t-" + itest.RandomName(10), Region: c.Region, Endpoint: c.Endpoint,
		AccessKeyID: c.AccessKey, SecretAccessKey: c.SecretKey, PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkRawPut(t, s)
}

func TestRawCommitPostgres(t *testing.T) {
	url := itest.PostgresURL(t)
	res, err := RawCommit(t.Context(), url, RawOptions{Duration: 300 * time.Millisecond, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindRawPG || res.Ops == 0 || res.OpsPerSec <= 0 || len(res.Errors) != 0 || res.Latency.Count != uint64(res.Ops) {
		t.Errorf("result %+v", res)
	}
	// The table is dropped: a second run starts clean and leaves nothing.
	if _, err := RawCommit(t.Context(), url, RawOptions{Duration: 50 * time.Millisecond, Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := RawCommit(t.Context(), "postgres://nobody@127.0.0.1:1/x?connect_timeout=2", RawOptions{Duration: time.Second, Concurrency: 1}); err == nil ||
		!strings.Contains(err.Error(), "connect") {
		t.Errorf("unreachable server: %v", err)
	}
}
