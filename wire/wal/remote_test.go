package wal_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/pgmeta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/wire/wal"
	"github.com/morax-dev/morax/wire/wal/client"
)

// The cluster tests of this file run each node in a process of its own: this test
// binary, started again in node mode (TestMain). protoactor's remote sets
// gRPC's process-wide logger whenever one starts, so two remotes in one
// process are a data race the race detector rightly reports; separate
// processes are also what a cluster is. A node process has its own broker,
// actor system, remote on a loopback port, membership, ownership loop and
// WAL server, on the PostgreSQL database and MinIO bucket its peers share,
// and runs under the race detector when the test does (a race makes it
// exit with status 66, which fails the test).

// Environment of a node process.
const (
	envNode   = "MORAX_WALREMOTE_NODE"   // node id; its presence selects node mode
	envPG     = "MORAX_WALREMOTE_PG"     // metadata database URL
	envBucket = "MORAX_WALREMOTE_BUCKET" // bucket
)

// Timing of the test nodes: short, so ownership moves within a second or
// two of a node leaving.
const (
	nodeLeaseTTL   = 3 * time.Second
	nodeHeartbeat  = 100 * time.Millisecond
	nodeLiveWithin = 1500 * time.Millisecond
	nodePoll       = 100 * time.Millisecond
)

func TestMain(m *testing.M) {
	if id := os.Getenv(envNode); id != "" {
		os.Exit(runNode(id))
	}
	os.Exit(m.Run())
}

// runNode runs one node until SIGTERM or until its stdin closes (the test
// process went away), then stops it gracefully. It prints "READY <WAL URL>"
// once it serves. Its exit status is 0 when everything stopped cleanly.
func runNode(id string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", id)
	if err := serveNode(id, log); err != nil {
		log.Error("node failed", "err", err)
		return 1
	}
	return 0
}

func serveNode(id string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	store, err := pgmeta.Open(ctx, os.Getenv(envPG))
	if err != nil {
		return fmt.Errorf("open PostgreSQL: %w", err)
	}
	defer store.Close()
	objects, err := objstore.NewS3(ctx, objstore.S3Config{
		Bucket: os.Getenv(envBucket), Region: os.Getenv(itest.EnvS3Region), Endpoint: os.Getenv(itest.EnvS3Endpoint),
		AccessKeyID: os.Getenv(itest.EnvS3AccessKey), SecretAccessKey: os.Getenv(itest.EnvS3SecretKey), PathStyle: true,
	})
	if err != nil {
		return fmt.Errorf("open S3: %w", err)
	}
	defer objects.Close()
	b, err := actors.New(actors.Options{NodeID: id, LeaseTTL: nodeLeaseTTL, Logger: log.With("component", "broker")}, store, objects)
	if err != nil {
		return err
	}
	// Remote first: the actor system takes its address from it.
	rem, err := actors.StartRemote(b, actors.RemoteConfig{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	srv, err := wal.NewServer(wal.Config{
		Broker: b, ListenAddr: "127.0.0.1:0", Logger: log.With("component", "wal"),
		TailHeartbeat: 200 * time.Millisecond, RequestTimeout: 10 * time.Second, MaxWait: 20 * time.Second,
	})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	self := meta.Node{ID: id, WALAddr: srv.Addr().String(), RemoteAddr: rem.Addr()}
	mem, err := actors.StartMembership(ctx, store, self, nodeHeartbeat, log)
	if err != nil {
		return err
	}
	if err := b.StartCluster(actors.ClusterOptions{Self: self, LiveWithin: nodeLiveWithin, Poll: nodePoll}); err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	fmt.Printf("READY http://%s\n", srv.Addr())
	<-ctx.Done()
	// cmd/morax's order: the WAL server, the broker (which hands its
	// partitions over), membership, remote.
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := []error{srv.Close(stopCtx), b.Close(stopCtx), mem.Close(stopCtx)}
	rem.Close()
	log.Info("node stopped")
	return errors.Join(errs...)
}

// testCluster is the shared backend of a test's node processes.
type testCluster struct {
	pgURL, bucket string
}

func newTestCluster(t *testing.T) testCluster {
	t.Helper()
	tc := testCluster{pgURL: itest.PostgresURL(t), bucket: "t-" + itest.RandomName(12)}
	s3 := itest.S3(t)
	o, err := objstore.NewS3(context.Background(), objstore.S3Config{
		Bucket: tc.bucket, Region: s3.Region, Endpoint: s3.Endpoint,
		AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey, PathStyle: true,
	})
	if err != nil {
		t.Fatalf("open S3: %v", err)
	}
	defer o.Close()
	if err := o.EnsureBucket(context.Background()); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return tc
}

// nodeProc is a running node process.
type nodeProc struct {
	id     string
	url    string
	c      *client.Client
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
	mu     sync.Mutex
	done   bool
}

// lockedBuffer collects a node's log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start starts node id and waits until it serves.
func (tc testCluster) start(t *testing.T, id string) *nodeProc {
	t.Helper()
	n := &nodeProc{id: id, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	n.cmd = exec.Command(os.Args[0], "-test.run=^$")
	n.cmd.Env = append(os.Environ(), envNode+"="+id, envPG+"="+tc.pgURL, envBucket+"="+tc.bucket)
	n.cmd.Stderr = n.stderr
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- url
			}
		}
	}()
	go func() { n.err = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() || os.Getenv("MORAX_TEST_LOG") != "" {
			t.Logf("log of %s:\n%s", id, n.stderr.String())
		}
	})
	select {
	case n.url = <-ready:
	case <-n.exited:
		t.Fatalf("%s exited before serving: %v\n%s", id, n.err, n.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not serving after 30s", id)
	}
	if n.c, err = client.New(n.url); err != nil {
		t.Fatal(err)
	}
	return n
}

