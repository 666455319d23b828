package actors_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/litemeta"
	"github.com/morax-dev/morax/persistence/meta/pgmeta"
	"github.com/morax-dev/morax/persistence/objstore"
)

// Environment of the crash child: the test binary re-executed as a broker
// that appends until it is killed.
const (
	envCrashChild  = "MORAX_CRASH_CHILD"
	envCrashDir    = "MORAX_CRASH_DIR"
	envCrashPG     = "MORAX_CRASH_PG"
	envCrashBucket = "MORAX_CRASH_BUCKET"
	envCrashRound  = "MORAX_CRASH_ROUND"
	crashTopic     = "crash"
	crashParts     = 3
)

func TestMain(m *testing.M) {
	if os.Getenv(envCrashChild) == "1" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// slowCommits delays every flush commit, widening the window between an
// object's upload and its commit so that kills land there too.
type slowCommits struct {
	meta.Store
	delay time.Duration
}

func (s slowCommits) CommitFlushes(ctx context.Context, cs []meta.FlushCommit) ([]error, error) {
	time.Sleep(s.delay)
	return s.Store.CommitFlushes(ctx, cs)
}

// crashChild appends from four goroutines and prints a line per
// acknowledged record: "ACK partition offset value". It never stops by
// itself; the parent kills it.
func crashChild() int {
	ctx := context.Background()
	var store meta.Store
	var objects objstore.Store
	var err error
	if url := os.Getenv(envCrashPG); url != "" {
		store, err = pgmeta.Open(ctx, url)
		if err == nil {
			objects, err = objstore.NewS3(ctx, objstore.S3Config{
				Bucket: os.Getenv(envCrashBucket), Region: os.Getenv(itest.EnvS3Region), Endpoint: os.Getenv(itest.EnvS3Endpoint),
				AccessKeyID: os.Getenv(itest.EnvS3AccessKey), SecretAccessKey: os.Getenv(itest.EnvS3SecretKey), PathStyle: true,
			})
		}
	} else {
		dir := os.Getenv(envCrashDir)
		store, err = litemeta.Open(ctx, filepath.Join(dir, "meta.db"))
		if err == nil {
			objects, err = objstore.NewFS(filepath.Join(dir, "objects"))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	opts := crashOptions()
	opts.Metrics = nil
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b, err := actors.New(opts, slowCommits{Store: store, delay: 3 * time.Millisecond}, objects)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	tp, err := b.CreateTopic(ctx, meta.Topic{Name: crashTopic, Partitions: crashParts})
	if errors.Is(err, actors.ErrTopicExists) {
		tp, err = b.Topic(ctx, crashTopic)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	round := os.Getenv(envCrashRound)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				v := fmt.Sprintf("r%s-w%d-%d", round, w, i)
				part := int32(i % crashParts)
				r, err := b.Append(ctx, tp, part, batchOf(nil, v), -1)
				if err != nil || r.Err != nil {
					// Not acknowledged: the parent expects nothing. Until
					// the killed incarnation's leases expire every append
					// is refused; do not spin on them.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu.Lock()
				fmt.Fprintf(out, "ACK %d %d %s\n", part, r.BaseOffset, v)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

// TestCrashSafety runs a broker as a child process that appends
// continuously, kills it with SIGKILL at random moments (the child delays
// commits so that kills also land between an upload and its commit),
// restarts it, and finally checks that every acknowledged record is stored
// exactly once at the offset it was acknowledged with, offsets dense.
func TestCrashSafety(t *testing.T) {
	for _, be := range []string{"embedded", "pg+minio"} {
		t.Run(be, func(t *testing.T) {
			env := append(os.Environ(), envCrashChild+"=1")
			var open func(t testing.TB) backend
			switch be {
			case "embedded":
				dir := t.TempDir()
				env = append(env, envCrashDir+"="+dir)
				open = func(t testing.TB) backend {
					store, err := litemeta.Open(context.Background(), filepath.Join(dir, "meta.db"))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { store.Close() })
					objects, err := objstore.NewFS(filepath.Join(dir, "objects"))
					if err != nil {
						t.Fatal(err)
					}
					return backend{name: be, meta: store, objects: objects}
				}
			default:
				url := itest.PostgresURL(t)
				s3 := itest.S3(t)
				bucket := "t-" + itest.RandomName(10)
				objects, err := objstore.NewS3(context.Background(), objstore.S3Config{Bucket: bucket, Region: s3.Region,
					Endpoint: s3.Endpoint, AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey, PathStyle: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := objects.EnsureBucket(context.Background()); err != nil {
					t.Fatal(err)
				}
				env = append(env, envCrashPG+"="+url, envCrashBucket+"="+bucket)
				open = func(t testing.TB) backend {
					store, err := pgmeta.Open(context.Background(), url)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { store.Close() })
					return backend{name: be, meta: store, objects: objects}
				}
			}
			acked := map[int32]map[int64]string{}
			for round := range 6 {
				lines := runAndKill(t, env, round, time.Duration(50+rand.IntN(1200))*time.Millisecond)
				for _, l := range lines {
					f := strings.Fields(l)
					if len(f) != 4 || f[0] != "ACK" {
						continue
					}
					p, _ := strconv.Atoi(f[1])
					off, _ := strconv.ParseInt(f[2], 10, 64)
					if acked[int32(p)] == nil {
						acked[int32(p)] = map[int64]string{}
					}
					if prev, ok := acked[int32(p)][off]; ok && prev != f[3] {
						t.Fatalf("partition %d offset %d acknowledged as %q and %q", p, off, prev, f[3])
					}
					acked[int32(p)][off] = f[3]
				}
			}
			total := 0
			for _, m := range acked {
				total += len(m)
			}
			if total < 20 {
				t.Fatalf("only %d records acknowledged across all rounds; the test proves nothing", total)
			}
			bk := open(t)
			opts := crashOptions()
			opts.OrphanMinAge = time.Millisecond
			b := startBroker(t, bk, opts)
			tp, err := b.Topic(context.Background(), crashTopic)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.SweepOrphans(context.Background()); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			for p := range int32(crashParts) {
				// The killed incarnation's lease must expire first.
				waitServed(t, b, tp, p)
				recs := readAll(t, b, tp, p, 0) // fails on any offset gap
				seen := map[string]int64{}
				for _, r := range recs {
					if prev, dup := seen[string(r.Value)]; dup {
						t.Fatalf("partition %d: %q stored at %d and %d", p, r.Value, prev, r.Offset)
					}
					seen[string(r.Value)] = r.Offset
				}
				for off, v := range acked[p] {
					got, ok := seen[v]
					if !ok {
						t.Fatalf("partition %d: acknowledged %q at %d is lost", p, v, off)
					}
					if got != off {
						t.Fatalf("partition %d: acknowledged %q at %d, stored at %d", p, v, off, got)
					}
				}
			}
			t.Logf("%s: %d acknowledged records survived 6 SIGKILLs", be, total)
		})
	}
}

// crashOptions are the child's and the checking parent's options: one node
// id across incarnations, and a short lease so that each new incarnation
// waits little for the killed one's leases to expire.
func crashOptions() actors.Options {
	o := testOptions("crash-node")
	o.LeaseTTL = time.Second
	return o
}

// waitServed waits until b serves partition p (its lease is b's), failing
// the test after a bound well past any lease expiry.
func waitServed(t *testing.T, b *actors.Broker, tp meta.Topic, p int32) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := b.ListOffsets(context.Background(), tp, p, actors.LatestTimestamp)
		if err == nil {
			return
		}
		if !errors.Is(err, actors.ErrNotOwner) || time.Now().After(deadline) {
			t.Fatalf("partition %d not served: %v", p, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runAndKill starts the crash child, lets it append for d after its first
// acknowledgement, kills it with SIGKILL and returns what it printed.
func runAndKill(t *testing.T, env []string, round int, d time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(env, envCrashRound+"="+strconv.Itoa(round))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	done := make(chan struct{})
	first := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if len(lines) == 0 {
				close(first)
			}
			lines = append(lines, sc.Text())
		}
	}()
	// Kill at a random moment after appends are flowing; a child that
	// cannot append within a minute fails the test below.
	select {
	case <-first:
	case <-time.After(time.Minute):
	}
	time.Sleep(d)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	_ = cmd.Wait()
	if len(lines) == 0 {
		t.Fatalf("round %d: child acknowledged nothing; stderr: %s", round, stderr.String())
	}
	return lines
}
