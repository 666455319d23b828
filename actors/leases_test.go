package actors_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
)

// countingRenewals is a metadata store that counts lease renewals, one by
// one and in batches.
type countingRenewals struct {
	meta.Store
	single, batch atomic.Int64
}

func (s *countingRenewals) RenewLease(ctx context.Context, resource, owner string, epoch int64, ttl time.Duration) (meta.Lease, error) {
	s.single.Add(1)
	return s.Store.RenewLease(ctx, resource, owner, epoch, ttl)
}

func (s *countingRenewals) RenewLeases(ctx context.Context, owner string, ttl time.Duration) ([]meta.Lease, error) {
	s.batch.Add(1)
	return s.Store.RenewLeases(ctx, owner, ttl)
}

// startLeaseNode starts a one-node cluster with lease TTL ttl and slots
// group slots, and waits until it holds every partition of a new topic of
// partitions partitions and every slot.
func startLeaseNode(t *testing.T, be backend, id string, ttl time.Duration, slots int, partitions int32, onLost func(int)) (actors.Options, *actors.Broker, meta.Topic) {
	t.Helper()
	o := testOptions(id)
	o.LeaseTTL = ttl
	b := startBroker(t, be, o)
	self := meta.Node{ID: id, KafkaAddr: "127.0.0.1:1", WALAddr: "127.0.0.1:2", RemoteAddr: "127.0.0.1:3"}
	m, err := actors.StartMembership(context.Background(), be.meta, self, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Close(ctx)
	})
	if err := b.StartCluster(actors.ClusterOptions{Self: self, Poll: 50 * time.Millisecond, Slots: slots, OnSlotLost: onLost}); err != nil {
		t.Fatal(err)
	}
	tp := createTopic(t, b, "leases-"+id, partitions, nil)
	waitFor(t, 10*time.Second, "every partition and slot held", func() bool {
		for p := range tp.Partitions {
			if _, ok := b.LocalLeader(tp.ID, p); !ok {
				return false
			}
		}
		for s := range slots {
			if !b.OwnsSlot(s) {
				return false
			}
		}
		return true
	})
	return o, b, tp
}

// TestLeaseRenewalsOneBatch holds partitions and group slots for a few
// TTLs: every lease of the node is renewed by one batch per TTL/3, and no
// lease, slot or partition, is renewed on its own.
func TestLeaseRenewalsOneBatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		const ttl = 900 * time.Millisecond
		const slots = 8
		counted := &countingRenewals{Store: be.meta}
		be.meta = counted
		_, b, tp := startLeaseNode(t, be, "r1", ttl, slots, 4, nil)
		single0, batch0 := counted.single.Load(), counted.batch.Load()
		const span = 3 * ttl
		time.Sleep(span)
		single, batch := counted.single.Load()-single0, counted.batch.Load()-batch0
		t.Logf("over %v with TTL %v: %d batch renewals, %d single renewals", span, ttl, batch, single)
		// At most one batch per TTL/3: a tick that finds a batch still in
		// flight (a slow fsync on a loaded machine) is skipped, so fewer is
		// fine as long as the leases below were kept.
		if most := int64(span/(ttl/3)) + 1; batch < 1 || batch > most {
			t.Errorf("%d batch renewals in %v, want 1 to %d (at most one per TTL/3)", batch, span, most)
		}
		if single != 0 {
			t.Errorf("%d single-lease renewals, want none: the batch renews every lease", single)
		}
		for p := range tp.Partitions {
			if _, ok := b.LocalLeader(tp.ID, p); !ok {
				t.Errorf("partition %d lost its lease", p)
			}
		}
		for s := range slots {
			if !b.OwnsSlot(s) {
				t.Errorf("slot %d lost its lease", s)
			}
		}
	})
}

// failingLeases is a metadata store whose lease renewals and acquisitions
// fail while armed, as when the database is unreachable.
type failingLeases struct {
	meta.Store
	armed atomic.Bool
}

var errUnreachable = errors.New("database unreachable")

