package main

// Cluster tests: several real `morax start` processes sharing one
// PostgreSQL database and one bucket prefix, driven by stock Kafka clients
// (franz-go) and the WAL client while nodes are killed, paused, restarted
// and added. What they check is the design's invariants, not speed:
// acknowledged records are never lost or duplicated, offsets stay dense,
// and no partition is ever committed to by two owners at once (read
// straight from the segments table). Times are logged, never asserted;
// every timeout is only a bound on failure.
//
// They need the dev servers (dev/up.sh, then `set -a; . dev/.env; set +a`)
// and skip without them, or fail under MORAX_REQUIRE_INTEGRATION=1.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/wire/wal/client"
)

const (
	clusterTopicPartitions = 12
	// Producers and their pace: two producers at one record per 5 ms is
	// steady traffic on every partition that two cores can carry next to
	// three nodes, MinIO and PostgreSQL.
	clusterProducers  = 2
	clusterProduceGap = 5 * time.Millisecond
)

// startThree starts node1..node3 and a 12-partition topic, and waits until
// its ownership has settled.
func startThree(t *testing.T, topic string) (*testCluster, map[int32]partLease) {
	t.Helper()
	c := newTestCluster(t)
	for i := 1; i <= 3; i++ {
		c.addNode(fmt.Sprintf("node%d", i))
	}
	c.createTopic(topic, clusterTopicPartitions)
	_, leases := c.waitBalanced(topic, clusterTopicPartitions, 30*time.Second)
	t.Logf("%s ownership: %v", topic, countByNode(leases))
	return c, leases
}

// mostPartitions is the node holding the most partitions (lowest id on a
// tie, so the choice is reproducible).
func mostPartitions(c *testCluster, leases map[int32]partLease) *testNode {
	counts := countByNode(leases)
	ids := slices.Sorted(maps.Keys(counts))
	best := ""
	for _, id := range ids {
		if id != "" && (best == "" || counts[id] > counts[best]) {
			best = id
		}
	}
	return c.node(best)
}

// createWAL creates a WAL log owned by victim, so that the failure takes
// the log's owner away from under the appends, and returns a node other
// than victim to append through: every append is forwarded. The log's owner
// follows from its random id, so names are tried until one lands on victim
// (each does with probability about 1/3); the logs left over stay empty.
func createWAL(c *testCluster, victim *testNode) (name string, via *testNode) {
	c.t.Helper()
	cl, err := client.New("http://" + c.nodes[0].walAddr)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var owner partLease
	for i := 0; i < 12; i++ {
		name = fmt.Sprintf("journal-%d", i)
		if err := cl.Create(ctx, name, nil); err != nil {
			c.t.Fatalf("create WAL log %s: %v", name, err)
		}
		if owner = c.ownerOf(name, 0); owner.Node == victim.id {
			break
		}
	}
	for _, n := range c.nodes {
		if n.id != owner.Node && n != victim {
			c.t.Logf("WAL log %s is owned by %s (epoch %d); appending through %s", name, owner.Node, owner.Epoch, n.id)
			return name, n
		}
	}
	c.t.Fatalf("no node besides %s and %s to append to %s through", owner.Node, victim.id, name)
	return "", nil
}

// TestClusterKillFailover SIGKILLs the node owning the most partitions of a
// topic under produce load (and under WAL appends forwarded by another
// node), lets the others take its partitions over when its leases expire,
// restarts it with the same identity, and checks that every acknowledged
// record and WAL entry is there exactly once at its offset.
func TestClusterKillFailover(t *testing.T) { runFailover(t, false) }

// TestClusterPauseFenced SIGSTOPs the busiest node until its leases have
// expired and other nodes hold its partitions at newer epochs, then wakes
// it: it still believes it owns them, and must be fenced by the database,
// never committing under its old epochs.
func TestClusterPauseFenced(t *testing.T) { runFailover(t, true) }

