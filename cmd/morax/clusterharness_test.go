package main

// The harness of the cluster tests (cluster_test.go): real `morax start`
// processes on loopback, sharing one fresh PostgreSQL database and a fresh
// key prefix in the dev MinIO bucket, plus the client workloads and the
// checks the scenarios share.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/wire/wal/client"
)

// Lease timing of the test nodes: short, so a killed node's partitions are
// taken over within seconds, and still more than twice the heartbeat (the
// config validation rule).
const (
	testLeaseTTL  = 2 * time.Second
	testHeartbeat = 500 * time.Millisecond
)

// devBucket is the bucket dev/up.sh creates; every cluster test writes
// under its own prefix in it.
const devBucket = "morax"

// envClusterLogDir, when set, names a folder the node logs of every cluster
// test are copied to, kept after the test (the temp dir is not).
const envClusterLogDir = "MORAX_TEST_CLUSTER_LOG_DIR"

// The morax binary the cluster tests run, built once per test binary: each
// scenario restarts nodes many times and a build per node would dominate
// the run time.
var clusterBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if clusterBin.dir != "" {
		os.RemoveAll(clusterBin.dir)
	}
	os.Exit(code)
}

func moraxBinary(t *testing.T) string {
	t.Helper()
	clusterBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "morax-cluster-test-")
		if err != nil {
			clusterBin.err = err
			return
		}
		clusterBin.dir = dir
		clusterBin.path = filepath.Join(dir, "morax")
		out, err := exec.Command("go", "build", "-o", clusterBin.path, ".").CombinedOutput()
		if err != nil {
			clusterBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if clusterBin.err != nil {
		t.Fatal(clusterBin.err)
	}
	return clusterBin.path
}

// testCluster is a set of node processes sharing one metadata database and
// object prefix.
type testCluster struct {
	t      *testing.T
	bin    string
	pgURL  string
	s3     itest.S3Config
	prefix string
	dir    string
	db     *pgx.Conn
	nodes  []*testNode
	ports  map[string]bool // listen addresses given to nodes
}

// testNode is one `morax start` process, restartable with the same config
// (same node id, ports and data dir).
type testNode struct {
	c                              *testCluster
	id                             string
	kafkaAddr, walAddr, remoteAddr string
	confPath, logPath              string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error
	paused  bool
	starts  int
}

// newTestCluster prepares an empty cluster: a fresh database, a fresh
// prefix in the dev bucket (its objects deleted at the end), no node yet.
// It fails the test (or skips it without MORAX_REQUIRE_INTEGRATION=1) when
// the dev servers are not configured.
func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	pgURL := itest.PostgresURL(t)
	s3 := itest.S3(t)
	c := &testCluster{
		t:      t,
		bin:    moraxBinary(t),
		pgURL:  pgURL,
		s3:     s3,
		prefix: "cluster-test-" + itest.RandomName(12) + "/",
		dir:    t.TempDir(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objects, err := c.openObjects(ctx)
	if err != nil {
		t.Fatalf("open the dev bucket: %v", err)
	}
	if err := objects.EnsureBucket(ctx); err != nil {
		t.Fatalf("create the dev bucket: %v", err)
	}
	objects.Close()
	// The nodes create the schema on start; the harness's own connection
	// only reads it.
	db, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("connect %s: %v", pgURL, err)
	}
	c.db = db
	// Cleanups run last-registered first: nodes die before the objects are
	// removed and before itest drops the database.
	t.Cleanup(c.deletePrefix)
	t.Cleanup(func() { db.Close(context.Background()) })
	t.Cleanup(c.shutdown)
	return c
}

func (c *testCluster) openObjects(ctx context.Context) (*objstore.S3, error) {
	return objstore.NewS3(ctx, objstore.S3Config{
		Bucket: devBucket, Region: c.s3.Region, Endpoint: c.s3.Endpoint,
		AccessKeyID: c.s3.AccessKey, SecretAccessKey: c.s3.SecretKey, PathStyle: true,
		Prefix: c.prefix,
	})
}

