package suite

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/internal/clustertest"
	"github.com/morax-dev/morax/internal/faults"
	"github.com/morax-dev/morax/internal/history"
	"github.com/morax-dev/morax/internal/itest"
)

// shutdownTimeout is the longest a node on the default configuration takes
// to stop gracefully.
var shutdownTimeout = config.Default().Server.ShutdownTimeout.Duration()

// rssBound is the generous ceiling on a node's resident memory while a
// backend is away: buffers, caches and mailboxes are bounded, so a node
// that grows past it holds on to what it cannot flush.
const rssBound = 768 << 20

// env is a cluster on private backends reached through fault proxies.
type env struct {
	t       testing.TB
	pg      *faults.Postgres
	minio   *faults.MinIO
	pgProxy *faults.Proxy
	s3Proxy *faults.Proxy
	c       *clustertest.Cluster
}

// newEnv starts a private PostgreSQL and MinIO, a proxy in front of each,
// and nodes node1..node<nodes> configured to reach the backends through
// the proxies. Everything goes with the test.
func newEnv(t testing.TB, nodes int) *env {
	t.Helper()
	// The binaries of the private servers: skipped without them, failed
	// under MORAX_REQUIRE_INTEGRATION=1 (CI), like every integration test.
	itest.Need(t, faults.EnvPostgresBin)
	itest.Need(t, faults.EnvMinIOBin)
	e := &env{t: t}
	// Node logs are kept for a failed run: a fault that shows once in
	// many runs must be diagnosable from that run (the tail the cluster
	// prints is 150 lines). Passed runs leave nothing.
	if os.Getenv(clustertest.EnvLogDir) == "" {
		dir, err := os.MkdirTemp("", "morax-faults-logs-")
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(clustertest.EnvLogDir, dir)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("node logs kept in %s", dir)
				return
			}
			os.RemoveAll(dir)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pg, err := faults.StartPostgres(ctx)
	if err != nil {
		t.Fatalf("private postgres: %v", err)
	}
	t.Cleanup(pg.Close)
	e.pg = pg
	m, err := faults.StartMinIO()
	if err != nil {
		t.Fatalf("private minio: %v", err)
	}
	t.Cleanup(m.Close)
	e.minio = m
	if e.pgProxy, err = faults.NewProxy("postgres", pg.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pgProxy.Close)
	if e.s3Proxy, err = faults.NewProxy("minio", m.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.s3Proxy.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("private postgres log: %s; minio log: %s (removed with the test)", pg.LogPath(), m.LogPath())
		}
	})
	e.c = clustertest.NewWithBackends(t, shutdownTimeout, clustertest.Backends{
		PostgresURL: pg.URL(pg.Addr()),
		S3: itest.S3Config{Endpoint: "http://" + m.Addr(), AccessKey: faults.MinIOAccessKey,
			SecretKey: faults.MinIOSecretKey, Region: "us-east-1"},
		NodePostgresURL: pg.URL(e.pgProxy.Addr()),
		NodeS3Endpoint:  "http://" + e.s3Proxy.Addr(),
		PrivateStore:    true,
	})
	for i := 1; i <= nodes; i++ {
		e.c.AddNode(fmt.Sprintf("node%d", i))
	}
	return e
}

// load is the mixed recorded load of one scenario.
type load struct {
	e          *env
	rec        *history.Recorder
	topic, wal string
	partitions int32
	works      []*clustertest.Recorded
}

// loadShape is how much load a scenario puts on the cluster.
type loadShape struct {
	partitions   int32
	producers    int
	produceEvery time.Duration
	walEvery     time.Duration // per appender; one appender through each node
	groupMembers int
	// recordReads records every record the group reads (checked against
	// the logs and by Porcupine); the soak leaves them out, or its history
	// would not fit in memory.
	recordReads bool
}

// shortLoad is steady traffic on every partition and log that two shared
// cores carry next to three nodes and the backends, under -race.
var shortLoad = loadShape{partitions: 6, producers: 2, produceEvery: 20 * time.Millisecond, walEvery: 50 * time.Millisecond, groupMembers: 1, recordReads: true}

// startLoad creates a topic and a WAL log named after name and starts the
// recorded workloads on them.
func (e *env) startLoad(t testing.TB, name string, shape loadShape) *load {
	t.Helper()
	l := &load{e: e, rec: history.NewRecorder(), topic: name, wal: name + "-wal", partitions: shape.partitions}
	e.c.CreateTopic(l.topic, l.partitions)
	e.c.CreateWAL(l.wal)
	l.works = append(l.works, e.c.StartRecordedProducers(l.rec, l.topic, l.partitions, shape.producers, shape.produceEvery))
	l.works = append(l.works, e.c.StartRecordedWAL(l.rec, l.wal, e.c.Nodes(), shape.walEvery))
	for i := range shape.groupMembers {
		l.works = append(l.works, e.c.StartRecordedGroup(l.rec, name+"-group", l.topic, i, shape.recordReads))
	}
	return l
}