func runFailover(t *testing.T, pause bool) {
	const topic = "orders"
	c, leases := startThree(t, topic)
	victim := mostPartitions(c, leases)
	logName, via := createWAL(c, victim)

	load := c.startProducers(topic, clusterTopicPartitions, clusterProducers, clusterProduceGap)
	wal := c.startWAL(logName, via, 20*time.Millisecond)
	load.waitAcked(500, 60*time.Second)

	// What the victim holds just before it fails: those epochs must be
	// superseded.
	s, err := c.status()
	if err != nil {
		t.Fatal(err)
	}
	lost := map[int32]int64{}
	for p, l := range s.partitionLeases(topic) {
		if l.Node == victim.id {
			lost[p] = l.Epoch
		}
	}
	walLease := s.partitionLeases(logName)[0]
	if len(lost) == 0 {
		t.Fatalf("%s owns no partition of %s any more: %v", victim.id, topic, countByNode(s.partitionLeases(topic)))
	}
	how := "SIGKILL"
	if pause {
		how = "SIGSTOP"
	}
	t.Logf("%s %s, owner of %d partitions of %s (epochs %v) and of WAL log %s: %v",
		how, victim.id, len(lost), topic, lost, logName, walLease.Node == victim.id)

	failedAt := time.Now()
	t.Logf("%s at %s", how, failedAt.Format("15:04:05.000"))
	if pause {
		victim.pause()
	} else {
		victim.kill()
	}
	wal.markFailover(failedAt)

	// The others take every lost partition over, at a newer epoch.
	takenAt := c.waitFor("takeover of "+victim.id+"'s partitions", 30*time.Second, func() (bool, string) {
		s, err := c.status()
		if err != nil {
			return false, err.Error()
		}
		now := s.partitionLeases(topic)
		for p, e := range lost {
			if l := now[p]; l.Node == "" || l.Node == victim.id || l.Epoch <= e {
				return false, fmt.Sprintf("partition %d: owner %q epoch %d (lost epoch %d)", p, l.Owner, l.Epoch, e)
			}
		}
		if walLease.Node == victim.id {
			wl := s.partitionLeases(logName)[0]
			if wl.Node == "" || wl.Node == victim.id || wl.Epoch <= walLease.Epoch {
				return false, fmt.Sprintf("WAL log: owner %q epoch %d", wl.Owner, wl.Epoch)
			}
		}
		return true, ""
	})
	t.Logf("%s's leases held by other nodes %s after %s", victim.id, takenAt.Sub(failedAt).Round(time.Millisecond), how)
	load.waitAcked(300, 60*time.Second)

	var fencedFrom time.Time
	if pause {
		// From here on the woken node must commit nothing under the epochs
		// it lost. The database clock is the one segments are stamped with.
		fencedFrom = c.dbNow()
		victim.resume()
		t.Logf("SIGCONT %s %s after SIGSTOP", victim.id, time.Since(failedAt).Round(time.Millisecond))
		// Let it run into its lost leases for a few heartbeats before the
		// cluster settles again.
		load.waitAcked(300, 60*time.Second)
	} else {
		victim.start()
		t.Logf("%s restarted %s after SIGKILL", victim.id, time.Since(failedAt).Round(time.Millisecond))
	}
	// Ownership converges back, the victim (alive again) taking its share.
	_, final := c.waitBalanced(topic, clusterTopicPartitions, 45*time.Second)
	load.waitAcked(300, 60*time.Second)
	// Appends through the surviving node reach the log's owner again.
	wal.waitAcked(10, 30*time.Second)
	acked := load.stop()
	wal.stop()

	c.checkSegments()
	checkRecords(t, topic, c.readAll(topic, clusterTopicPartitions), acked)
	reportFailover(t, c, topic, lost, acked, failedAt, how)
	wal.check()

	// Every lease the victim held moved on to a newer epoch (even where
	// the victim owns the partition again).
	lostBy := map[string]map[int32]int64{topic: lost}
	if walLease.Node == victim.id {
		lostBy[logName] = map[int32]int64{0: walLease.Epoch}
	}
	after, err := c.status()
	if err != nil {
		t.Fatal(err)
	}
	for name, ps := range lostBy {
		now := after.partitionLeases(name)
		if name == topic {
			now = final
		}
		for p, e := range ps {
			if now[p].Epoch <= e {
				t.Errorf("%s/%d: epoch %d after the failover, not above the lost epoch %d", name, p, now[p].Epoch, e)
			}
		}
	}
	if pause {
		// The woken node must not have committed under a lost epoch.
		for _, s := range c.segments() {
			if e, ok := lostBy[s.topic][s.partition]; ok && s.epoch <= e && s.created.After(fencedFrom) {
				t.Errorf("%s/%d: segment [%d,%d) committed at %s under lost epoch %d, after %s was woken: not fenced",
					s.topic, s.partition, s.base, s.end, s.created.Format(time.RFC3339Nano), s.epoch, victim.id)
			}
		}
	}
}

