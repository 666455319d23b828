package actors_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
)

// clusterNode is one broker of an in-process cluster sharing a backend.
type clusterNode struct {
	id     string
	b      *actors.Broker
	m      *actors.Membership
	closed bool
}

const clusterTTL = 3 * time.Second

// startClusterNode starts a broker with membership and the ownership loop.
func startClusterNode(t *testing.T, be backend, id string, slots int) *clusterNode {
	t.Helper()
	o := testOptions(id)
	o.LeaseTTL = clusterTTL
	b := startBroker(t, be, o)
	self := meta.Node{ID: id, KafkaAddr: "127.0.0.1:1", WALAddr: "127.0.0.1:2", RemoteAddr: "127.0.0.1:3"}
	m, err := actors.StartMembership(context.Background(), be.meta, self, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{id: id, b: b, m: m}
	if err := b.StartCluster(actors.ClusterOptions{Self: self, Poll: 50 * time.Millisecond, Slots: slots}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop leaves the cluster gracefully: deregister, then drain.
func (n *clusterNode) stop(t *testing.T) {
	if n.closed {
		return
	}
	n.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.m.Close(ctx); err != nil {
		t.Errorf("%s: leave: %v", n.id, err)
	}
	if err := n.b.Close(ctx); err != nil {
		t.Errorf("%s: close: %v", n.id, err)
	}
}

// owners reads who holds each partition lease of tp (node id, "" vacant).
func owners(t *testing.T, be backend, tp meta.Topic) map[int32]meta.Lease {
	t.Helper()
	ls, err := be.meta.Leases(context.Background(), meta.TopicResourcePrefix(tp.ID))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]meta.Lease{}
	for _, l := range ls {
		for p := range tp.Partitions {
			if l.Resource == meta.PartitionResource(tp.ID, p) && l.Owner != "" && time.Now().Before(l.ExpiresAt) {
				out[p] = l
			}
		}
	}
	return out
}

// eventually polls cond until it holds or limit passes.
func eventually(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// waitFor polls cond until it holds, failing after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestClusterOwnership runs three brokers on one backend: every partition
// gets exactly the owner rendezvous hashing chooses, without any request;
// requests at a non-owner are refused with ErrNotOwner; a graceful leave
// hands its partitions over within a poll or two; and the log stays dense
// across owners.
func TestClusterOwnership(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		nodes := map[string]*clusterNode{}
		for _, id := range []string{"n1", "n2", "n3"} {
			nodes[id] = startClusterNode(t, be, id, 0)
		}
		tp := createTopic(t, nodes["n1"].b, "spread", 12, nil)
		full := func() bool {
			o := owners(t, be, tp)
			if len(o) != 12 {
				return false
			}
			v := nodes["n1"].b.ClusterView()
			for p, l := range o {
				if meta.LeaseNode(l.Owner) != v.Desired(meta.PartitionResource(tp.ID, p)) {
					return false
				}
			}
			return true
		}
		if !eventually(10*time.Second, full) {
			v := nodes["n1"].b.ClusterView()
			o := owners(t, be, tp)
			for p := range tp.Partitions {
				res := meta.PartitionResource(tp.ID, p)
				_, running := nodes[v.Desired(res)].b.LocalLeader(tp.ID, p)
				t.Logf("partition %d: desired %s (leads there: %v), lease %+v", p, v.Desired(res), running, o[p])
			}
			all, _ := be.meta.Leases(context.Background(), meta.TopicResourcePrefix(tp.ID))
			t.Logf("raw leases %+v; view nodes %v", all, v.Nodes)
			t.Fatal("every partition owned by its rendezvous choice: not after 10s")
		}
		// The spread itself is random per topic id (rendezvous properties
		// are tested in TestRendezvousSpreadsAndMovesLittle); the node
		// that leaves below is the one holding the most.
		perNode := map[string]int{}
		leaving := ""
		for _, l := range owners(t, be, tp) {
			id := meta.LeaseNode(l.Owner)
			perNode[id]++
			if leaving == "" || perNode[id] > perNode[leaving] {
				leaving = id
			}
		}

		// Each node serves its own partitions and refuses the others.
		own := owners(t, be, tp)
		for p := range tp.Partitions {
			holder := meta.LeaseNode(own[p].Owner)
			for id, n := range nodes {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := n.b.Append(ctx, tp, p, batchOf(t, fmt.Sprintf("%s-%d", id, p)), -1)
				cancel()
				switch {
				case id == holder && err != nil:
					t.Fatalf("owner %s refused partition %d: %v", id, p, err)
				case id != holder && !errors.Is(err, actors.ErrNotOwner):
					t.Fatalf("non-owner %s on partition %d: got %v, want ErrNotOwner", id, p, err)
				}
				if owner, self := n.b.PartitionOwner(tp.ID, p); owner.ID != holder || self != (id == holder) {
					t.Fatalf("%s: PartitionOwner(%d) = %s, %v; lease holder %s", id, p, owner.ID, self, holder)
				}
			}
		}

		// The busiest node leaves gracefully: its partitions move to the
		// others at once, with new epochs, and continue densely.
		moved := map[int32]meta.Lease{}
		for p, l := range own {
			if meta.LeaseNode(l.Owner) == leaving {
				moved[p] = l
			}
		}
		start := time.Now()
		nodes[leaving].stop(t)
		handoff := waitFor(t, 10*time.Second, "the leaver's partitions taken over", func() bool {
			o := owners(t, be, tp)
			for p := range moved {
				if l, ok := o[p]; !ok || meta.LeaseNode(l.Owner) == leaving {
					return false
				}
			}
			return true
		})
		t.Logf("%s: graceful handoff of %d partitions in %v (leave to every lease taken; %v after the leave returned)",
			be.name, len(moved), time.Since(start).Round(time.Millisecond), handoff.Round(time.Millisecond))
		after := owners(t, be, tp)
		for p, l := range moved {
			if after[p].Epoch <= l.Epoch {
				t.Fatalf("partition %d: epoch %d after handoff, was %d", p, after[p].Epoch, l.Epoch)
			}
			n := nodes[meta.LeaseNode(after[p].Owner)]
			r := appendOK(t, n.b, tp, p, batchOf(t, "after-handoff"))
			if r.BaseOffset != 1 {
				t.Fatalf("partition %d continued at %d, want 1", p, r.BaseOffset)
			}
		}
	})
}

// TestClusterJoinMovesAShare starts two nodes, adds a third, and checks
// that only partitions the newcomer wins move, that no partition ever had
// two holders at once, and that the newcomer ends up owning some.
func TestClusterJoinMovesAShare(t *testing.T) {
	be := allBackends[len(allBackends)-1].open(t) // PostgreSQL + MinIO
	a := startClusterNode(t, be, "j1", 0)
	startClusterNode(t, be, "j2", 0)
	tp := createTopic(t, a.b, "join", 24, nil)
	waitFor(t, 10*time.Second, "24 partitions owned", func() bool { return len(owners(t, be, tp)) == 24 })
	before := owners(t, be, tp)
	start := time.Now()
	c := startClusterNode(t, be, "j3", 0)
	v := c.b.ClusterView()
	want := 0
	for p := range tp.Partitions {
		if v.Desired(meta.PartitionResource(tp.ID, p)) == "j3" {
			want++
		}
	}
	if want == 0 {
		t.Fatal("rendezvous gave the newcomer nothing of 24 partitions")
	}
	waitFor(t, 15*time.Second, "newcomer owns its share", func() bool {
		n := 0
		for _, l := range owners(t, be, tp) {
			if meta.LeaseNode(l.Owner) == "j3" {
				n++
			}
		}
		return n == want
	})
	t.Logf("join: %d of 24 partitions moved to the newcomer in %v", want, time.Since(start).Round(time.Millisecond))
	after := owners(t, be, tp)
	for p, l := range after {
		was := before[p]
		if meta.LeaseNode(l.Owner) != "j3" && l.Owner != was.Owner {
			t.Fatalf("partition %d moved between old nodes (%s -> %s)", p, was.Owner, l.Owner)
		}
	}
}

// TestClusterSlots checks that group coordinator slots are spread over
// the nodes with exactly one owner each, and move on a graceful leave.
func TestClusterSlots(t *testing.T) {
	be := allBackends[0].open(t)
	const slots = 16
	a := startClusterNode(t, be, "s1", slots)
	b := startClusterNode(t, be, "s2", slots)
	// Both nodes in the view, every slot owned by its rendezvous choice
	// and by nobody else.
	placed := func() bool {
		v := a.b.ClusterView()
		if len(v.Nodes) != 2 {
			return false
		}
		for s := range slots {
			want := v.Desired(meta.SlotResource(s))
			if a.b.OwnsSlot(s) != (want == "s1") || b.b.OwnsSlot(s) != (want == "s2") {
				return false
			}
		}
		return true
	}
	waitFor(t, 10*time.Second, "every slot owned by exactly its rendezvous choice", placed)
	nA := 0
	for s := range slots {
		if a.b.OwnsSlot(s) {
			nA++
		}
	}
	if nA == 0 || nA == slots {
		t.Fatalf("s1 owns %d of %d slots", nA, slots)
	}
	b.stop(t)
	waitFor(t, 10*time.Second, "s1 owns every slot after s2 left", func() bool {
		for s := range slots {
			if !a.b.OwnsSlot(s) {
				return false
			}
		}
		return true
	})
}

// TestClusterGroupWritesFenced takes a group slot's lease away from its
// coordinator behind its back (as when the coordinator was paused past
// its lease): its next offset commit is refused with ErrNotCoordinator,
// and the offsets stored stay the ones the rightful owner wrote.
func TestClusterGroupWritesFenced(t *testing.T) {
	be := allBackends[len(allBackends)-1].open(t)
	const slots = 4
	n := startClusterNode(t, be, "f1", slots)
	groups := actors.NewGroups(n.b, actors.GroupOptions{Slots: slots, OwnsSlot: n.b.OwnsSlot})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = groups.Close(ctx)
	})
	const group = "fenced-group"
	slot := groups.Slot(group)
	waitFor(t, 10*time.Second, "slot owned", func() bool { return n.b.OwnsSlot(slot) })
	commit := func(off int64) error {
		ch := make(chan actors.CommitResult, 1)
		groups.CommitOffsets(actors.CommitRequest{Group: group, Generation: -1,
			Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: off}}}, func(r actors.CommitResult) { ch <- r })
		r := <-ch
		if r.Err != nil {
			return r.Err
		}
		for _, e := range r.Offsets {
			if e != nil {
				return e
			}
		}
		return nil
	}
	if err := commit(10); err != nil {
		t.Fatalf("commit while owning the slot: %v", err)
	}
	ctx := context.Background()
	res := meta.SlotResource(slot)
	ls, err := be.meta.Leases(ctx, res)
	if err != nil || len(ls) != 1 {
		t.Fatalf("slot lease: %v %v", ls, err)
	}
	if err := be.meta.ReleaseLease(ctx, res, ls[0].Owner, ls[0].Epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := be.meta.AcquireLease(ctx, res, "other@x", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := commit(20); !errors.Is(err, actors.ErrNotCoordinator) {
		t.Fatalf("commit after the slot was taken: got %v, want ErrNotCoordinator", err)
	}
	offs, err := be.meta.FetchOffsets(ctx, group, nil)
	if err != nil || len(offs) != 1 || offs[0].Offset != 10 {
		t.Fatalf("stored offsets %+v, %v; want only the commit made while owning", offs, err)
	}
	waitFor(t, 10*time.Second, "the loop notices the lost slot", func() bool { return !n.b.OwnsSlot(slot) })
}

// TestIdlePollsSkipTheFullRead checks that an idle node's polls read only
// the live nodes and the catalog version: the topic list and the leases,
// which grow with the partitions, are reread once per refresh (half the
// lease), not every poll. A topic created through the store still reaches
// the loop at once, through the catalog version.
func TestIdlePollsSkipTheFullRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		o := testOptions("idle")
		reg := o.Metrics.(*prometheus.Registry)
		b := startBroker(t, be, o)
		self := meta.Node{ID: "idle", KafkaAddr: "127.0.0.1:1", WALAddr: "127.0.0.1:2", RemoteAddr: "127.0.0.1:3"}
		m, err := actors.StartMembership(context.Background(), be.meta, self, 100*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		if err := b.StartCluster(actors.ClusterOptions{Self: self, Poll: 10 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		reads := func(kind string) float64 { return labelledCounter(t, reg, "morax_cluster_reads_total", "read", kind) }
		full := func() float64 { return reads("topics") + reads("leases") }

		tp := createTopic(t, b, "idle-a", 4, nil)
		waitFor(t, 10*time.Second, "idle-a owned", func() bool { return len(owners(t, be, tp)) == 4 })

		start, fullBefore, nodesBefore := time.Now(), full(), reads("nodes")
		waitFor(t, 30*time.Second, "50 polls", func() bool { return reads("nodes") >= nodesBefore+50 })
		// Refresh is half of the 3 s lease; allow one more for a refresh
		// that was due as the window opened.
		allowed := float64(time.Since(start)/(o.LeaseTTL/2)) + 1
		if got := full() - fullBefore; got > allowed {
			t.Fatalf("%v full reads during %v of idle polls (%v nodes-only reads), want at most %v",
				got, time.Since(start).Round(time.Millisecond), reads("nodes")-nodesBefore, allowed)
		}

		// A topic created straight in the store, as through another node.
		topicsBefore := reads("topics")
		other, err := be.meta.CreateTopic(context.Background(), meta.Topic{Name: "idle-b", Kind: meta.KindKafka, Partitions: 2})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "idle-b owned", func() bool { return len(owners(t, be, other)) == 2 })
		if reads("topics") <= topicsBefore {
			t.Fatal("the new topic was placed without a topic read")
		}
	})
}
