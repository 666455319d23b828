package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/morax-dev/morax/persistence/meta"
)

// The lease owner is the one owner of this node's leases: every partition
// lease a partition actor took, and every group coordinator slot lease. It
// renews all of them with one meta.Store.RenewLeases per LeaseTTL/3, keeps
// each one's epoch and deadline (by our own clock), tells a partition whose
// lease was lost or ran out, and unloads a lost slot's groups. It also
// takes and gives back slot leases, as the ownership loop's plan says: a
// slot has no actor of its own, so its lease state would otherwise be
// split between two goroutines again. A partition takes its own lease,
// because taking it is part of its start (it must load state under it),
// and registers it here.
//
// What it holds is published as an immutable leaseView, written only by the
// owner: routing (LocalLeader, PartitionOwner) and group coordinators
// (OwnsSlot, SlotFence) read it without a hop.

// leases is the way to the node's lease owner and what it publishes.
type leases struct {
	mb   *mailbox
	view atomic.Pointer[leaseView]
	// stopTick ends the renewal ticker; closed by close.
	stopTick chan struct{}
}

// leaseView is the lease owner's published picture of this node's leases.
// It is never changed once published.
type leaseView struct {
	// partitions are the partition leases of serving actors (not those of
	// draining ones).
	partitions map[meta.PartitionKey]ownLease
	// slots are the slot leases by slot; a zero deadline is not ours.
	slots []ownLease
	// renewFailingSince is when the batch renewals started failing, zero
	// while the last one succeeded: Health reads it rather than asking the
	// store on every health check.
	renewFailingSince time.Time
}

// ownLease is one lease as this node holds it.
type ownLease struct {
	epoch int64
	// deadline is when the lease ends if no renewal succeeds, by our own
	// clock, measured from before the request that granted or renewed it.
	deadline time.Time
}

// live reports whether the lease still counts as ours at now.
func (l ownLease) live(now time.Time) bool { return now.Before(l.deadline) }

// Messages to the lease owner.
type (
	// holdLease registers a lease a partition actor acquired, before the
	// actor serves under it. done gets nil once the lease is published.
	holdLease struct {
		key   meta.PartitionKey
		mb    *mailbox
		lease meta.Lease
		asked time.Time // before the request that granted it
		done  chan error
	}
	// quietLease stops advertising a draining partition's lease; it stays
	// renewed and watched until dropLease.
	quietLease struct {
		key meta.PartitionKey
		mb  *mailbox
	}
	// dropLease forgets a partition's lease: the actor stopped, or is
	// about to release it.
	dropLease struct {
		key meta.PartitionKey
		mb  *mailbox
	}
	// slotPlan carries a fresh cluster view from the ownership loop: the
	// owner takes the slots this node should own and gives back the others.
	slotPlan struct{ view *ClusterView }
	// releaseSlots gives back every slot lease at shutdown; done is closed
	// once none is held.
	releaseSlots struct{ done chan struct{} }
	// closeLeases stops the owner once the partitions released theirs.
	closeLeases struct{}

	// The owner's own timers and I/O completions. leaseCheck comes at the
	// earliest deadline, to give up whatever ran out by our clock.
	renewTick   struct{}
	leaseCheck  struct{}
	leasesRenew struct {
		asked  time.Time
		leases []meta.Lease
		err    error
	}
	slotAcquired struct {
		slot  int
		lease meta.Lease
		asked time.Time
		err   error
	}
	slotGone      struct{ slot int }
	publishLeases struct{}
)

// leaseLost tells a partition actor that its lease is gone: missing from a
// successful batch renewal, or past its deadline with renewals failing.
type leaseLost struct{ why string }

// A holdLease is answered even when the owner has stopped.
func (m *holdLease) fail(err error) { m.done <- err }
func (m *holdLease) size() int      { return 0 }

func (m *releaseSlots) fail(error) { close(m.done) }
func (m *releaseSlots) size() int  { return 0 }

// startLeases spawns the node's lease owner and its renewal ticker.
func startLeases(b *Broker) (*leases, error) {
	l := &leases{stopTick: make(chan struct{})}
	l.view.Store(&leaseView{})
	kind := newMailboxKind(b.metrics, "leases", 0, ErrShuttingDown)
	mb, err := spawnOwner(b.system.Root, b.system.Root, kind, "leases", func(mb *mailbox) actor.Actor {
		return &leaseOwner{b: b, l: l, mb: mb, ttl: b.opts.LeaseTTL, parts: map[meta.PartitionKey]*partLease{}}
	})
	if err != nil {
		return nil, err
	}
	l.mb = mb
	go func() {
		t := time.NewTicker(b.opts.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stopTick:
				return
			case <-t.C:
				mb.tell(&renewTick{})
			}
		}
	}()
	return l, nil
}

