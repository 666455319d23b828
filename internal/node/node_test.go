package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/objstore"
)

// embeddedConfig is the embedded default in a temp dir, listening on ports
// the system picks.
func embeddedConfig(t *testing.T) config.Config {
	t.Helper()
	c := config.Default()
	c.DataDir = t.TempDir()
	c.Server.KafkaBroker.ListenAddr = "127.0.0.1:0"
	c.Server.WALBroker.ListenAddr = "127.0.0.1:0"
	return c
}

// testLogger logs at debug level into a buffer the test can search.
func testLogger() (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// unusedAddr returns a loopback address nothing listens on now.
func unusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// assertFree fails unless addr can be bound again, i.e. the node closed
// its listener there.
func assertFree(t *testing.T, what, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("%s port %s still bound: %v", what, addr, err)
		return
	}
	l.Close()
}

// assertNoNodeGoroutines fails if, after a grace period, a goroutine runs
// code of the broker or the servers: their loops end only when the part
// that started them is closed.
func assertNoNodeGoroutines(t *testing.T) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		left = left[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "github.com/morax-dev/morax/actors.") || strings.Contains(g, "github.com/morax-dev/morax/wire/") {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, g := range left {
		t.Errorf("goroutine of the node still running:\n%s", g)
	}
}

// A WAL listen address in use fails New after the broker started and the
// Kafka listener was bound: New returns the error and stops what it built,
// so the Kafka port is free, the broker's loops have ended and the data
// directory is unlocked.
func TestNewStopsWhatItBuiltWhenWALPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := embeddedConfig(t)
	kafkaAddr := unusedAddr(t)
	cfg.Server.KafkaBroker.ListenAddr = kafkaAddr
	cfg.Server.WALBroker.ListenAddr = taken.Addr().String()
	logger, logs := testLogger()

	n, err := New(t.Context(), cfg, logger)
	if err == nil {
		n.Close(context.Background())
		t.Fatal("New succeeded on a WAL address in use")
	}
	if n != nil || !strings.Contains(err.Error(), "wal listener") {
		t.Fatalf("New = %v, %v; want nil and the WAL listener's error", n, err)
	}
	assertFree(t, "kafka", kafkaAddr)
	assertNoNodeGoroutines(t)
	release, err := lockDataDir(cfg.DataDir)
	if err != nil {
		t.Errorf("data dir still locked: %v", err)
	} else if release != nil {
		release()
	}
	// Every part built was stopped, last first.
	var order []string
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if _, part, ok := strings.Cut(line, "msg=stopped part="); ok {
			order = append(order, strings.Trim(part, `"`))
		}
	}
	want := []string{"wal server", "kafka server", "group coordinator", "broker", "object store", "metadata store", "data dir lock"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("stopped %q, want %q\nlogs:\n%s", order, want, logs)
	}
}

// A second node on a data directory in use is refused before it opens
// anything.
func TestNewRefusesDataDirInUse(t *testing.T) {
	cfg := embeddedConfig(t)
	release, err := lockDataDir(cfg.DataDir)
	if err != nil || release == nil {
		t.Fatalf("lock the data dir: release %v, err %v (the node relies on this lock on every platform it runs on)", release != nil, err)
	}
	defer release()
	_, err = New(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "in use by another morax process") {
		t.Fatalf("New on a locked data dir = %v", err)
	}
}

// New, Run and a cancel on the embedded default: the node serves, Run
// returns nil, and its ports, goroutines and data directory are released
// (a second node starts on the same directory and ports).
func TestRunStopsOnCancel(t *testing.T) {
	cfg := embeddedConfig(t)
	for run := range 2 {
		logger, logs := testLogger()
		n, err := New(t.Context(), cfg, logger)
		if err != nil {
			t.Fatalf("run %d: New: %v", run, err)
		}
		kafkaAddr, walAddr := n.KafkaAddr().String(), n.WALAddr().String()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()

		waitHealthy(t, walAddr)
		c, err := net.DialTimeout("tcp", kafkaAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("kafka port: %v", err)
		}
		c.Close()

		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: Run after cancel = %v\nlogs:\n%s", run, err, logs)
			}
		case <-time.After(cfg.Server.ShutdownTimeout.Duration() + 5*time.Second):
			t.Fatalf("run %d: Run still running after cancel\nlogs:\n%s", run, logs)
		}
		assertFree(t, "kafka", kafkaAddr)
		assertFree(t, "wal", walAddr)
		assertNoNodeGoroutines(t)
		if err := n.Run(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("Run on a stopped node = %v, want ErrClosed", err)
		}
		// The next run takes the same ports.
		cfg.Server.KafkaBroker.ListenAddr, cfg.Server.WALBroker.ListenAddr = kafkaAddr, walAddr
	}
}

// A node on PostgreSQL and MinIO runs protoactor remote and registers in
// the nodes table; it stops as cleanly as an embedded one.
func TestRunStopsOnCancelClustered(t *testing.T) {
	cfg := embeddedConfig(t)
	cfg.Server.Meta.ServiceURL = config.SecretURL(itest.PostgresURL(t))
	s3 := itest.S3(t)
	cfg.Storage = config.Default().Storage
	cfg.Storage.Scheme, cfg.Storage.Bucket, cfg.Storage.Region = config.SchemeS3, "t-"+itest.RandomName(10), s3.Region
	cfg.Storage.Endpoint, cfg.Storage.PathStyle = s3.Endpoint, true
	cfg.Storage.AccessKeyID, cfg.Storage.SecretAccessKey = s3.AccessKey, config.Secret(s3.SecretKey)
	cfg.Cluster.RemoteListenAddr = unusedAddr(t)
	bucket, err := objstore.NewS3(t.Context(), s3Config(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	bucket.Close()

	logger, logs := testLogger()
	n, err := New(t.Context(), cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if n.RemoteAddr() == "" {
		t.Error("clustered node has no remote address")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitHealthy(t, n.WALAddr().String())
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v\nlogs:\n%s", err, logs)
		}
	case <-time.After(cfg.Server.ShutdownTimeout.Duration() + 5*time.Second):
		t.Fatalf("Run still running after cancel\nlogs:\n%s", logs)
	}
	assertFree(t, "kafka", n.KafkaAddr().String())
	assertFree(t, "wal", n.WALAddr().String())
	assertFree(t, "remote", cfg.Cluster.RemoteListenAddr)
	assertNoNodeGoroutines(t)
}

// waitHealthy waits for the WAL API at addr to answer its health check.
func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/v1/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAL API at %s never healthy: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