// deletePrefix removes the test's objects, so the shared dev bucket does
// not grow with every run.
func (c *testCluster) deletePrefix() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	objects, err := c.openObjects(ctx)
	if err != nil {
		c.t.Logf("cleanup: open bucket: %v", err)
		return
	}
	defer objects.Close()
	var keys []string
	if err := objects.List(ctx, "", func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		c.t.Logf("cleanup: list %s: %v", c.prefix, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, k := range keys {
		g.Go(func() error { return objects.Delete(gctx, k) })
	}
	if err := g.Wait(); err != nil {
		c.t.Logf("cleanup: delete objects under %s: %v", c.prefix, err)
	}
}

// shutdown kills every node still running (there is nothing left to
// check), then dumps their logs if the test failed.
func (c *testCluster) shutdown() {
	for _, n := range c.nodes {
		n.forceStop()
	}
	if dir := os.Getenv(envClusterLogDir); dir != "" {
		dst := filepath.Join(dir, strings.NewReplacer("/", "_").Replace(c.t.Name()))
		if err := os.MkdirAll(dst, 0o755); err == nil {
			for _, n := range c.nodes {
				if b, err := os.ReadFile(n.logPath); err == nil {
					_ = os.WriteFile(filepath.Join(dst, n.id+".log"), b, 0o644)
				}
			}
			c.t.Logf("node logs copied to %s", dst)
		}
	}
	if !c.t.Failed() {
		return
	}
	for _, n := range c.nodes {
		c.t.Logf("---- last lines of %s's log (%s) ----\n%s", n.id, n.logPath, tailFile(n.logPath, 150, 64<<10))
	}
}

// tailFile returns at most the last lines lines (and maxBytes bytes) of a
// file, for failure reports.
func tailFile(path string, lines, maxBytes int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > int64(maxBytes) {
		_, _ = f.Seek(-int64(maxBytes), io.SeekEnd)
	}
	var all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// addNode configures a node with fresh loopback ports and starts it; it
// returns once the node answers health.
func (c *testCluster) addNode(id string) *testNode {
	c.t.Helper()
	dir := filepath.Join(c.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	n := &testNode{
		c: c, id: id,
		kafkaAddr: c.listenPort(), walAddr: c.listenPort(), remoteAddr: c.listenPort(),
		confPath: filepath.Join(dir, "node.toml"), logPath: filepath.Join(dir, "node.log"),
	}
	conf := fmt.Sprintf(`# Written by the cluster test harness.
data_dir = %q

[server.meta]
service_url = %q

[server.kafka_broker]
listen_addr = %q
auto_create_topics = false

[server.wal_broker]
listen_addr = %q
max_wait = "5s"

[storage]
scheme = "s3"
bucket = %q
region = %q
endpoint = %q
access_key_id = %q
secret_access_key = %q
path_style = true
prefix = %q
request_timeout = "10s"

[partition]
# Longer than the default so each partition's flushes carry several
# records: fewer objects and commits for two cores to serve.
linger = "10ms"

[cluster]
node_id = %q
lease_ttl = %q
heartbeat_interval = %q
remote_listen_addr = %q

[telemetry.log]
level = "info"
`, filepath.Join(dir, "data"), c.pgURL, n.kafkaAddr, n.walAddr,
		devBucket, c.s3.Region, c.s3.Endpoint, c.s3.AccessKey, c.s3.SecretKey, c.prefix,
		id, testLeaseTTL.String(), testHeartbeat.String(), n.remoteAddr)
	if err := os.WriteFile(n.confPath, []byte(conf), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.nodes = append(c.nodes, n)
	n.start()
	return n
}

// listenPort returns a free loopback address for a node to listen on for
// the whole test, across restarts. The port is below the kernel's
// ephemeral range: a port from that range (what freePort gets) can be
// taken, while the node is down, as the local end of some outgoing
// connection, and the restarted node would then fail to bind it.
// Ports already given to a node of this cluster are not handed out again:
// the check that a port is free says nothing about one not yet bound.
func (c *testCluster) listenPort() string {
	t := c.t
	t.Helper()
	if c.ports == nil {
		c.ports = map[string]bool{}
	}
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const first = 10000
	if low-first < 1000 {
		return freePort(t)
	}
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", first+rand.IntN(low-first))
		if c.ports[addr] {
			continue
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			c.ports[addr] = true
			return addr
		}
	}
	return freePort(t)
}

// nodeEnv is the test's environment without MORAX_ variables: the config
// file alone configures a node, whatever the shell running the tests has
// set (dev/.env, overrides meant for another node).
func nodeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MORAX_") {
			env = append(env, kv)
		}
	}
	return env
}

// start runs the node's process and waits until it answers health.
func (n *testNode) start() {
	t := n.c.t
	t.Helper()
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		t.Fatalf("%s: start while running", n.id)
	}
	n.starts++
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.mu.Unlock()
		t.Fatal(err)
	}
	fmt.Fprintf(f, "==== harness: start #%d of %s at %s\n", n.starts, n.id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.c.bin, "start", "--config-file", n.confPath)
	cmd.Env = nodeEnv()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	f.Close() // the child has its own descriptor
	if err != nil {
		n.mu.Unlock()
		t.Fatalf("%s: start: %v", n.id, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.waitErr, n.paused = cmd, exited, nil, false
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.waitErr = err
		n.mu.Unlock()
		close(exited)
	}()
	if err := n.waitHealthy(30 * time.Second); err != nil {
		t.Fatalf("%s: %v", n.id, err)
	}
}

func (n *testNode) waitHealthy(timeout time.Duration) error {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get("http://" + n.walAddr + "/v1/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health: %s %q", resp.Status, body)
		}
		select {
		case <-exited:
			return fmt.Errorf("exited during start (%v)", n.exitErr())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no healthy answer within %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *testNode) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.waitErr
}