// hold registers a partition's freshly acquired lease and waits until it
// is published, so that LocalLeader answers for it before the actor serves.
func (l *leases) hold(ctx context.Context, key meta.PartitionKey, mb *mailbox, lease meta.Lease, asked time.Time) error {
	m := &holdLease{key: key, mb: mb, lease: lease, asked: asked, done: make(chan error, 1)}
	l.mb.request(m)
	select {
	case err := <-m.done:
		if err != nil {
			return fmt.Errorf("register lease: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("register lease: %w", ctx.Err())
	}
}

// quiet stops advertising a draining partition's lease.
func (l *leases) quiet(key meta.PartitionKey, mb *mailbox) { l.mb.tell(&quietLease{key: key, mb: mb}) }

// drop forgets a partition's lease.
func (l *leases) drop(key meta.PartitionKey, mb *mailbox) { l.mb.tell(&dropLease{key: key, mb: mb}) }

// releaseAllSlots gives back every slot lease and waits for it.
func (l *leases) releaseAllSlots(ctx context.Context) {
	m := &releaseSlots{done: make(chan struct{})}
	l.mb.request(m)
	select {
	case <-m.done:
	case <-ctx.Done():
	}
}

// close stops the owner and its ticker.
func (l *leases) close() {
	close(l.stopTick)
	l.mb.tell(&closeLeases{})
}

// partLease is a partition lease as the owner tracks it.
type partLease struct {
	mb       *mailbox
	resource string
	ownLease
	asked   time.Time // before the request that granted it
	serving bool
}

// strayLease is a lease of this process that it no longer holds, as a
// batch renewal returned it.
type strayLease struct {
	epoch int64
	since time.Time
}

// slotState is where a slot lease is in its life.
type slotState int

const (
	slotFree slotState = iota
	slotAcquiring
	slotHeld
	// slotLosing: given up; its groups unload and its lease is released
	// (or left to expire) off the owner.
	slotLosing
)

// slotLease is a slot lease as the owner tracks it.
type slotLease struct {
	state slotState
	ownLease
	asked time.Time
}

// leaseOwner is the lease owner actor. Its fields are touched only on its
// goroutine.
type leaseOwner struct {
	b   *Broker
	l   *leases
	mb  *mailbox
	ttl time.Duration

	parts map[meta.PartitionKey]*partLease
	slots []slotLease // sized at the first slot plan

	renewing bool // a batch renewal is in flight
	failing  bool // the last batch renewal failed (log once)
	// failingSince is when the renewal that first failed was sent.
	failingSince time.Time
	// checkAt is when the armed leaseCheck fires (zero: none armed): at
	// the earliest deadline, so a lease whose renewals keep failing is
	// given up when it ends by our clock, not at the next tick.
	checkAt time.Time
	// queued is set while a publishLeases is on its way; waiting are the
	// holds answered once it is handled, so that a burst of registrations
	// costs one copy of the view.
	queued  bool
	waiting []chan error
	// strays are leases the store renewed for this process that the owner
	// does not hold (by resource: the epoch and the first renewal that
	// returned it). See releaseStrays.
	strays map[string]strayLease
	// closing is set by releaseSlots: slots are given back, never taken;
	// slotsDone are closed once no slot is held.
	closing   bool
	slotsDone []chan struct{}
}

// Receive implements actor.Actor.
func (o *leaseOwner) Receive(ctx actor.Context) {
	if !o.mb.receive(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case *holdLease:
		o.onHold(m)
	case *quietLease:
		if pl := o.parts[m.key]; pl != nil && pl.mb == m.mb && pl.serving {
			pl.serving = false
			o.publishSoon()
		}
	case *dropLease:
		if pl := o.parts[m.key]; pl != nil && pl.mb == m.mb {
			delete(o.parts, m.key)
			o.publishSoon()
		}
	case *renewTick:
		o.expire()
		o.renew()
	case *leasesRenew:
		o.onRenewed(m)
	case *slotPlan:
		o.expire()
		o.planSlots(m.view)
	case *leaseCheck:
		if !o.checkAt.After(time.Now()) {
			o.checkAt = time.Time{}
		}
		o.expire()
		o.armCheck()
	case *slotAcquired:
		o.onSlotAcquired(m)
	case *slotGone:
		o.slots[m.slot].state = slotFree
		o.maybeSlotsReleased()
	case *releaseSlots:
		o.closing = true
		o.slotsDone = append(o.slotsDone, m.done)
		for s := range o.slots {
			if o.slots[s].state == slotHeld {
				o.loseSlot(s, true, false)
			}
		}
		o.maybeSlotsReleased()
	case *publishLeases:
		o.queued = false
		o.publish()
	case *closeLeases:
		o.publish()
		for _, ch := range o.slotsDone {
			close(ch)
		}
		o.slotsDone = nil
		o.mb.close(ctx)
	}
}

func (o *leaseOwner) onHold(m *holdLease) {
	if m.mb.closed.Load() {
		// The actor stopped while it started: nobody will release it.
		o.release(meta.PartitionResource(m.key.TopicID, m.key.Partition), m.lease.Epoch)
		m.done <- fmt.Errorf("%w: partition stopped", ErrNotOwner)
		return
	}
	if old := o.parts[m.key]; old != nil && old.mb != m.mb {
		old.mb.tell(&leaseLost{why: "lease taken by a newer actor"})
	}
	o.parts[m.key] = &partLease{
		mb:       m.mb,
		resource: m.lease.Resource,
		ownLease: ownLease{epoch: m.lease.Epoch, deadline: m.asked.Add(o.ttl)},
		asked:    m.asked,
		serving:  true,
	}
	o.waiting = append(o.waiting, m.done)
	o.publishSoon()
}

// renew sends one batch renewal of every lease of this process, unless
// one is in flight or nothing is held.
func (o *leaseOwner) renew() {
	if !o.holdsAny() && o.failing {
		// Nothing is held, so nothing fails to renew: without this the
		// node would report failing renewals until it held a lease again.
		o.failing, o.failingSince = false, time.Time{}
		o.publishSoon()
	}
	if o.renewing || !o.holdsAny() {
		return
	}
	o.renewing = true
	asked := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.ttl/3)
		defer cancel()
		ls, err := o.b.meta.RenewLeases(ctx, o.b.owner, o.ttl)
		if err != nil {
			err = fmt.Errorf("renew leases of %s: %w", o.b.owner, err)
		}
		o.mb.tell(&leasesRenew{asked: asked, leases: ls, err: err})
	}()
}