// reportFailover logs the failover time: from the failure to the first
// record acknowledged on a partition the failed node owned, by its new
// owner, and until every such partition had one.
func reportFailover(t *testing.T, c *testCluster, topic string, lost map[int32]int64, acked []ackedRecord, at time.Time, how string) {
	t.Helper()
	first, all, missing := c.failoverTimes(topic, lost, acked, at)
	if first < 0 {
		t.Errorf("failover: no record acknowledged by a new owner on any of %v", slices.Sorted(maps.Keys(lost)))
		return
	}
	t.Logf("failover after %s: first record acknowledged by a new owner %s after the failure; all %d lost partitions producing again after %s",
		how, first.Round(time.Millisecond), len(lost), all.Round(time.Millisecond))
	if len(missing) > 0 {
		t.Logf("failover: partitions %v had no record acknowledged under a newer epoch (moved back before any?)", missing)
	}
}

// TestClusterRollingRestart restarts every node in turn (SIGTERM, wait for
// a clean exit, start again) while producers write and a consumer group
// reads, committing explicitly after processing. Nothing acknowledged is
// lost, the group never redelivers a record below an offset it committed,
// and a fresh consumer in the group resumes exactly at the committed
// offsets.
func TestClusterRollingRestart(t *testing.T) {
	const topic, group = "events", "rolling"
	c, _ := startThree(t, topic)
	load := c.startProducers(topic, clusterTopicPartitions, clusterProducers, clusterProduceGap)
	cons := c.startGroupConsumer(group, topic, nil)
	load.waitAcked(300, 60*time.Second)
	cons.waitConsumed(200, 60*time.Second)

	for _, n := range slices.Clone(c.nodes) {
		coordBefore := c.coordinator(group)
		began := time.Now()
		n.stop()
		stoppedIn := time.Since(began)
		// Graceful stop released the leases: the others own everything
		// without waiting for expiry.
		handedAt := c.waitFor("partitions of "+n.id+" taken over", 30*time.Second, func() (bool, string) {
			s, err := c.status()
			if err != nil {
				return false, err.Error()
			}
			for p, l := range s.partitionLeases(topic) {
				if l.Node == "" || l.Node == n.id {
					return false, fmt.Sprintf("partition %d held by %q", p, l.Owner)
				}
			}
			return true, ""
		})
		coordDuring := c.coordinator(group)
		load.waitAcked(100, 60*time.Second)
		n.start()
		balancedAt, _ := c.waitBalanced(topic, clusterTopicPartitions, 45*time.Second)
		t.Logf("rolling restart of %s: exited %s after SIGTERM, partitions held elsewhere %s after SIGTERM, rebalanced %s after SIGTERM; group coordinator %s before, %s while it was down, %s after",
			n.id, stoppedIn.Round(time.Millisecond), handedAt.Sub(began).Round(time.Millisecond), balancedAt.Sub(began).Round(time.Millisecond),
			coordBefore, coordDuring, c.coordinator(group))
		load.waitAcked(100, 60*time.Second)
		cons.waitConsumed(50, 60*time.Second)
	}
	acked := load.stop()
	ends := c.partitionEnds(topic)
	cons.waitCommitted(ends, 60*time.Second)
	cons.stop()

	c.checkSegments()
	checkRecords(t, topic, c.readAll(topic, clusterTopicPartitions), acked)
	cons.checkSaw(acked)

	// The group resumes where it committed: produce a few more records,
	// then a new member of the group must start exactly at the committed
	// offsets (nothing older redelivered) and see every new record.
	more := c.produceSync(topic, clusterTopicPartitions, 3)
	after := c.partitionEnds(topic)
	fresh := c.startGroupConsumer(group, topic, cons.committedOffsets())
	fresh.waitCommitted(after, 60*time.Second)
	fresh.stop()
	fresh.checkSaw(more)
	fresh.mu.Lock()
	for p := range int32(clusterTopicPartitions) {
		offs := slices.Sorted(maps.Keys(fresh.got[p]))
		if len(offs) > 0 && offs[0] != ends[p] {
			t.Errorf("partition %d: the resumed group member started at %d, the group had committed %d", p, offs[0], ends[p])
		}
		if int64(len(offs)) != after[p]-ends[p] {
			t.Errorf("partition %d: the resumed member read %d records, want %d (offsets %d..%d)", p, len(offs), after[p]-ends[p], ends[p], after[p]-1)
		}
	}
	fresh.mu.Unlock()
}