func (n *testNode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

func (n *testNode) signal(sig syscall.Signal) {
	n.c.t.Helper()
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil {
		n.c.t.Fatalf("%s: %v sent to a node that is not running", n.id, sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		n.c.t.Fatalf("%s: send %v: %v", n.id, sig, err)
	}
}

// kill SIGKILLs the node and waits for the process to be gone.
func (n *testNode) kill() {
	n.c.t.Helper()
	n.signal(syscall.SIGKILL)
	if _, err := n.waitExit(10 * time.Second); err != nil {
		n.c.t.Fatalf("%s: %v", n.id, err)
	}
}

// stop sends SIGTERM and waits for the graceful exit, which must be clean.
func (n *testNode) stop() {
	t := n.c.t
	t.Helper()
	n.signal(syscall.SIGTERM)
	// shutdownTimeout bounds the node's own stop; the rest is slack for a
	// loaded machine.
	exitErr, err := n.waitExit(shutdownTimeout + 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", n.id, err)
	}
	if exitErr != nil {
		t.Fatalf("%s: exit after SIGTERM: %v (want status 0)", n.id, exitErr)
	}
}

// pause SIGSTOPs the node: it keeps its sockets and its in-memory state and
// believes it still holds its leases when it wakes.
func (n *testNode) pause() {
	n.signal(syscall.SIGSTOP)
	n.mu.Lock()
	n.paused = true
	n.mu.Unlock()
}

func (n *testNode) resume() {
	n.signal(syscall.SIGCONT)
	n.mu.Lock()
	n.paused = false
	n.mu.Unlock()
}

// waitExit waits for the process to end and forgets it, so the node can be
// started again. exitErr is the process's exit status as cmd.Wait gave it.
func (n *testNode) waitExit(timeout time.Duration) (exitErr, err error) {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return nil, errors.New("not running")
	}
	select {
	case <-exited:
	case <-time.After(timeout):
		return nil, fmt.Errorf("still running %s after the signal", timeout)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cmd, n.exited = nil, nil
	return n.waitErr, nil
}

// forceStop kills the process if it runs (waking it first if paused, so
// the kill is not queued behind the stop).
func (n *testNode) forceStop() {
	n.mu.Lock()
	cmd, exited, paused := n.cmd, n.exited, n.paused
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	if paused {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
	n.mu.Lock()
	n.cmd, n.exited = nil, nil
	n.mu.Unlock()
}

func (c *testCluster) node(id string) *testNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %q", id)
	return nil
}

// live lists the nodes whose process runs and is not paused.
func (c *testCluster) live() []*testNode {
	var out []*testNode
	for _, n := range c.nodes {
		n.mu.Lock()
		paused := n.paused
		n.mu.Unlock()
		if n.running() && !paused {
			out = append(out, n)
		}
	}
	return out
}

func (c *testCluster) liveIDs() []string {
	var ids []string
	for _, n := range c.live() {
		ids = append(ids, n.id)
	}
	return ids
}

// seeds are the Kafka addresses of every configured node, dead or alive,
// as a client configured with the whole cluster would have them.
func (c *testCluster) seeds() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.kafkaAddr)
	}
	return out
}

// ---- cluster view (GET /v1/cluster) ---------------------------------------

// clusterSnapshot is the JSON of GET /v1/cluster.
type clusterSnapshot struct {
	Nodes []struct {
		ID          string    `json:"id"`
		KafkaAddr   string    `json:"kafka_addr"`
		WALAddr     string    `json:"wal_addr"`
		HeartbeatAt time.Time `json:"heartbeat_at"`
	} `json:"nodes"`
	Leases []struct {
		Resource  string    `json:"resource"`
		Kind      string    `json:"kind"`
		Topic     string    `json:"topic"`
		Partition *int32    `json:"partition"`
		Owner     string    `json:"owner"`
		Epoch     int64     `json:"epoch"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"leases"`
}

// partLease is who holds one partition's lease: the node id (without the
// incarnation; "" when vacant) and the epoch.
type partLease struct {
	Node    string
	Owner   string // the full owner string, node@incarnation
	Epoch   int64
	Expires time.Time
}

// status reads GET /v1/cluster from a live node (any: they read the same
// tables).
func (c *testCluster) status() (clusterSnapshot, error) {
	var last error
	for _, n := range c.live() {
		s, err := n.status()
		if err == nil {
			return s, nil
		}
		last = err
	}
	if last == nil {
		last = errors.New("no live node")
	}
	return clusterSnapshot{}, last
}

func (n *testNode) status() (clusterSnapshot, error) {
	var s clusterSnapshot
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + n.walAddr + "/v1/cluster")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return s, err
	}
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /v1/cluster on %s: %s %s", n.id, resp.Status, body)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("GET /v1/cluster on %s: %v", n.id, err)
	}
	return s, nil
}

// partitionLeases returns the leases of topic's partitions, by partition.
func (s clusterSnapshot) partitionLeases(topic string) map[int32]partLease {
	out := map[int32]partLease{}
	for _, l := range s.Leases {
		if l.Kind != "partition" || l.Topic != topic || l.Partition == nil {
			continue
		}
		out[*l.Partition] = partLease{Node: meta.LeaseNode(l.Owner), Owner: l.Owner, Epoch: l.Epoch, Expires: l.ExpiresAt}
	}
	return out
}

// waitFor polls cond until it reports done, failing the test with cond's
// last explanation after timeout (a bound on failure, not a performance
// assertion).
func (c *testCluster) waitFor(what string, timeout time.Duration, cond func() (bool, string)) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not reached within %s: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// topicID reads a topic's id from the metadata database.
func (c *testCluster) topicID(name string) meta.TopicID {
	c.t.Helper()
	var id uuid.UUID
	if err := c.db.QueryRow(context.Background(), "SELECT id FROM topics WHERE name = $1", name).Scan(&id); err != nil {
		c.t.Fatalf("topic %s id: %v", name, err)
	}
	return meta.TopicID(id)
}

// desiredOwners is the rendezvous choice of owner for each partition of a
// topic among the given nodes: what ownership converges to. It uses the
// broker's own choice function, so the test checks convergence, not a
// re-implementation of the hash.
func desiredOwners(id meta.TopicID, partitions int32, nodeIDs []string) map[int32]string {
	v := &actors.ClusterView{}
	for _, n := range nodeIDs {
		v.Nodes = append(v.Nodes, meta.Node{ID: n})
	}
	out := map[int32]string{}
	for p := range partitions {
		out[p] = v.Desired(meta.PartitionResource(id, p))
	}
	return out
}