func (o *leaseOwner) holdsAny() bool {
	if len(o.parts) > 0 {
		return true
	}
	for _, s := range o.slots {
		if s.state == slotHeld {
			return true
		}
	}
	return false
}

// onRenewed applies a batch renewal: a renewed lease moves its deadline
// on; a lease held since before the batch was sent but missing from its
// answer was lost (expired or taken), and is given up at once.
func (o *leaseOwner) onRenewed(m *leasesRenew) {
	o.renewing = false
	switch {
	case m.err != nil:
		if !o.failing {
			o.b.opts.Logger.Warn("lease renewal failed; retrying", "err", m.err)
			o.failingSince = m.asked
			o.publishSoon() // the node reports itself unhealthy
		}
		o.failing = true
	default:
		if o.failing {
			o.b.opts.Logger.Info("lease renewal recovered")
		}
		o.failing, o.failingSince = false, time.Time{}
		renewed := make(map[string]int64, len(m.leases))
		for _, l := range m.leases {
			renewed[l.Resource] = l.Epoch
		}
		until := m.asked.Add(o.ttl)
		for key, pl := range o.parts {
			if !pl.asked.Before(m.asked) {
				continue // granted after the batch was sent: not in it
			}
			if e, ok := renewed[pl.resource]; ok && e == pl.epoch {
				pl.deadline = maxTime(pl.deadline, until)
				continue
			}
			o.losePartition(key, pl, "lease lost")
		}
		for s := range o.slots {
			sl := &o.slots[s]
			if sl.state != slotHeld || !sl.asked.Before(m.asked) {
				continue
			}
			if e, ok := renewed[meta.SlotResource(s)]; ok && e == sl.epoch {
				sl.deadline = maxTime(sl.deadline, until)
				continue
			}
			o.b.opts.Logger.Warn("group slot lease lost", "slot", s)
			o.loseSlot(s, false, true)
		}
		o.releaseStrays(m)
		o.publishSoon()
	}
	o.expire()
}