// stop stops the node gracefully and checks it exited cleanly (a data race
// makes it exit with 66).
func (n *nodeProc) stop(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done {
		return
	}
	n.done = true
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(40 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
		t.Errorf("%s did not stop within 40s", n.id)
		return
	}
	if n.err != nil {
		t.Errorf("%s exited with %v", n.id, n.err)
	}
}

func (n *nodeProc) stopped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

// do sends a raw HTTP request and returns status, Content-Type and body.
func (n *nodeProc) do(t *testing.T, method, path, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, n.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// clusterStatus is what the tests read of GET /v1/cluster.
type clusterStatus struct {
	Nodes []struct {
		ID         string `json:"id"`
		RemoteAddr string `json:"remote_addr"`
	} `json:"nodes"`
	Leases []struct {
		Topic     string    `json:"topic"`
		Partition *int32    `json:"partition"`
		Owner     string    `json:"owner"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"leases"`
}

func (n *nodeProc) status(t *testing.T) clusterStatus {
	t.Helper()
	code, _, body := n.do(t, "GET", "/v1/cluster", "")
	var st clusterStatus
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("GET /v1/cluster on %s: %d %s %v", n.id, code, body, err)
	}
	return st
}

// waitOwner waits until partition 0 of the log is leased by a node other
// than not, and the running nodes have had time to see it, and returns
// that node.
func waitOwner(t *testing.T, nodes []*nodeProc, log, not string) *nodeProc {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var from *nodeProc
	for _, n := range nodes {
		if !n.stopped() {
			from = n
		}
	}
	for {
		for _, l := range from.status(t).Leases {
			if l.Topic != log || l.Partition == nil || *l.Partition != 0 || l.Owner == "" || time.Until(l.ExpiresAt) < 0 {
				continue
			}
			for _, n := range nodes {
				if n.id == meta.LeaseNode(l.Owner) && n.id != not && !n.stopped() {
					// Every node reads leases each nodePoll: a few polls
					// later all route by this one.
					time.Sleep(5 * nodePoll)
					return n
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running node other than %q owns %s after 20s", not, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tailCollector runs a tail through one node and gathers what it yields.
type tailCollector struct {
	mu      sync.Mutex
	entries []client.Entry
	err     error
	done    chan struct{}
	cancel  context.CancelFunc
}

func startTail(ctx context.Context, c *client.Client, name string, from int64) *tailCollector {
	ctx, cancel := context.WithCancel(ctx)
	tc := &tailCollector{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(tc.done)
		for e, err := range c.Tail(ctx, name, from, nil) {
			tc.mu.Lock()
			if err != nil {
				tc.err = err
			} else {
				tc.entries = append(tc.entries, e)
			}
			tc.mu.Unlock()
		}
	}()
	return tc
}

// waitFor waits until the tail has n entries, failing on a tail error.
func (tc *tailCollector) waitFor(t *testing.T, n int, within time.Duration) []client.Entry {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		tc.mu.Lock()
		got, err := slices.Clone(tc.entries), tc.err
		tc.mu.Unlock()
		if err != nil {
			t.Fatalf("tail failed after %d entries: %v", len(got), err)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail has %d entries after %s, want %d", len(got), within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkEntries checks entries are want[0], want[1], ... at offsets 0, 1, ...
func checkEntries(t *testing.T, what string, got []client.Entry, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i, e := range got {
		if e.Index != int64(i) || string(e.Data) != want[i] {
			t.Fatalf("%s: entry %d is %d %q, want %d %q", what, i, e.Index, e.Data, i, want[i])
		}
	}
}

// TestRemoteFollowsOwner runs three nodes and uses a log through a node
// that does not own it: appends, reads, conditional appends, out-of-range
// reads, describe, trim, a long poll and a tail all reach the owner's
// partition as typed requests over remote (the entry node, asked itself,
// would refuse: it does not own the log). Then the owner stops, and the
// long poll and the tail follow the log to its next owner, another node;
// then that one stops too, and they follow the log to the node they were
// sent to.
func TestRemoteFollowsOwner(t *testing.T) {
	tc := newTestCluster(t)
	nodes := []*nodeProc{tc.start(t, "node-a"), tc.start(t, "node-b"), tc.start(t, "node-c")}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const name = "routed"
	if err := nodes[0].c.Create(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	owner := waitOwner(t, nodes, name, "")
	// The entry node is the one that will not own the log once the owner
	// leaves (rendezvous hashing over the two left), so the log first moves
	// to another remote node.
	resource := ""
	{
		code, _, body := owner.do(t, "GET", "/v1/cluster", "")
		var raw struct {
			Leases []struct {
				Resource string `json:"resource"`
				Topic    string `json:"topic"`
			} `json:"leases"`
		}
		if err := json.Unmarshal([]byte(body), &raw); code != 200 || err != nil {
			t.Fatalf("GET /v1/cluster: %d %s %v", code, body, err)
		}
		for _, l := range raw.Leases {
			if l.Topic == name {
				resource = l.Resource
			}
		}
	}
	var rest []meta.Node
	for _, n := range nodes {
		if n != owner {
			rest = append(rest, meta.Node{ID: n.id})
		}
	}
	nextID := (&actors.ClusterView{Nodes: rest}).Desired(resource)
	var entry, next *nodeProc
	for _, n := range nodes {
		switch {
		case n == owner:
		case n.id == nextID:
			next = n
		default:
			entry = n
		}
	}
	t.Logf("owner %s, entry %s, next owner %s", owner.id, entry.id, next.id)

	want := []string{"a", "b", "c"}
	r, err := entry.c.Append(ctx, name, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	if err != nil || r.Start != 0 || r.End != 3 {
		t.Fatalf("append through %s: %+v %v", entry.id, r, err)
	}
	for _, n := range []*nodeProc{entry, owner} {
		res, err := n.c.Read(ctx, name, 0, nil)
		if err != nil || res.EndOffset != 3 {
			t.Fatalf("read through %s: %+v %v", n.id, res, err)
		}
		checkEntries(t, "read through "+n.id, res.Entries, want)
	}
	_, err = entry.c.AppendIf(ctx, name, [][]byte{[]byte("x")}, 1)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != client.CodeConflict || ae.Status != 409 || ae.EndOffset != 3 {
		t.Fatalf("conditional append at a stale offset through %s: %v", entry.id, err)
	}
	_, err = entry.c.Read(ctx, name, 10, nil)
	if !errors.As(err, &ae) || ae.Code != client.CodeOffsetOutOfRange || ae.StartOffset != 0 || ae.EndOffset != 3 {
		t.Fatalf("read past the end through %s: %v", entry.id, err)
	}
	info, err := entry.c.Describe(ctx, name)
	if err != nil || info.EndOffset != 3 || info.StartOffset != 0 {
		t.Fatalf("describe through %s: %+v %v", entry.id, info, err)
	}

	// A long poll through the entry node parks on the owner and wakes when
	// an entry commits.
	type readResult struct {
		res client.ReadResult
		err error
		at  time.Time
	}
	longPoll := func(from int64) chan readResult {
		ch := make(chan readResult, 1)
		go func() {
			res, err := entry.c.Read(ctx, name, from, &client.ReadOptions{Wait: 15 * time.Second})
			ch <- readResult{res, err, time.Now()}
		}()
		return ch
	}
	poll := longPoll(3)
	time.Sleep(300 * time.Millisecond)
	appended := time.Now()
	if _, err := next.c.Append(ctx, name, [][]byte{[]byte("d")}); err != nil {
		t.Fatalf("append through %s: %v", next.id, err)
	}
	want = append(want, "d")
	got := <-poll
	if got.err != nil || len(got.res.Entries) != 1 || got.res.Entries[0].Index != 3 || string(got.res.Entries[0].Data) != "d" {
		t.Fatalf("long poll through %s: %+v %v", entry.id, got.res, got.err)
	}
	if lag := got.at.Sub(appended); lag > 3*time.Second {
		t.Fatalf("long poll answered %s after the append", lag)
	}

	// A tail through the entry node gets the same entries as events.
	tail := startTail(ctx, entry.c, name, 0)
	defer tail.cancel()
	checkEntries(t, "tail", tail.waitFor(t, 4, 10*time.Second), want)
	if _, err := entry.c.Append(ctx, name, [][]byte{[]byte("e")}); err != nil {
		t.Fatal(err)
	}
	want = append(want, "e")
	checkEntries(t, "tail", tail.waitFor(t, 5, 10*time.Second), want)

	// A trim through the entry node moves the owner's log start; the tail,
	// past it already, does not notice.
	if start, err := entry.c.Trim(ctx, name, 1); err != nil || start != 1 {
		t.Fatalf("trim through %s: %d %v", entry.id, start, err)
	}
	if info, err := entry.c.Describe(ctx, name); err != nil || info.StartOffset != 1 || info.EndOffset != 5 {
		t.Fatalf("describe through %s after the trim: %+v %v", entry.id, info, err)
	}
	_, err = entry.c.Read(ctx, name, 0, nil)
	if !errors.As(err, &ae) || ae.Code != client.CodeOffsetOutOfRange || ae.StartOffset != 1 || ae.EndOffset != 5 {
		t.Fatalf("read below the log start through %s: %v", entry.id, err)
	}

	// The owner leaves. The long poll parked on it and the tail move on to
	// the next owner, another remote node.
	poll = longPoll(5)
	time.Sleep(300 * time.Millisecond)
	owner.stop(t)
	if got := waitOwner(t, nodes, name, owner.id); got != next {
		t.Fatalf("the log moved to %s, want %s", got.id, next.id)
	}
	if _, err := entry.c.Append(ctx, name, [][]byte{[]byte("f")}); err != nil {
		t.Fatalf("append through %s after the owner left: %v", entry.id, err)
	}
	want = append(want, "f")
	got = <-poll
	if got.err != nil || len(got.res.Entries) != 1 || got.res.Entries[0].Index != 5 || string(got.res.Entries[0].Data) != "f" {
		t.Fatalf("long poll through %s across the move: %+v %v", entry.id, got.res, got.err)
	}
	checkEntries(t, "tail across the move", tail.waitFor(t, 6, 15*time.Second), want)

	// The next owner leaves too: the log comes to the entry node itself,
	// and the tail, now fed locally, goes on.
	next.stop(t)
	if got := waitOwner(t, nodes, name, next.id); got != entry {
		t.Fatalf("the log moved to %s, want %s", got.id, entry.id)
	}
	if _, err := entry.c.Append(ctx, name, [][]byte{[]byte("g")}); err != nil {
		t.Fatalf("append on %s, now the owner: %v", entry.id, err)
	}
	want = append(want, "g")
	checkEntries(t, "tail after the log came home", tail.waitFor(t, 7, 15*time.Second), want)
	res, err := entry.c.Read(ctx, name, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, "final read", append([]client.Entry{{Index: 0, Data: []byte(want[0])}}, res.Entries...), want)
	tail.cancel()
	<-tail.done
	if !errors.Is(tail.err, context.Canceled) {
		t.Fatalf("tail ended with %v, want context.Canceled", tail.err)
	}
}

// TestRemoteBadInput checks, on two nodes, that bad requests through the
// node that does not own a log get the answers they get on the owner.
// (That an owner refuses requests for partitions it does not own, and
// never sends them on, is tested in package actors.)
func TestRemoteBadInput(t *testing.T) {
	tc := newTestCluster(t)
	nodes := []*nodeProc{tc.start(t, "node-a"), tc.start(t, "node-b")}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const name = "guarded"
	if err := nodes[1].c.Create(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	owner := waitOwner(t, nodes, name, "")
	other := nodes[0]
	if other == owner {
		other = nodes[1]
	}
	if _, err := other.c.Append(ctx, name, [][]byte{[]byte("x"), []byte("y")}); err != nil {
		t.Fatal(err)
	}

	cases := []struct{ method, path, body string }{
		{"POST", "/v1/append", `{`},
		{"POST", "/v1/append", `{"name":"guarded","entries":[{"data":"not base64!"}]}`},
		{"POST", "/v1/append", `{"name":"guarded","entries":[]}`},
		{"POST", "/v1/append", `{"name":"no-such-log","entries":[{"data":"eA=="}]}`},
		{"POST", "/v1/append", `{"name":"guarded","entries":[{"data":"eA=="}],"expected_offset":0}`},
		{"POST", "/v1/append", `{"name":"guarded","entries":[{"data":"eA=="}],"partition":3}`},
		{"POST", "/v1/read", `{"name":"guarded","offset":-1}`},
		{"POST", "/v1/read", `{"name":"guarded","offset":"0"}`},
		{"POST", "/v1/read", `{"name":"guarded","offset":99}`},
		{"POST", "/v1/trim", `{"name":"guarded","offset":99}`},
		{"GET", "/v1/read", ``},
		{"GET", "/v1/logs/guarded?partition=x", ``},
		{"GET", "/v1/logs/guarded?partition=5", ``},
		{"GET", "/v1/logs/no-such-log", ``},
		{"GET", "/v1/logs/guarded/tail?offset=abc", ``},
		{"GET", "/v1/logs/guarded/tail?offset=99", ``},
	}
	for _, c := range cases {
		ws, wct, wb := owner.do(t, c.method, c.path, c.body)
		gs, gct, gb := other.do(t, c.method, c.path, c.body)
		if ws < 400 || ws > 499 {
			t.Errorf("%s %s %s on the owner: %d %s, want a 4xx", c.method, c.path, c.body, ws, wb)
		}
		if gs != ws || gct != wct || gb != wb {
			t.Errorf("%s %s %s:\n  owner     %d %s %s\n  non-owner %d %s %s", c.method, c.path, c.body, ws, wct, wb, gs, gct, gb)
		}
	}

	// Nothing above reached the log but the two entries appended first.
	res, err := other.c.Read(ctx, name, 0, nil)
	if err != nil || res.EndOffset != 2 {
		t.Fatalf("read: %+v %v", res, err)
	}
}

// TestRemoteAppendToPausedOwner pauses the owner of a log (SIGSTOP: its
// connections stay open, nothing answers) and appends through the other
// node. The append reached the owner and may yet be applied, so it must
// not be retried elsewhere: the client gets 504 saying the outcome is
// unknown, once the other node has seen the log move. Reads then go on
// against the new owner, and the log stays dense whatever became of the
// append.
func TestRemoteAppendToPausedOwner(t *testing.T) {
	tc := newTestCluster(t)
	nodes := []*nodeProc{tc.start(t, "node-a"), tc.start(t, "node-b")}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const name = "paused"
	if err := nodes[0].c.Create(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	owner := waitOwner(t, nodes, name, "")
	other := nodes[0]
	if other == owner {
		other = nodes[1]
	}
	if _, err := other.c.Append(ctx, name, [][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(owner.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(owner.cmd.Process.Pid, syscall.SIGCONT)
		}
	}
	defer resume()
	asked := time.Now()
	_, err := other.c.Append(ctx, name, [][]byte{[]byte("x")})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusGatewayTimeout || ae.Code != client.CodeUnavailable || !strings.Contains(ae.Message, "may or may not") {
		t.Fatalf("append to a paused owner: %v, want 504 outcome unknown", err)
	}
	t.Logf("append to the paused owner answered after %s: %v", time.Since(asked).Round(time.Millisecond), err)

	// The other node takes the log over once the lease expires; reads
	// retried by the client meanwhile get 503s, then the log.
	var res client.ReadResult
	for {
		res, err = other.c.Read(ctx, name, 0, nil)
		if err == nil {
			break
		}
		if !errors.As(err, &ae) || !ae.Temporary() || ctx.Err() != nil {
			t.Fatalf("read after the owner paused: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(res.Entries) == 0 || string(res.Entries[0].Data) != "a" || res.EndOffset != int64(len(res.Entries)) || len(res.Entries) > 2 {
		t.Fatalf("log after the owner paused: %+v", res)
	}
	for i, e := range res.Entries {
		if e.Index != int64(i) {
			t.Fatalf("entry %d has index %d", i, e.Index)
		}
	}
	resume()
	if _, err := other.c.Append(ctx, name, [][]byte{[]byte("b")}); err != nil {
		t.Fatalf("append after the move: %v", err)
	}
}