// logs are the history logs the load appends to.
func (l *load) logs() []string {
	out := []string{clustertest.WALLogName(l.wal)}
	for p := range l.partitions {
		out = append(out, clustertest.KafkaLog(l.topic, p))
	}
	return out
}

// waitAllAcked waits until every log has an append acknowledged at or
// after since (recorder time) and returns when the last of them was, or
// fails the test after timeout: the cluster must serve again by itself.
func (l *load) waitAllAcked(t testing.TB, since time.Duration, timeout time.Duration, what string) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		first := l.rec.FirstAckAfter(since)
		var missing []string
		var last time.Duration
		for _, lg := range l.logs() {
			at, ok := first[lg]
			if !ok {
				missing = append(missing, lg)
				continue
			}
			last = max(last, at)
		}
		if len(missing) == 0 {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no append acknowledged on %v within %s: the cluster did not recover without a restart", what, missing, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCommits waits until the consumer group has committed offsets, or
// fails the test after timeout.
func (l *load) waitCommits(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for l.rec.Commits() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the consumer group committed nothing within %s on a healthy cluster", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finish stops the load, reads every log back and checks the history: the
// direct checks and Porcupine, no error an outage may not cause, no
// success inside an outage window, and the segments table's invariants.
// outage is a window in which no append can succeed, nor a group commit
// when pgAway.
type outage struct {
	window [2]time.Duration
	pgAway bool
}

func (l *load) finish(t testing.TB, outages []outage) history.Result {
	t.Helper()
	for _, w := range l.works {
		for _, bad := range w.Stop() {
			t.Errorf("%s: %s", w, bad)
		}
	}
	// Every node up for the read-back and the segment check.
	for _, n := range l.e.c.Nodes() {
		if n.Paused() {
			n.Resume()
		}
		if !n.Running() {
			n.Start()
		}
	}
	l.e.c.RecordFinal(l.rec, l.topic, l.partitions, l.wal)
	h := l.rec.History()
	began := time.Now()
	res := history.Check(h, history.Options{Timeout: 2 * time.Minute, MaxOps: 40000})
	for i, p := range res.Problems {
		if i == 30 {
			t.Errorf("... %d problems in all", len(res.Problems))
			break
		}
		t.Errorf("history: %s", p)
	}
	unknown := 0
	for lg, r := range res.Linearizable {
		if r == porcupine.Unknown {
			unknown++
			t.Logf("history: %s: linearizability not decided (search too long); the direct checks still ran", lg)
		}
	}
	for _, w := range outages {
		kinds := []history.Kind{history.Append}
		if w.pgAway {
			kinds = append(kinds, history.Commit)
		}
		for _, o := range h.SucceededWithin(w.window[0], w.window[1], kinds...) {
			t.Errorf("false success: %s succeeded entirely inside the outage [%s, %s]", o, w.window[0], w.window[1])
		}
	}
	t.Logf("history: %s; %d acknowledged appends, %d records read back, %d logs linearizable (%d undecided), checked in %s",
		h.Counts(), res.Acked, res.Entries, len(res.Linearizable)-unknown, unknown, time.Since(began).Round(time.Millisecond))
	l.e.c.CheckSegments()
	return res
}

// rssSampler samples the resident memory of every running node.
type rssSampler struct {
	e    *env
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	max  map[string]int64
	// series per node, for the soak's flatness check.
	series map[string][]int64
	err    error
}

// sampleRSS starts sampling every every until stop.
func (e *env) sampleRSS(every time.Duration) *rssSampler {
	s := &rssSampler{e: e, stop: make(chan struct{}), done: make(chan struct{}), max: map[string]int64{}, series: map[string][]int64{}}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			for _, n := range e.c.Nodes() {
				pid := n.PID()
				if pid == 0 || !n.Running() {
					continue
				}
				rss, err := faults.RSS(pid)
				s.mu.Lock()
				if err != nil {
					// A node dying between PID and the read: not a
					// finding.
					s.err = err
				} else {
					s.max[n.ID()] = max(s.max[n.ID()], rss)
					s.series[n.ID()] = append(s.series[n.ID()], rss)
				}
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops sampling and fails t if a node passed rssBound.
func (s *rssSampler) finish(t testing.TB, what string) map[string]int64 {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(s.max)) {
		parts = append(parts, fmt.Sprintf("%s=%.0fMiB", id, float64(s.max[id])/(1<<20)))
		if s.max[id] > rssBound {
			t.Errorf("%s: %s's RSS reached %.0f MiB, over the %d MiB bound", what, id, float64(s.max[id])/(1<<20), rssBound>>20)
		}
	}
	t.Logf("rss fault=%s max %s", what, strings.Join(parts, " "))
	return maps.Clone(s.max)
}