// releaseStrays gives back the leases a batch renewal extended that this
// owner does not hold. The store renews every unexpired lease of this
// process, and a lease given up by our clock (renewals failed for a TTL,
// the store was away) can still be unexpired by the database's clock when
// the store returns: renewed from then on by a node that serves nothing
// under it, it would keep the partition or group slot from every other
// node for good. A lease is released only once it has come back stray for
// longer than an I/O timeout, because a partition that is starting holds
// its lease in the store before it tells this owner: by then its start
// has registered the lease or given up and released it itself. The
// release is conditional on the epoch, so it cannot take a lease granted
// again since.
func (o *leaseOwner) releaseStrays(m *leasesRenew) {
	held := make(map[string]bool, len(o.parts))
	for _, pl := range o.parts {
		held[pl.resource] = true
	}
	for s := range o.slots {
		if o.slots[s].state != slotFree {
			held[meta.SlotResource(s)] = true
		}
	}
	seen := make(map[string]bool)
	for _, l := range m.leases {
		if held[l.Resource] {
			continue
		}
		seen[l.Resource] = true
		st, ok := o.strays[l.Resource]
		if !ok || st.epoch != l.Epoch {
			if o.strays == nil {
				o.strays = map[string]strayLease{}
			}
			o.strays[l.Resource] = strayLease{epoch: l.Epoch, since: m.asked}
			continue
		}
		if m.asked.Sub(st.since) > o.b.opts.IOTimeout {
			o.b.opts.Logger.Info("releasing a lease this node renewed but no longer holds", "resource", l.Resource, "epoch", l.Epoch)
			delete(o.strays, l.Resource)
			o.release(l.Resource, l.Epoch)
		}
	}
	for res := range o.strays {
		if !seen[res] {
			delete(o.strays, res)
		}
	}
}

// expire gives up every lease past its deadline by our clock: renewals
// have failed for a whole TTL, and another node may hold it by now.
func (o *leaseOwner) expire() {
	now := time.Now()
	for key, pl := range o.parts {
		if !pl.live(now) {
			o.losePartition(key, pl, "lease expired without renewal")
		}
	}
	for s := range o.slots {
		if o.slots[s].state == slotHeld && !o.slots[s].live(now) {
			o.b.opts.Logger.Warn("group slot lease expired", "slot", s)
			o.loseSlot(s, false, true)
		}
	}
	// A partition actor that stopped without telling (a panic during its
	// start) leaves a lease nobody else would release.
	for key, pl := range o.parts {
		if pl.mb.closed.Load() {
			delete(o.parts, key)
			o.release(pl.resource, pl.epoch)
			o.publishSoon()
		}
	}
}

// losePartition forgets a partition's lease and stops its actor.
func (o *leaseOwner) losePartition(key meta.PartitionKey, pl *partLease, why string) {
	delete(o.parts, key)
	pl.mb.tell(&leaseLost{why: why})
	o.publishSoon()
}

// planSlots takes the slots v gives this node that no other process holds,
// and gives back the held ones v gives another live node.
func (o *leaseOwner) planSlots(v *ClusterView) {
	c := o.b.cluster.Load()
	if c == nil || o.closing {
		return
	}
	if o.slots == nil {
		o.slots = make([]slotLease, c.o.Slots)
	}
	for s := range o.slots {
		res := meta.SlotResource(s)
		desired := v.Desired(res)
		switch st := o.slots[s].state; {
		case st == slotHeld && desired != v.Self && desired != "":
			o.loseSlot(s, true, true)
		case st == slotFree && desired == v.Self && !v.heldByOther(res, o.b.owner):
			o.acquireSlot(s)
		}
	}
}

func (o *leaseOwner) acquireSlot(s int) {
	o.slots[s].state = slotAcquiring
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.b.opts.IOTimeout)
		defer cancel()
		asked := time.Now()
		l, err := o.b.meta.AcquireLease(ctx, meta.SlotResource(s), o.b.owner, o.ttl)
		o.mb.tell(&slotAcquired{slot: s, lease: l, asked: asked, err: err})
	}()
}