// waitBalanced waits until every partition of topic is held by its
// rendezvous owner among the live nodes, with an unexpired lease, and stays
// so for a few polls (ownership settled, no hand-over in flight). It
// returns when that was first seen and the leases then.
func (c *testCluster) waitBalanced(topic string, partitions int32, timeout time.Duration) (time.Time, map[int32]partLease) {
	c.t.Helper()
	id := c.topicID(topic)
	want := desiredOwners(id, partitions, c.liveIDs())
	var (
		first  time.Time
		prev   map[int32]partLease
		stable int
	)
	c.waitFor("ownership of "+topic+" balanced over "+strings.Join(c.liveIDs(), ","), timeout, func() (bool, string) {
		s, err := c.status()
		if err != nil {
			return false, err.Error()
		}
		got := s.partitionLeases(topic)
		for p := range partitions {
			l := got[p]
			if l.Node != want[p] || !time.Now().Before(l.Expires) {
				first, prev, stable = time.Time{}, nil, 0
				return false, fmt.Sprintf("partition %d held by %q (epoch %d), want %q", p, l.Owner, l.Epoch, want[p])
			}
		}
		if prev != nil && sameOwners(prev, got) {
			stable++
		} else {
			first, stable = time.Now(), 0
		}
		prev = got
		// Three more polls (300 ms, over half a heartbeat) with nothing
		// moving: no drain or takeover was under way.
		return stable >= 3, "settling"
	})
	return first, prev
}

func sameOwners(a, b map[int32]partLease) bool {
	if len(a) != len(b) {
		return false
	}
	for p, l := range a {
		if m, ok := b[p]; !ok || m.Owner != l.Owner || m.Epoch != l.Epoch {
			return false
		}
	}
	return true
}

// countByNode counts partitions per holding node.
func countByNode(leases map[int32]partLease) map[string]int {
	out := map[string]int{}
	for _, l := range leases {
		out[l.Node]++
	}
	return out
}

// ---- Kafka helpers ---------------------------------------------------------

// kafkaClient is a franz-go client tuned for a cluster whose leaders move:
// metadata refreshed as soon as an error asks for it, and requests to a
// silent (paused) broker given up after seconds instead of the default
// tens of seconds.
func (c *testCluster) kafkaClient(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(c.seeds()...),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(2 * time.Second),
		kgo.RequestTimeoutOverhead(3 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// createTopic creates a Kafka topic through the cluster and waits until
// every partition has an owner.
func (c *testCluster) createTopic(name string, partitions int32) {
	c.t.Helper()
	cl := c.kafkaClient()
	defer cl.Close()
	c.waitFor("create topic "+name, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 5000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return false, err.Error()
		}
		if len(resp.Topics) != 1 {
			return false, fmt.Sprintf("%d topics in the answer", len(resp.Topics))
		}
		code := resp.Topics[0].ErrorCode
		// Already exists: an earlier attempt succeeded but its answer was
		// lost.
		if code == 0 || code == kerr.TopicAlreadyExists.Code {
			return true, ""
		}
		return false, kerr.ErrorForCode(code).Error()
	})
	c.waitFor("owners for every partition of "+name, 30*time.Second, func() (bool, string) {
		s, err := c.status()
		if err != nil {
			return false, err.Error()
		}
		got := s.partitionLeases(name)
		for p := range partitions {
			if got[p].Node == "" {
				return false, fmt.Sprintf("partition %d has no owner", p)
			}
		}
		return true, ""
	})
}

// ackedRecord is a record the cluster acknowledged.
type ackedRecord struct {
	partition int32
	offset    int64
	value     string
	at        time.Time
}

// produceLoad is idempotent producers (acks=all, franz-go's defaults)
// writing to every partition of a topic at a steady pace, recording every
// acknowledged record. Each producer numbers its values (p<i>-<seq>) and
// sends seq to partition seq % partitions, so every partition gets an
// increasing sequence from every producer.
type produceLoad struct {
	c      *testCluster
	topic  string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	acked   []ackedRecord
	sent    int
	refused int // not buffered: the client's buffer was full
	failed  int
	lastErr error
}

func (c *testCluster) startProducers(topic string, partitions int32, producers int, every time.Duration) *produceLoad {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &produceLoad{c: c, topic: topic, cancel: cancel}
	// A test that fails half-way never calls stop: end the producers with
	// it (their clients close, abandoning what is buffered), or they would
	// go on retrying against a cluster that is gone.
	abort := make(chan struct{})
	c.t.Cleanup(func() { close(abort); cancel() })
	for i := range producers {
		cl := c.kafkaClient(
			kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(5*time.Millisecond),
			kgo.ProduceRequestTimeout(5*time.Second),
			// Bounded: while a partition has no leader the producer stops
			// at this many buffered records instead of growing.
			kgo.MaxBufferedRecords(2000),
		)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer cl.Close()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-ctx.Done():
					// Wait for every record in flight: its outcome (acked
					// or failed) is part of what the test checks.
					fctx, fcancel := context.WithTimeout(context.Background(), 45*time.Second)
					go func() {
						select {
						case <-abort:
							fcancel()
						case <-fctx.Done():
						}
					}()
					if err := cl.Flush(fctx); err != nil {
						l.mu.Lock()
						l.lastErr = fmt.Errorf("producer %d: flush: %w", i, err)
						l.mu.Unlock()
					}
					fcancel()
					return
				case <-tick.C:
				}
				r := &kgo.Record{Partition: int32(seq % int(partitions)), Value: fmt.Appendf(nil, "p%d-%09d", i, seq)}
				l.mu.Lock()
				l.sent++
				l.mu.Unlock()
				// TryProduce, not Produce: when the buffer is full (no
				// leader for a while) the record is refused at once rather
				// than blocking this loop, which must always notice stop.
				cl.TryProduce(context.Background(), r, func(r *kgo.Record, err error) {
					l.mu.Lock()
					defer l.mu.Unlock()
					if errors.Is(err, kgo.ErrMaxBuffered) {
						l.refused++
						return
					}
					if err != nil {
						l.failed++
						l.lastErr = err
						return
					}
					l.acked = append(l.acked, ackedRecord{partition: r.Partition, offset: r.Offset, value: string(r.Value), at: time.Now()})
				})
			}
		}()
	}
	return l
}