// TestClusterJoin adds a fourth node to a loaded three-node cluster: it
// takes its rendezvous share of the partitions (and only those move), with
// no acknowledged record lost and never two owners committing at once.
func TestClusterJoin(t *testing.T) {
	const topic = "clicks"
	c, before := startThree(t, topic)
	load := c.startProducers(topic, clusterTopicPartitions, clusterProducers, clusterProduceGap)
	load.waitAcked(500, 60*time.Second)

	// The topic id is random, so a fixed name for the new node would win
	// no partition of it in about 3% of runs ((3/4)^12): pick a name that
	// the rendezvous choice gives a share, so the test always moves some.
	id := c.topicID(topic)
	name := ""
	var want map[int32]string
	for i := 0; name == ""; i++ {
		cand := "node4"
		if i > 0 {
			cand = fmt.Sprintf("node4-%d", i)
		}
		want = desiredOwners(id, clusterTopicPartitions, append(c.liveIDs(), cand))
		if countByNode(leasesOf(want))[cand] >= 2 {
			name = cand
		}
	}

	startedAt := time.Now()
	n4 := c.addNode(name)
	healthyIn := time.Since(startedAt)
	balancedAt, after := c.waitBalanced(topic, clusterTopicPartitions, 45*time.Second)
	t.Logf("join: %s healthy %s after its start; ownership settled %s after its start: %v",
		n4.id, healthyIn.Round(time.Millisecond), balancedAt.Sub(startedAt).Round(time.Millisecond), countByNode(after))
	load.waitAcked(300, 60*time.Second)
	acked := load.stop()

	for p := range int32(clusterTopicPartitions) {
		switch {
		case want[p] == n4.id && after[p].Epoch <= before[p].Epoch:
			t.Errorf("partition %d moved to %s without a new epoch (%d, was %d)", p, n4.id, after[p].Epoch, before[p].Epoch)
		case want[p] != n4.id && (after[p].Owner != before[p].Owner || after[p].Epoch != before[p].Epoch):
			t.Errorf("partition %d moved from %s@%d to %s@%d though %s does not win it", p,
				before[p].Owner, before[p].Epoch, after[p].Owner, after[p].Epoch, n4.id)
		}
	}
	c.checkSegments()
	checkRecords(t, topic, c.readAll(topic, clusterTopicPartitions), acked)
}

// leasesOf turns a partition -> node map into leases, for countByNode.
func leasesOf(owners map[int32]string) map[int32]partLease {
	out := map[int32]partLease{}
	for p, n := range owners {
		out[p] = partLease{Node: n}
	}
	return out
}

// ---- consumer group --------------------------------------------------------

// groupConsumer is one member of a consumer group that commits explicitly
// after processing each poll, and checks that the group never hands it a
// record below an offset the group acknowledged committing.
type groupConsumer struct {
	c      *testCluster
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	got        map[int32]map[int64]string
	committed  map[int32]int64 // per partition: the highest commit the coordinator acknowledged
	commitErrs int
	fetchErrs  int
	lastErr    error
	problems   []string
}

// startGroupConsumer joins group. committed are offsets known to be
// committed already (a previous member's), below which nothing may be
// delivered.
func (c *testCluster) startGroupConsumer(group, topic string, committed map[int32]int64) *groupConsumer {
	c.t.Helper()
	g := &groupConsumer{c: c, done: make(chan struct{}), got: map[int32]map[int64]string{}, committed: map[int32]int64{}}
	maps.Copy(g.committed, committed)
	g.cl = c.kafkaClient(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(10*time.Second),
	)
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	c.t.Cleanup(cancel) // a test that fails half-way never calls stop
	go func() {
		defer close(g.done)
		for ctx.Err() == nil {
			fs := g.cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachError(func(topic string, p int32, err error) {
				g.mu.Lock()
				g.fetchErrs++
				g.lastErr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
				g.mu.Unlock()
			})
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			g.mu.Lock()
			for _, r := range recs {
				if c := g.committed[r.Partition]; r.Offset < c {
					g.problems = append(g.problems, fmt.Sprintf("partition %d: offset %d delivered after the group committed %d", r.Partition, r.Offset, c))
				}
				m := g.got[r.Partition]
				if m == nil {
					m = map[int64]string{}
					g.got[r.Partition] = m
				}
				if v, ok := m[r.Offset]; ok && v != string(r.Value) {
					g.problems = append(g.problems, fmt.Sprintf("partition %d offset %d: read %q, earlier %q", r.Partition, r.Offset, r.Value, v))
				}
				m[r.Offset] = string(r.Value)
			}
			g.mu.Unlock()
			// Processing done: commit what this poll returned.
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			err := g.cl.CommitRecords(cctx, recs...)
			ccancel()
			g.mu.Lock()
			if err != nil {
				g.commitErrs++
				g.lastErr = fmt.Errorf("commit: %w", err)
			} else {
				for _, r := range recs {
					g.committed[r.Partition] = max(g.committed[r.Partition], r.Offset+1)
				}
			}
			g.mu.Unlock()
		}
	}()
	return g
}