func (o *leaseOwner) onSlotAcquired(m *slotAcquired) {
	sl := &o.slots[m.slot]
	if m.err != nil {
		sl.state = slotFree
		if !errors.Is(m.err, meta.ErrLeaseHeld) {
			o.b.opts.Logger.Warn("acquire group slot lease", "slot", m.slot, "err", m.err)
		}
		o.maybeSlotsReleased()
		return
	}
	*sl = slotLease{state: slotHeld, ownLease: ownLease{epoch: m.lease.Epoch, deadline: m.asked.Add(o.ttl)}, asked: m.asked}
	o.b.opts.Logger.Debug("group slot acquired", "slot", m.slot, "epoch", m.lease.Epoch)
	if o.closing {
		o.loseSlot(m.slot, true, false)
		return
	}
	o.publishSoon()
}

// loseSlot stops coordinating slot s: OwnsSlot turns false first (the view
// is published at once), then, off the owner, the slot's groups unload
// (finishing their writes) if unload is set, and the lease is released if
// release is set, so the next owner need not wait for it to expire.
func (o *leaseOwner) loseSlot(s int, release, unload bool) {
	sl := &o.slots[s]
	epoch := sl.epoch
	sl.state, sl.ownLease = slotLosing, ownLease{}
	o.publish()
	var onLost func(int)
	if c := o.b.cluster.Load(); c != nil && unload {
		onLost = c.o.OnSlotLost
	}
	go func() {
		if onLost != nil {
			onLost(s)
		}
		if release {
			ctx, cancel := context.WithTimeout(context.Background(), o.b.opts.IOTimeout)
			defer cancel()
			if err := o.b.meta.ReleaseLease(ctx, meta.SlotResource(s), o.b.owner, epoch); err != nil {
				o.b.opts.Logger.Warn("release group slot lease", "slot", s, "err", err)
			}
		}
		o.mb.tell(&slotGone{slot: s})
	}()
}

// maybeSlotsReleased completes releaseSlots once no slot is held or on its
// way in or out.
func (o *leaseOwner) maybeSlotsReleased() {
	if !o.closing || len(o.slotsDone) == 0 {
		return
	}
	for _, sl := range o.slots {
		if sl.state != slotFree {
			return
		}
	}
	for _, ch := range o.slotsDone {
		close(ch)
	}
	o.slotsDone = nil
}

// release gives back a lease nobody holds any more, off the owner.
func (o *leaseOwner) release(resource string, epoch int64) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.b.opts.IOTimeout)
		defer cancel()
		if err := o.b.meta.ReleaseLease(ctx, resource, o.b.owner, epoch); err != nil {
			o.b.opts.Logger.Warn("release orphaned lease", "resource", resource, "err", err)
		}
	}()
}

// publishSoon publishes the view once the messages already queued are
// handled.
func (o *leaseOwner) publishSoon() {
	if !o.queued {
		o.queued = true
		o.mb.tell(&publishLeases{})
	}
}

// publish replaces the published view with what the owner holds now and
// answers the holds waiting for it.
func (o *leaseOwner) publish() {
	v := &leaseView{partitions: make(map[meta.PartitionKey]ownLease, len(o.parts)), slots: make([]ownLease, len(o.slots)), renewFailingSince: o.failingSince}
	for key, pl := range o.parts {
		if pl.serving {
			v.partitions[key] = pl.ownLease
		}
	}
	for s, sl := range o.slots {
		if sl.state == slotHeld {
			v.slots[s] = sl.ownLease
		}
	}
	o.l.view.Store(v)
	o.armCheck()
	for _, ch := range o.waiting {
		ch <- nil
	}
	o.waiting = nil
}

// armCheck arms a leaseCheck at the earliest deadline of what the owner
// holds, unless one is armed for sooner. A check armed for a deadline
// that a renewal moved on since finds nothing to give up.
func (o *leaseOwner) armCheck() {
	var first time.Time
	for _, pl := range o.parts {
		if first.IsZero() || pl.deadline.Before(first) {
			first = pl.deadline
		}
	}
	for _, sl := range o.slots {
		if sl.state == slotHeld && (first.IsZero() || sl.deadline.Before(first)) {
			first = sl.deadline
		}
	}
	if first.IsZero() || (!o.checkAt.IsZero() && !first.Before(o.checkAt)) {
		return
	}
	o.checkAt = first
	time.AfterFunc(time.Until(first), func() { o.mb.tell(&leaseCheck{}) })
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