// ackedCount is how many records were acknowledged so far.
func (l *produceLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitAcked waits until n more records than now are acknowledged: the
// cluster makes progress.
func (l *produceLoad) waitAcked(n int, timeout time.Duration) {
	l.c.t.Helper()
	target := l.ackedCount() + n
	l.c.waitFor(fmt.Sprintf("%d acknowledged records", target), timeout, func() (bool, string) {
		got := l.ackedCount()
		l.mu.Lock()
		last := l.lastErr
		l.mu.Unlock()
		return got >= target, fmt.Sprintf("%d acknowledged (last error %v)", got, last)
	})
}

// stop ends the load and waits for every record's outcome.
func (l *produceLoad) stop() []ackedRecord {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.c.t.Logf("producers on %s: %d produced, %d acknowledged, %d failed, %d refused by the full client buffer (last error: %v)",
		l.topic, l.sent, len(l.acked), l.failed, l.refused, l.lastErr)
	if len(l.acked) == 0 {
		l.c.t.Errorf("no record acknowledged on %s", l.topic)
	}
	return slices.Clone(l.acked)
}

// consumed is a partition's records as read back: values by offset.
type consumedPartition struct {
	offsets []int64
	values  []string
}

// readAll reads every partition of topic from offset 0 up to its committed
// end (partitions.next_offset) with a plain (group-less) consumer.
func (c *testCluster) readAll(topic string, partitions int32) map[int32]*consumedPartition {
	c.t.Helper()
	ends := c.partitionEnds(topic)
	assign := map[int32]kgo.Offset{}
	for p := range partitions {
		assign[p] = kgo.NewOffset().At(0)
	}
	cl := c.kafkaClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	defer cl.Close()
	out := map[int32]*consumedPartition{}
	for p := range partitions {
		out[p] = &consumedPartition{}
	}
	done := func() bool {
		for p := range partitions {
			if int64(len(out[p].offsets)) < ends[p] {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var have []string
			for p := range partitions {
				have = append(have, fmt.Sprintf("%d:%d/%d", p, len(out[p].offsets), ends[p]))
			}
			c.t.Fatalf("reading %s back: timed out with partition:read/end %s", topic, strings.Join(have, " "))
		}
		fs.EachError(func(t string, p int32, err error) {
			c.t.Logf("read %s/%d: %v (retrying)", t, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			cp := out[r.Partition]
			cp.offsets = append(cp.offsets, r.Offset)
			cp.values = append(cp.values, string(r.Value))
		})
	}
	return out
}

// partitionEnds reads each partition's committed end offset from the
// metadata database.
func (c *testCluster) partitionEnds(topic string) map[int32]int64 {
	c.t.Helper()
	rows, err := c.db.Query(context.Background(),
		`SELECT p.partition, p.next_offset FROM partitions p JOIN topics t ON t.id = p.topic_id WHERE t.name = $1`, topic)
	if err != nil {
		c.t.Fatalf("partition ends of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	for rows.Next() {
		var p int32
		var end int64
		if err := rows.Scan(&p, &end); err != nil {
			c.t.Fatal(err)
		}
		out[p] = end
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// checkRecords checks what was read back against what was acknowledged:
// offsets dense from 0, no value written twice, every acknowledged record
// exactly at its acknowledged offset, and each producer's values in
// increasing order within a partition.
func checkRecords(t *testing.T, topic string, got map[int32]*consumedPartition, acked []ackedRecord) {
	t.Helper()
	where := map[string]string{} // value -> partition/offset
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for p, cp := range got {
		lastSeq := map[string]int{}
		for i, off := range cp.offsets {
			if off != int64(i) {
				report("%s/%d: record %d has offset %d: offsets are not dense from 0", topic, p, i, off)
				break
			}
			v := cp.values[i]
			if prev, dup := where[v]; dup {
				report("%s: value %q at %d/%d was already at %s: written twice", topic, v, p, off, prev)
			}
			where[v] = fmt.Sprintf("%d/%d", p, off)
			prod, seqStr, ok := strings.Cut(v, "-")
			seq, err := strconv.Atoi(seqStr)
			if !ok || err != nil {
				report("%s/%d@%d: value %q is not one the producers wrote", topic, p, off, v)
				continue
			}
			if last, seen := lastSeq[prod]; seen && seq <= last {
				report("%s/%d@%d: %q after %s-%09d: producer order broken", topic, p, off, v, prod, last)
			}
			lastSeq[prod] = seq
		}
	}
	for _, a := range acked {
		cp := got[a.partition]
		if cp == nil || a.offset < 0 || a.offset >= int64(len(cp.values)) {
			report("%s: acknowledged %q at %d/%d is missing (partition read has %d records)", topic, a.value, a.partition, a.offset, lenOf(cp))
			continue
		}
		if v := cp.values[a.offset]; v != a.value {
			report("%s: acknowledged %q at %d/%d, but the log has %q there", topic, a.value, a.partition, a.offset, v)
		}
	}
	if bad > 20 {
		t.Errorf("... %d problems in all", bad)
	}
	if bad == 0 {
		total := 0
		for _, cp := range got {
			total += len(cp.offsets)
		}
		t.Logf("%s: %d records read back, all %d acknowledged ones present exactly once at their offsets, per-producer order kept", topic, total, len(acked))
	}
}

func lenOf(cp *consumedPartition) int {
	if cp == nil {
		return 0
	}
	return len(cp.values)
}

// ---- WAL load ---------------------------------------------------------------

// walLoad appends to one WAL log through one node, conditionally at the end
// it expects, so the log holds nothing but the batches it sent: a batch
// acknowledged, or one whose attempt failed (it may or may not have
// committed). It records both.
type walLoad struct {
	c      *testCluster
	name   string
	via    *testNode
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	acked    []walBatch
	attempts map[string]bool // data of every attempted entry
	failures int
	lastErr  error
	// The slowest append, and the first errors, for diagnosis.
	slowest    time.Duration
	slowestAt  time.Time
	slowestErr error
	errLog     []string
	// firstAckAfter is when the first append succeeded after mark, set by
	// markFailover: the WAL side of the failover time.
	mark          time.Time
	firstAckAfter time.Time
}

type walBatch struct {
	r       client.Range
	entries []string
}

func (c *testCluster) startWAL(name string, via *testNode, every time.Duration) *walLoad {
	c.t.Helper()
	cl, err := client.New("http://" + via.walAddr)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &walLoad{c: c, name: name, via: via, cancel: cancel, done: make(chan struct{}), attempts: map[string]bool{}}
	c.t.Cleanup(cancel) // a test that fails half-way never calls stop
	go func() {
		defer close(w.done)
		end := int64(0)
		for seq := 0; ctx.Err() == nil; seq++ {
			entries := make([][]byte, 3)
			strs := make([]string, 3)
			for i := range entries {
				strs[i] = fmt.Sprintf("w-%07d-%d", seq, i)
				entries[i] = []byte(strs[i])
			}
			w.mu.Lock()
			for _, s := range strs {
				w.attempts[s] = true
			}
			w.mu.Unlock()
			began := time.Now()
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			r, err := cl.AppendIf(actx, name, entries, end)
			acancel()
			took := time.Since(began)
			w.mu.Lock()
			if took > w.slowest {
				w.slowest, w.slowestAt, w.slowestErr = took, began, err
			}
			if err != nil && len(w.errLog) < 10 {
				w.errLog = append(w.errLog, fmt.Sprintf("%s +%s: %v", began.Format("15:04:05.000"), took.Round(time.Millisecond), err))
			}
			switch {
			case err == nil:
				if r.Start != end || r.Len() != 3 {
					w.lastErr = fmt.Errorf("append at %d answered range %v", end, r)
					w.failures++
				}
				w.acked = append(w.acked, walBatch{r: r, entries: strs})
				end = r.End
				if !w.mark.IsZero() && w.firstAckAfter.IsZero() {
					w.firstAckAfter = time.Now()
				}
			case client.CodeOf(err) == client.CodeConflict:
				// An earlier attempt that failed for us did commit: the
				// log is further than we thought.
				var ae *client.APIError
				if errors.As(err, &ae) && ae.EndOffset >= end {
					end = ae.EndOffset
				}
				w.failures++
				w.lastErr = err
			default:
				w.failures++
				w.lastErr = err
			}
			w.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
	return w
}

// markFailover starts timing the WAL side of a failover.
func (w *walLoad) markFailover(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mark, w.firstAckAfter = at, time.Time{}
}

// waitAcked waits until n more batches than now are acknowledged.
func (w *walLoad) waitAcked(n int, timeout time.Duration) {
	w.c.t.Helper()
	target := w.ackedCount() + n
	w.c.waitFor(fmt.Sprintf("%d acknowledged WAL batches", target), timeout, func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.acked) >= target, fmt.Sprintf("%d acknowledged (last error %v)", len(w.acked), w.lastErr)
	})
}

func (w *walLoad) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *walLoad) stop() {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c.t.Logf("WAL appends to %s through %s: %d batches acknowledged, %d failed attempts (last error: %v)",
		w.name, w.via.id, len(w.acked), w.failures, w.lastErr)
	w.c.t.Logf("WAL: slowest append took %s, sent at %s (error: %v); first errors: %s",
		w.slowest.Round(time.Millisecond), w.slowestAt.Format("15:04:05.000"), w.slowestErr, strings.Join(w.errLog, "; "))
	if !w.mark.IsZero() {
		if w.firstAckAfter.IsZero() {
			w.c.t.Errorf("WAL: no append succeeded after the failure")
		} else {
			w.c.t.Logf("WAL: first append acknowledged %s after the failure", w.firstAckAfter.Sub(w.mark).Round(time.Millisecond))
		}
	}
}

// check reads the whole log back through a live node and checks it holds
// exactly the acknowledged entries at their acknowledged offsets, densely,
// and nothing but entries that were attempted.
func (w *walLoad) check() {
	t := w.c.t
	t.Helper()
	live := w.c.live()
	if len(live) == 0 {
		t.Fatal("no live node to read the WAL through")
	}
	cl, err := client.New("http://" + live[len(live)-1].walAddr)
	if err != nil {
		t.Fatal(err)
	}
	// The cluster has settled before the check, so a read that keeps
	// failing for this long is a failure, not a move in progress.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []client.Entry
	for {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := cl.Read(rctx, w.name, int64(len(all)), &client.ReadOptions{MaxEntries: 2000})
		rcancel()
		if err != nil {
			if client.CodeOf(err) == client.CodeUnavailable && ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			t.Errorf("WAL read %s at %d through %s: %v", w.name, len(all), cl.Endpoint(), err)
			return
		}
		all = append(all, res.Entries...)
		if len(res.Entries) == 0 || int64(len(all)) >= res.EndOffset {
			break
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	bad := 0
	seen := map[string]bool{}
	for i, e := range all {
		if e.Index != int64(i) {
			t.Errorf("WAL %s: entry %d has index %d: offsets not dense", w.name, i, e.Index)
			return
		}
		s := string(e.Data)
		if !w.attempts[s] {
			bad++
			t.Errorf("WAL %s@%d: %q was never appended", w.name, i, s)
		}
		if seen[s] {
			bad++
			t.Errorf("WAL %s@%d: %q appears twice", w.name, i, s)
		}
		seen[s] = true
	}
	for _, b := range w.acked {
		for i, want := range b.entries {
			off := b.r.Start + int64(i)
			if off >= int64(len(all)) {
				bad++
				t.Errorf("WAL %s: acknowledged %q at %d is missing (log has %d entries)", w.name, want, off, len(all))
				continue
			}
			if got := string(all[off].Data); got != want {
				bad++
				t.Errorf("WAL %s: acknowledged %q at %d, log has %q", w.name, want, off, got)
			}
		}
	}
	if bad == 0 {
		t.Logf("WAL %s: %d entries read back, all %d acknowledged batches at their offsets", w.name, len(all), len(w.acked))
	}
}

// ownerOf returns who holds partition 0 of a log or topic now.
func (c *testCluster) ownerOf(topic string, partition int32) partLease {
	c.t.Helper()
	var l partLease
	c.waitFor("an owner for "+topic, 30*time.Second, func() (bool, string) {
		s, err := c.status()
		if err != nil {
			return false, err.Error()
		}
		l = s.partitionLeases(topic)[partition]
		return l.Node != "", "no owner yet"
	})
	return l
}

// ---- the segment invariant -------------------------------------------------

// segKey is the key of an object a node's flusher wrote: seg/<UTC time
// to the nanosecond>-<16 random hex digits>, unique to one upload.
var segKey = regexp.MustCompile(`^seg/\d{8}T\d{6}\.\d{9}Z-[0-9a-f]{16}$`)

// segmentRow is one row of the segments table.
type segmentRow struct {
	topicID   string
	topic     string
	partition int32
	base, end int64
	epoch     int64
	key       string
	pos, size int64
	created   time.Time
}

// pgQuerier is a connection or a transaction.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (c *testCluster) segments() []segmentRow { return c.segmentsIn(c.db) }

func (c *testCluster) segmentsIn(q pgQuerier) []segmentRow {
	c.t.Helper()
	rows, err := q.Query(context.Background(), `
		SELECT s.topic_id::text, t.name, s.partition, s.base_offset, s.end_offset, s.epoch, s.object_key, s.object_pos, s.size, s.created_at
		FROM segments s JOIN topics t ON t.id = s.topic_id
		ORDER BY s.topic_id, s.partition, s.base_offset`)
	if err != nil {
		c.t.Fatalf("read segments: %v", err)
	}
	var out []segmentRow
	for rows.Next() {
		var s segmentRow
		if err := rows.Scan(&s.topicID, &s.topic, &s.partition, &s.base, &s.end, &s.epoch, &s.key, &s.pos, &s.size, &s.created); err != nil {
			c.t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// checkSegments checks, straight from the metadata database, that no
// partition was ever committed to by two owners at once: each partition's
// segments, in base-offset order, are contiguous from its log start to its
// next offset (each base is the previous end), their lease epochs never
// decrease, object keys have the flusher's unique form, and the segments
// sharing an object are disjoint slices of it (so no two commits ever
// claimed the same bytes).
// Interleaved commits by a stale and a current owner would show as a gap,
// an overlap or an epoch going back.
func (c *testCluster) checkSegments() {
	t := c.t
	t.Helper()
	type pkey struct {
		topic     string
		partition int32
	}
	type pstate struct{ next, logStart int64 }
	// One snapshot for all the reads: a commit landing between them (an
	// append whose client gave up is still running) must not look like a
	// partition whose segments and next offset disagree.
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatalf("begin snapshot: %v", err)
	}
	defer tx.Rollback(ctx)
	states := map[pkey]pstate{}
	rows, err := tx.Query(ctx, `SELECT topic_id::text, partition, next_offset, log_start_offset FROM partitions`)
	if err != nil {
		t.Fatalf("read partitions: %v", err)
	}
	for rows.Next() {
		var k pkey
		var s pstate
		if err := rows.Scan(&k.topic, &k.partition, &s.next, &s.logStart); err != nil {
			t.Fatal(err)
		}
		states[k] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// The current epoch of every partition lease: no segment can carry a
	// later one, which no owner was ever granted.
	leaseEpoch := map[pkey]int64{}
	lrows, err := tx.Query(ctx, `SELECT resource, epoch FROM leases WHERE resource LIKE 'p/%'`)
	if err != nil {
		t.Fatalf("read leases: %v", err)
	}
	for lrows.Next() {
		var res string
		var epoch int64
		if err := lrows.Scan(&res, &epoch); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(res, "/")
		if len(parts) != 3 {
			continue
		}
		p, err := strconv.ParseInt(parts[2], 10, 32)
		if err != nil {
			continue
		}
		leaseEpoch[pkey{parts[1], int32(p)}] = epoch
	}
	if err := lrows.Err(); err != nil {
		t.Fatal(err)
	}
	segs := c.segmentsIn(tx)
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	last := map[pkey]segmentRow{}
	slices := map[string][]segmentRow{}
	for _, s := range segs {
		k := pkey{s.topicID, s.partition}
		if !segKey.MatchString(strings.TrimPrefix(s.key, c.prefix)) {
			report("segment %s/%d@%d: object key %q is not seg/<time>-<nonce>", s.topic, s.partition, s.base, s.key)
		}
		slices[s.key] = append(slices[s.key], s)
		if e, ok := leaseEpoch[k]; !ok || s.epoch > e {
			report("segment %s/%d@%d has epoch %d, above the partition lease's epoch %d (lease found: %v)", s.topic, s.partition, s.base, s.epoch, e, ok)
		}
		prev, seen := last[k]
		switch {
		case !seen:
			if st, ok := states[k]; ok && s.base > st.logStart {
				report("%s/%d: first segment starts at %d, above the log start %d: offsets lost", s.topic, s.partition, s.base, st.logStart)
			}
		case s.base != prev.end:
			report("%s/%d: segment [%d,%d) epoch %d follows [%d,%d) epoch %d: not contiguous", s.topic, s.partition, s.base, s.end, s.epoch, prev.base, prev.end, prev.epoch)
		case s.epoch < prev.epoch:
			report("%s/%d: segment [%d,%d) has epoch %d after [%d,%d) with epoch %d: a fenced owner committed", s.topic, s.partition, s.base, s.end, s.epoch, prev.base, prev.end, prev.epoch)
		}
		last[k] = s
	}
	for key, ss := range slices {
		sort.Slice(ss, func(i, j int) bool { return ss[i].pos < ss[j].pos })
		for i := 1; i < len(ss); i++ {
			if a, b := ss[i-1], ss[i]; a.pos+a.size > b.pos {
				report("object %s: %s/%d@%d at [%d,+%d) overlaps %s/%d@%d at [%d,+%d)", key, a.topic, a.partition, a.base, a.pos, a.size, b.topic, b.partition, b.base, b.pos, b.size)
			}
		}
	}
	for k, s := range last {
		if st, ok := states[k]; ok && s.end != st.next {
			report("%s/%d: segments end at %d, but the partition's next offset is %d", s.topic, s.partition, s.end, st.next)
		}
	}
	for k, st := range states {
		if _, ok := last[k]; !ok && st.next != st.logStart {
			report("partition %s/%d: next offset %d with no segment", k.topic, k.partition, st.next)
		}
	}
	if bad > 20 {
		t.Errorf("... %d segment problems in all", bad)
	}
	if bad == 0 {
		epochs := map[string]map[int64]bool{}
		for _, s := range segs {
			if epochs[s.topic] == nil {
				epochs[s.topic] = map[int64]bool{}
			}
			epochs[s.topic][s.epoch] = true
		}
		var desc []string
		for topic, es := range epochs {
			desc = append(desc, fmt.Sprintf("%s: %d distinct epochs", topic, len(es)))
		}
		sort.Strings(desc)
		t.Logf("segment invariant holds: %d segments over %d partitions, contiguous, epochs never decreasing (%s)", len(segs), len(last), strings.Join(desc, "; "))
	}
}

// firstOffsetAfterEpoch returns, per partition of topic, the first offset
// committed under an epoch above the given one: where a new owner's writes
// begin. Partitions without such a segment are absent.
func (c *testCluster) firstOffsetAfterEpoch(topic string, above map[int32]int64) map[int32]int64 {
	out := map[int32]int64{}
	for _, s := range c.segments() {
		if s.topic != topic {
			continue
		}
		e, ok := above[s.partition]
		if !ok || s.epoch <= e {
			continue
		}
		if cur, ok := out[s.partition]; !ok || s.base < cur {
			out[s.partition] = s.base
		}
	}
	return out
}

// dbNow is the database clock, the one segment created_at uses.
func (c *testCluster) dbNow() time.Time {
	c.t.Helper()
	var now time.Time
	if err := c.db.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
		c.t.Fatal(err)
	}
	return now
}

// failoverTimes measures, from a failure at `at`, how long until the first
// record on one of the failed node's partitions was acknowledged by a new
// owner (first; negative if none was), and until every one of them had one
// (all, over the partitions that did). A record counts only at an offset
// committed under a newer epoch than the failed node's, so acknowledgements
// the failed node sent just before it died do not. missing lists the lost
// partitions with no such record.
func (c *testCluster) failoverTimes(topic string, lost map[int32]int64, acked []ackedRecord, at time.Time) (first, all time.Duration, missing []int32) {
	starts := c.firstOffsetAfterEpoch(topic, lost)
	firstAck := map[int32]time.Time{}
	for _, a := range acked {
		base, ok := starts[a.partition]
		if !ok || a.offset < base {
			continue
		}
		if cur, seen := firstAck[a.partition]; !seen || a.at.Before(cur) {
			firstAck[a.partition] = a.at
		}
	}
	first = -1
	for _, p := range slices.Sorted(maps.Keys(lost)) {
		ts, ok := firstAck[p]
		if !ok {
			missing = append(missing, p)
			continue
		}
		if d := ts.Sub(at); first < 0 || d < first {
			first = d
		}
		all = max(all, ts.Sub(at))
	}
	return first, all, missing
}