func (g *groupConsumer) consumedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, m := range g.got {
		n += len(m)
	}
	return n
}

// waitConsumed waits until n more records than now were consumed.
func (g *groupConsumer) waitConsumed(n int, timeout time.Duration) {
	g.c.t.Helper()
	target := g.consumedCount() + n
	g.c.waitFor(fmt.Sprintf("group consumer at %d records", target), timeout, func() (bool, string) {
		g.mu.Lock()
		last := g.lastErr
		g.mu.Unlock()
		got := g.consumedCount()
		return got >= target, fmt.Sprintf("%d consumed (last error %v)", got, last)
	})
}

// waitCommitted waits until the group has committed each partition up to
// ends, having read everything below.
func (g *groupConsumer) waitCommitted(ends map[int32]int64, timeout time.Duration) {
	g.c.t.Helper()
	g.c.waitFor("group committed to the end of every partition", timeout, func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		for p, end := range ends {
			if g.committed[p] < end {
				return false, fmt.Sprintf("partition %d committed %d of %d (last error %v)", p, g.committed[p], end, g.lastErr)
			}
		}
		return true, ""
	})
}

func (g *groupConsumer) committedOffsets() map[int32]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.committed)
}

// stop leaves the group (committing nothing more: auto-commit is off) and
// reports what the member saw.
func (g *groupConsumer) stop() {
	g.cancel()
	<-g.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.cl.LeaveGroupContext(ctx); err != nil {
		g.c.t.Logf("leave group: %v", err)
	}
	g.cl.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.c.t.Logf("group member: %d fetch errors, %d failed commits (last error: %v)", g.fetchErrs, g.commitErrs, g.lastErr)
	for i, p := range g.problems {
		if i == 20 {
			g.c.t.Errorf("... %d group problems in all", len(g.problems))
			break
		}
		g.c.t.Errorf("consumer group: %s", p)
	}
}

// checkSaw checks the member read every acknowledged record, with its value.
func (g *groupConsumer) checkSaw(acked []ackedRecord) {
	g.c.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	missing := 0
	for _, a := range acked {
		if v, ok := g.got[a.partition][a.offset]; !ok || v != a.value {
			missing++
			if missing <= 10 {
				g.c.t.Errorf("consumer group did not read acknowledged %q at %d/%d (read %q)", a.value, a.partition, a.offset, v)
			}
		}
	}
	if missing > 10 {
		g.c.t.Errorf("... %d acknowledged records not read by the group", missing)
	}
}

// produceSync writes perPartition records to every partition, one
// acknowledged batch at a time, and returns them.
func (c *testCluster) produceSync(topic string, partitions int32, perPartition int) []ackedRecord {
	c.t.Helper()
	cl := c.kafkaClient(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	var recs []*kgo.Record
	seq := 0
	for range perPartition {
		for p := range partitions {
			recs = append(recs, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "p9-%09d", seq)})
			seq++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		c.t.Fatalf("produce %d records: %v", len(recs), err)
	}
	var out []ackedRecord
	for _, r := range res {
		out = append(out, ackedRecord{partition: r.Record.Partition, offset: r.Record.Offset, value: string(r.Record.Value), at: time.Now()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].value < out[j].value })
	return out
}

// coordinator asks the cluster (FindCoordinator) which node coordinates
// group, waiting while the answer is a retriable error (a slot moving).
func (c *testCluster) coordinator(group string) string {
	c.t.Helper()
	cl := c.kafkaClient()
	defer cl.Close()
	node := ""
	c.waitFor("coordinator of group "+group, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = group
		req.CoordinatorKeys = []string{group}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return false, err.Error()
		}
		code, host, port := resp.ErrorCode, resp.Host, resp.Port
		if len(resp.Coordinators) > 0 {
			k := resp.Coordinators[0]
			code, host, port = k.ErrorCode, k.Host, k.Port
		}
		if code != 0 {
			return false, kerr.ErrorForCode(code).Error()
		}
		addr := fmt.Sprintf("%s:%d", host, port)
		for _, n := range c.nodes {
			if n.kafkaAddr == addr {
				node = n.id
				return true, ""
			}
		}
		return false, "coordinator " + addr + " is no node of the cluster"
	})
	return node
}