func (s *failingLeases) RenewLeases(ctx context.Context, owner string, ttl time.Duration) ([]meta.Lease, error) {
	if s.armed.Load() {
		return nil, errUnreachable
	}
	return s.Store.RenewLeases(ctx, owner, ttl)
}

func (s *failingLeases) AcquireLease(ctx context.Context, resource, owner string, ttl time.Duration) (meta.Lease, error) {
	if s.armed.Load() {
		return meta.Lease{}, errUnreachable
	}
	return s.Store.AcquireLease(ctx, resource, owner, ttl)
}

// TestLeasesExpireWhenRenewalsFail makes every renewal fail: within a TTL
// of the last one that succeeded, by the node's own clock, the partition
// actors stop and every slot's groups are unloaded, before another node
// could take their leases.
func TestLeasesExpireWhenRenewalsFail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		const ttl = 900 * time.Millisecond
		const slots = 4
		failing := &failingLeases{Store: be.meta}
		be.meta = failing
		var mu sync.Mutex
		unloaded := map[int]time.Time{}
		// The callback may run while the node starts (a slot handed back
		// as ownership settles), before b is known: only unloads after the
		// renewals fail count, and they come after b is set.
		var node atomic.Pointer[actors.Broker]
		onLost := func(s int) {
			b := node.Load()
			if b == nil || !failing.armed.Load() {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if b.OwnsSlot(s) {
				t.Errorf("slot %d unloaded while OwnsSlot still answers true", s)
			}
			unloaded[s] = time.Now()
		}
		o, b, tp := startLeaseNode(t, be, "x1", ttl, slots, 2, onLost)
		node.Store(b)
		armed := time.Now()
		failing.armed.Store(true)
		// The last renewal that succeeded was asked before armed; allow for
		// scheduling under the race detector.
		limit := ttl + 250*time.Millisecond
		waitFor(t, limit, "partition actors stopped", func() bool {
			return gauge(t, o, "morax_partition_actors") == 0
		})
		waitFor(t, limit-time.Since(armed), "every slot unloaded", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(unloaded) == slots
		})
		t.Logf("gave everything up %v after renewals started failing (TTL %v)", time.Since(armed), ttl)
		for p := range tp.Partitions {
			if _, ok := b.LocalLeader(tp.ID, p); ok {
				t.Errorf("partition %d still led", p)
			}
		}
	})
}

// TestStrayLeaseIsReleased: a lease of this process that its lease owner
// does not hold (given up by our clock while the store still had it
// unexpired, as after a metadata outage) is renewed by every batch renewal
// and so kept from every other node for good, unless the owner gives it
// back. It must be released once it has come back stray for longer than an
// I/O timeout, and another process must then be able to take it.
func TestStrayLeaseIsReleased(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		o := testOptions("stray")
		o.LeaseTTL = 3 * time.Second
		o.IOTimeout = 1500 * time.Millisecond
		b := startBroker(t, be, o)
		// The broker holds a partition of its own, so batch renewals run.
		tp := createTopic(t, b, "stray-held", 1, nil)
		if _, err := b.Append(context.Background(), tp, 0, batchOf(t, "x"), -1); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		const res = "stray/resource"
		if _, err := be.meta.AcquireLease(ctx, res, b.LeaseOwner(), o.LeaseTTL); err != nil {
			t.Fatal(err)
		}
		// Without the release the stray lease is renewed for ever; with
		// it, it is vacant after the timeout plus a few renewals.
		waitFor(t, 10*o.LeaseTTL, "stray lease released", func() bool {
			ls, err := be.meta.Leases(ctx, res)
			if err != nil {
				t.Fatal(err)
			}
			return len(ls) == 1 && ls[0].Owner == ""
		})
		if _, err := be.meta.AcquireLease(ctx, res, "other@1", o.LeaseTTL); err != nil {
			t.Fatalf("another process takes the released lease: %v", err)
		}
		// The partition the owner does hold was never touched.
		if _, ok := b.LocalLeader(tp.ID, 0); !ok {
			t.Fatal("the held partition lost its lease")
		}
	})
}
