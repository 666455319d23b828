package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/persistence/meta"
)

// DefaultClusterOptions are the values used for zero Poll and
// MaxMovesPerPoll fields of ClusterOptions, read from config.Default(). The
// other fields have no default of their own: Self and OnSlotLost belong to
// the caller, LiveWithin follows Options.LeaseTTL, and zero Slots leases no
// coordinator slot.
func DefaultClusterOptions() ClusterOptions {
	c := config.Default().Cluster
	return ClusterOptions{
		Poll:            c.PollInterval.Duration(),
		Refresh:         c.Refresh(),
		MaxMovesPerPoll: int(c.MaxMovesPerPoll),
	}
}

// ClusterOptions configure the ownership loop (Broker.StartCluster).
type ClusterOptions struct {
	// Self is this node as its Membership registers it. Self.ID must be the
	// broker's Options.NodeID.
	Self meta.Node
	// LiveWithin is how recent a node's heartbeat must be, by the database
	// clock, for the node to count as live. Options.LeaseTTL if zero: a
	// crashed node stops being chosen about when its leases expire.
	LiveWithin time.Duration
	// Poll is how often the loop reads the live nodes and the catalog
	// version, and everything else when those moved or partitions are
	// moving. It bounds how stale routes are and how soon a released lease
	// is taken up. DefaultClusterOptions().Poll if zero.
	Poll time.Duration
	// Refresh is how often a poll rereads every lease and topic though
	// nothing says they changed (config.ClusterConfig.Refresh); at most half
	// of Options.LeaseTTL, at least Poll. DefaultClusterOptions().Refresh if
	// zero.
	Refresh time.Duration
	// Slots is how many consumer-group coordinator slots the cluster shares
	// (GroupOptions.Slots); zero leases none.
	Slots int
	// OnSlotLost is called, on a goroutine of its own, once a slot stopped
	// being this node's (OwnsSlot already answers false), before its lease
	// is released; it should unload the slot's groups (Groups.ReleaseSlot).
	OnSlotLost func(slot int)
	// MaxMovesPerPoll bounds how many partitions this node hands over per
	// poll, so a joining node takes its share gradually.
	// DefaultClusterOptions().MaxMovesPerPoll if zero.
	MaxMovesPerPoll int
}

// ClusterView is one picture of the cluster as the ownership loop last read
// it from the metadata store: the live nodes and the held leases. It is
// immutable once published.
type ClusterView struct {
	// Self is this node's id.
	Self string
	// Nodes are the live nodes, ordered by id.
	Nodes []meta.Node
	// At is when the view was read.
	At time.Time

	byID   map[string]int
	leases map[string]meta.Lease // held (owner set) leases by resource
}

// Node returns a live node by id.
func (v *ClusterView) Node(id string) (meta.Node, bool) {
	i, ok := v.byID[id]
	if !ok {
		return meta.Node{}, false
	}
	return v.Nodes[i], true
}

// Holder returns the live node holding resource's lease, unexpired by the
// local clock, and the lease. ok is false for a vacant or expired lease and
// for one held by a node that is not live.
func (v *ClusterView) Holder(resource string) (n meta.Node, l meta.Lease, ok bool) {
	l, ok = v.leases[resource]
	if !ok || !time.Now().Before(l.ExpiresAt) {
		return meta.Node{}, meta.Lease{}, false
	}
	n, ok = v.Node(meta.LeaseNode(l.Owner))
	return n, l, ok
}

// Lease returns resource's lease as read (possibly expired), if it has an
// owner.
func (v *ClusterView) Lease(resource string) (meta.Lease, bool) {
	l, ok := v.leases[resource]
	return l, ok
}

// Desired is the node that should own resource: the rendezvous choice among
// the live nodes, "" when none is live.
func (v *ClusterView) Desired(resource string) string {
	best, bestScore := "", uint64(0)
	for _, n := range v.Nodes {
		if s := rendezvousScore(n.ID, resource); best == "" || s > bestScore || (s == bestScore && n.ID < best) {
			best, bestScore = n.ID, s
		}
	}
	return best
}

// rendezvousScore is node's weight for resource in highest-random-weight
// hashing: FNV-1a over both names, then a 64-bit finalizer so that names
// differing in one character spread over the whole range. Adding or
// removing a node moves only the resources that node wins or won.
func rendezvousScore(node, resource string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(node); i++ {
		h = (h ^ uint64(node[i])) * prime
	}
	h = (h ^ 0xff) * prime // separator: ("ab","c") and ("a","bc") differ
	for i := 0; i < len(resource); i++ {
		h = (h ^ uint64(resource[i])) * prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// ownership decides what this node should own by the rendezvous choice:
// it starts the partition actors this node should own (their start takes
// the lease), drains the ones it should hand over (which releases the
// lease), and passes each view to the lease owner, which takes and gives
// back the group coordinator slots (see leases.go). It holds no lease
// itself.
//
// It is an actor behind the "ownership" mailbox, like the node's other
// owners. A poll reads the cluster off the actor (one at a time) and
// comes back as a message; the next poll is armed when one ends, sooner
// when a kick asks for it. Every field below view is touched only on the
// actor's goroutine; view is published for readers anywhere.
type ownership struct {
	b    *Broker
	o    ClusterOptions
	mb   *mailbox
	view atomic.Pointer[ClusterView]

	moving  map[meta.PartitionKey]bool // drains this owner asked for
	failing bool                       // the last poll failed (log once)
	// pollFailingSince is when polls started failing, zero while the last
	// one succeeded; published for Health, written only by the actor.
	pollFailingSince atomic.Pointer[time.Time]
	// refused is how many partitions this node should own but does not
	// start, being at Limits.MaxNodePartitions (published for Health);
	// refusedLogged is when that was last logged.
	refused       atomic.Int64
	refusedLogged time.Time
	reading       bool        // a poll's read is running
	again         bool        // a kick came while reading
	timer         *time.Timer // the next poll

	// What a poll may skip rereading. An idle node's poll reads the live
	// nodes and one counter; the topic list and the leases, which grow
	// with the partitions, are reread only when those moved, while
	// partitions are moving, and every Refresh.
	topics    []meta.Topic  // the topic list as last read
	version   int64         // the catalog version topics was read at
	fullAt    time.Time     // when the leases were last read
	fullCost  time.Duration // how long that full read took
	unsettled bool          // the last placement left partitions to start or hand over
	// stopped is closed when the actor has stopped (see close).
	stopped chan struct{}
}

// Messages to the ownership actor.
type (
	// pollNow asks for a poll now (a tick, or a kick).
	pollNow struct{}
	// polled carries a poll's read of the cluster. topics is nil when the
	// catalog version had not moved (the list was not reread); full says
	// the view's leases were reread rather than carried over.
	polled struct {
		view    *ClusterView
		topics  []meta.Topic
		version int64
		full    bool
		at      time.Time     // when the read began
		cost    time.Duration // how long it took
		err     error
	}
	// readQuery is what a poll's off-actor read needs from the actor.
	readQuery struct {
		prev    *ClusterView // the view to carry leases over from
		version int64        // the catalog version of the cached topic list
		full    bool         // reread everything whatever moved
	}
	// stopOwnership closes the ownership actor's mailbox.
	stopOwnership struct{}
)

// newIncarnation is the random part of this process's lease owner string.
func newIncarnation() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// StartCluster starts the ownership loop: from now on this node serves only
// the partitions and group slots it owns, starts the partitions it should
// own without waiting for a request, and hands over the others. It reads
// the cluster once before returning, so routes are known when it returns.
// Broker.Close stops it. Without StartCluster a broker serves every
// partition it is asked for (single node).
func (b *Broker) StartCluster(o ClusterOptions) error {
	if o.Self.ID != b.opts.NodeID {
		return fmt.Errorf("%w: cluster self %q is not the broker's node id %q", ErrInvalidArgument, o.Self.ID, b.opts.NodeID)
	}
	if o.LiveWithin <= 0 {
		o.LiveWithin = b.opts.LeaseTTL
	}
	d := DefaultClusterOptions()
	if o.Poll <= 0 {
		o.Poll = d.Poll
	}
	if o.MaxMovesPerPoll <= 0 {
		o.MaxMovesPerPoll = d.MaxMovesPerPoll
	}
	if o.Refresh <= 0 {
		o.Refresh = d.Refresh
	}
	o.Refresh = max(min(o.Refresh, b.opts.LeaseTTL/2), o.Poll)
	c := &ownership{
		b:       b,
		o:       o,
		moving:  map[meta.PartitionKey]bool{},
		stopped: make(chan struct{}),
	}
	c.view.Store(&ClusterView{Self: o.Self.ID, Nodes: []meta.Node{o.Self}, byID: map[string]int{o.Self.ID: 0}, At: time.Now()})
	if b.cluster.Load() != nil {
		return fmt.Errorf("%w: cluster already started", ErrInvalidArgument)
	}
	// The first read happens before StartCluster returns, so routes are
	// known by then; the actor acts on it as on any poll.
	first := c.read(readQuery{full: true})
	if first.err == nil {
		c.view.Store(first.view)
	}
	c.reading = true // until the actor has applied first
	kind := newMailboxKind(b.metrics, "ownership", 0, ErrShuttingDown)
	if _, err := spawnOwner(b.system.Root, b.system.Root, kind, "ownership", func(mb *mailbox) actor.Actor {
		c.mb = mb
		return c
	}); err != nil {
		return err
	}
	if !b.cluster.CompareAndSwap(nil, c) {
		c.mb.tell(stopOwnership{})
		<-c.stopped
		return fmt.Errorf("%w: cluster already started", ErrInvalidArgument)
	}
	c.mb.tell(first)
	return nil
}

// Receive implements actor.Actor.
func (c *ownership) Receive(ctx actor.Context) {
	if !c.mb.receive(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case pollNow:
		c.poll()
	case *polled:
		c.reading = false
		c.apply(m)
		if c.again {
			c.again = false
			c.poll()
			return
		}
		c.arm()
	case stopOwnership:
		if c.timer != nil {
			c.timer.Stop()
		}
		c.mb.close(ctx)
	case *actor.Stopped:
		close(c.stopped)
	}
}

// arm schedules the next poll one interval from now.
func (c *ownership) arm() {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.timer = time.AfterFunc(c.o.Poll, func() { c.mb.tell(pollNow{}) })
}

// ClusterView is the latest view of the cluster, or nil when the broker
// runs without one (StartCluster not called).
func (b *Broker) ClusterView() *ClusterView {
	c := b.cluster.Load()
	if c == nil {
		return nil
	}
	return c.view.Load()
}

// PartitionOwner returns the node that serves partition p of the topic:
// the holder of an unexpired lease, else the rendezvous choice among live
// nodes. self is true when that is this node, and also when the broker runs
// without a cluster. With a cluster but no live node at all, owner is zero
// and self false.
func (b *Broker) PartitionOwner(id meta.TopicID, p int32) (owner meta.Node, self bool) {
	c := b.cluster.Load()
	if c == nil {
		return meta.Node{ID: b.opts.NodeID}, true
	}
	v := c.view.Load()
	if _, ok := b.LocalLeader(id, p); ok {
		return c.o.Self, true
	}
	res := meta.PartitionResource(id, p)
	if n, _, ok := v.Holder(res); ok {
		return n, n.ID == v.Self
	}
	n, ok := v.Node(v.Desired(res))
	return n, ok && n.ID == v.Self
}

// kickCluster asks the ownership loop for a poll now (a topic or partition
// was created here, so its partitions get owners without waiting a tick).
func (b *Broker) kickCluster() {
	if c := b.cluster.Load(); c != nil {
		c.mb.tell(pollNow{})
	}
}

// LocalLeader reports whether a serving partition actor of this node holds
// the lease of partition p of the topic, unexpired by our clock, and its
// epoch. It answers from the lease owner's view, which has a lease before
// its actor serves under it: fresher than the cluster view, which lags by
// up to one poll.
func (b *Broker) LocalLeader(id meta.TopicID, p int32) (epoch int64, ok bool) {
	l, ok := b.leases.view.Load().partitions[meta.PartitionKey{TopicID: id, Partition: p}]
	if !ok || !l.live(time.Now()) {
		return 0, false
	}
	return l.epoch, true
}

// SlotFence is the fence for a group coordinator's metadata writes in
// slot s: the slot lease as this node holds it. ok is false when this node
// does not own the slot. Without a cluster it is the zero fence.
func (b *Broker) SlotFence(s int) (f meta.Fence, ok bool) {
	c := b.cluster.Load()
	if c == nil {
		return meta.Fence{}, true
	}
	l, ok := b.ownSlot(s)
	if !ok {
		return meta.Fence{}, false
	}
	return meta.Fence{Resource: meta.SlotResource(s), Owner: b.owner, Epoch: l.epoch}, true
}

// OwnsSlot reports whether this node coordinates group slot s now (always
// true without a cluster). It is GroupOptions.OwnsSlot in a cluster.
func (b *Broker) OwnsSlot(s int) bool {
	if b.cluster.Load() == nil {
		return true
	}
	_, ok := b.ownSlot(s)
	return ok
}

// ownSlot is slot s's lease as the lease owner last published it, if this
// node holds it unexpired by our clock.
func (b *Broker) ownSlot(s int) (ownLease, bool) {
	slots := b.leases.view.Load().slots
	if s < 0 || s >= len(slots) || !slots[s].live(time.Now()) {
		return ownLease{}, false
	}
	return slots[s], true
}

// mayStart reports whether a request for a partition with no running actor
// may start one here: this node is its rendezvous choice and no other
// process holds its lease. Otherwise the request is answered ErrNotOwner
// at once, so clients look the leader up again instead of every request
// costing a lease attempt.
func (c *ownership) mayStart(id meta.TopicID, p int32) bool {
	v := c.view.Load()
	res := meta.PartitionResource(id, p)
	if v.heldByOther(res, c.b.owner) {
		return false
	}
	d := v.Desired(res)
	return d == v.Self || d == ""
}

// heldByOther reports whether a process other than owner (another node,
// or an earlier run of this one) holds resource's lease unexpired in v.
func (v *ClusterView) heldByOther(res, owner string) bool {
	l, ok := v.leases[res]
	return ok && l.Owner != owner && time.Now().Before(l.ExpiresAt)
}

// close stops the actor, then has the lease owner release the slot
// leases; the groups were closed before the broker.
func (c *ownership) close() {
	c.mb.tell(stopOwnership{})
	<-c.stopped
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.b.leases.releaseAllSlots(ctx)
}

// poll starts a read of the cluster off the actor, unless one is running;
// then one more poll follows it.
func (c *ownership) poll() {
	if c.reading {
		c.again = true
		return
	}
	c.reading = true
	if c.timer != nil {
		c.timer.Stop()
	}
	q := readQuery{prev: c.view.Load(), version: c.version, full: c.fullDue(time.Now())}
	go func() { c.mb.tell(c.read(q)) }()
}

// fullDue reports whether the next poll must reread every lease and topic
// even if the nodes and the catalog version stayed the same: the refresh
// interval has passed, or the last placement left partitions to start or
// hand over. Unsettled polls are spaced by four times what the last full
// read took, so a node too loaded to settle (a store so slow that its
// partitions keep failing to start) spends at most a fifth of its time
// rereading.
func (c *ownership) fullDue(now time.Time) bool {
	since := now.Sub(c.fullAt)
	return since >= c.o.Refresh || (c.unsettled && since >= 4*c.fullCost)
}

// apply publishes a poll's view and acts on it.
func (c *ownership) apply(m *polled) {
	if m.err != nil {
		if !c.failing {
			c.b.opts.Logger.Warn("cluster poll failed; keeping the last view", "err", m.err)
			now := time.Now()
			c.pollFailingSince.Store(&now)
		}
		c.failing = true
		return
	}
	if c.failing {
		c.b.opts.Logger.Info("cluster poll recovered")
		c.pollFailingSince.Store(nil)
	}
	c.failing = false
	c.view.Store(m.view)
	c.b.metrics.clusterNodes.Set(float64(len(m.view.Nodes)))
	switch {
	case m.topics != nil:
		c.b.metrics.clusterReads.WithLabelValues("topics").Inc()
	case m.full:
		c.b.metrics.clusterReads.WithLabelValues("leases").Inc()
	default:
		c.b.metrics.clusterReads.WithLabelValues("nodes").Inc()
	}
	if m.topics != nil {
		c.topics, c.version = m.topics, m.version
	}
	if !m.full {
		// Nothing this node places by moved since the last placement.
		return
	}
	c.fullAt, c.fullCost = m.at, m.cost
	c.unsettled = c.placePartitions(m.view, c.topics)
	if c.o.Slots > 0 {
		c.b.leases.mb.tell(&slotPlan{view: m.view})
	}
}

// read reads the cluster: the live nodes and the catalog version always;
// the topic list when the version moved (or q.full); the leases when the
// topics or the nodes moved (or q.full), else it carries q.prev's over. It
// runs off the actor and touches none of its fields; it also brings the
// topic cache in line with the store (syncTopics), which the catalog
// guards itself.
func (c *ownership) read(q readQuery) *polled {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), max(c.o.Poll*4, 2*time.Second))
	defer cancel()
	nodes, err := c.b.meta.LiveNodes(ctx, c.o.LiveWithin)
	if err != nil {
		return &polled{err: fmt.Errorf("live nodes: %w", err)}
	}
	// The version is read before the list: a change between the two makes
	// the next poll read the list again, never miss it.
	version, err := c.b.meta.CatalogVersion(ctx)
	if err != nil {
		return &polled{err: err}
	}
	var topics []meta.Topic
	if q.full || version != q.version {
		if topics, err = c.b.meta.ListTopics(ctx, "", "", 0); err != nil {
			return &polled{err: fmt.Errorf("topics: %w", err)}
		}
		if topics == nil {
			topics = []meta.Topic{} // read, and empty
		}
	}
	full := topics != nil || q.prev == nil || !sameNodes(q.prev.Nodes, nodes)
	v := &ClusterView{Self: c.o.Self.ID, Nodes: nodes, At: time.Now(), byID: make(map[string]int, len(nodes))}
	for i, n := range v.Nodes { // ordered by id (meta.Store.LiveNodes)
		v.byID[n.ID] = i
	}
	if full {
		leases, err := c.b.meta.Leases(ctx, "")
		if err != nil {
			return &polled{err: fmt.Errorf("leases: %w", err)}
		}
		v.leases = make(map[string]meta.Lease, len(leases))
		for _, l := range leases {
			if l.Owner != "" {
				v.leases[l.Resource] = l
			}
		}
	} else {
		v.leases = q.prev.leases // immutable once published: shared, not copied
	}
	if topics != nil {
		c.b.syncTopics(ctx, topics)
	}
	return &polled{view: v, topics: topics, version: version, full: full, at: start, cost: time.Since(start)}
}

// sameNodes reports whether two live-node lists (ordered by id) name the
// same nodes at the same addresses; heartbeat times do not count.
func sameNodes(a, b []meta.Node) bool {
	return slices.EqualFunc(a, b, func(x, y meta.Node) bool {
		return x.ID == y.ID && x.KafkaAddr == y.KafkaAddr && x.WALAddr == y.WALAddr && x.RemoteAddr == y.RemoteAddr
	})
}

// placePartitions starts the partitions this node should own and drains,
// a few per poll, the running ones it should hand over. It starts no more
// than Limits.MaxNodePartitions: the partitions past it, in topic name
// order, are refused, and reported (reportRefused) rather than tried. It
// starts at most Limits.StartsPerPoll per poll. It reports whether any
// partition was left to start (within the limit) or hand over, so the next
// poll rereads the leases to follow the move.
func (c *ownership) placePartitions(v *ClusterView, topics []meta.Topic) (unsettled bool) {
	moves := 0
	limit := c.b.opts.Limits.MaxNodePartitions
	mine := 0 // partitions this node should own
	running := map[meta.PartitionKey]bool{}
	c.b.pids.Range(func(k, _ any) bool {
		running[k.(meta.PartitionKey)] = true
		return true
	})
	for k := range c.moving {
		if !running[k] {
			delete(c.moving, k) // the drain finished
		}
	}
	// room is what this poll may start: up to the node's limit, and no
	// more than StartsPerPoll, so a restart on many partitions (or a
	// burst of new ones) does not take every lease at once.
	room := min(limit-len(running), c.b.opts.Limits.StartsPerPoll)
	for _, t := range topics {
		for p := range t.Partitions {
			key := meta.PartitionKey{TopicID: t.ID, Partition: p}
			res := meta.PartitionResource(t.ID, p)
			desired := v.Desired(res)
			if desired == v.Self {
				mine++
			}
			switch {
			case desired == v.Self && !running[key]:
				if len(running) < limit {
					unsettled = true // more to start than this poll's room, or not yet free
				}
				if room > 0 && c.mayStart(t.ID, p) {
					room--
					c.b.registry.tell(&ensure{topic: t, partition: p})
				}
			case desired != v.Self && desired != "" && running[key]:
				unsettled = true
				if !c.moving[key] && moves < c.o.MaxMovesPerPoll {
					moves++
					c.moving[key] = true
					c.b.opts.Logger.Info("handing partition over", "topic", t.Name, "partition", p, "to", desired)
					c.b.registry.tell(&drainOne{key: key})
				}
			}
		}
	}
	c.reportRefused(max(0, mine-limit), limit)
	return unsettled
}

// refusedLogEvery spaces the log lines saying how many partitions the node
// refuses while that number keeps changing (topics created or deleted).
const refusedLogEvery = time.Minute

// reportRefused publishes how many partitions this node refuses to own for
// its limit, and logs it in one line when it changes: once on reaching the
// limit, at most once a minute while the number moves, and once when the
// node refuses none any more.
func (c *ownership) reportRefused(n, limit int) {
	old := int(c.refused.Swap(int64(n)))
	c.b.metrics.refused.Set(float64(n))
	switch {
	case n == old:
	case n == 0:
		c.b.opts.Logger.Info("node serves every partition it should own again", "limit", limit)
	case old == 0 || time.Since(c.refusedLogged) >= refusedLogEvery:
		c.refusedLogged = time.Now()
		c.b.opts.Logger.Warn("node is at its partition limit: it does not start the partitions it should own past it",
			"refused", n, "limit", limit, "key", "limits.max_node_partitions")
	}
}

// syncTopics brings the topic caches in line with the store's topic list,
// which reflects changes made through other nodes: new partition counts
// and configs are cached and passed to running partitions, and a topic
// deleted elsewhere has its local partition actors stopped.
func (b *Broker) syncTopics(ctx context.Context, topics []meta.Topic) {
	listed := make(map[meta.TopicID]bool, len(topics))
	var changed []meta.Topic
	b.mu.RLock()
	for _, t := range topics {
		listed[t.ID] = true
		if old, ok := b.byID[t.ID]; !ok || old.Partitions != t.Partitions || !maps.Equal(old.Config, t.Config) {
			changed = append(changed, t)
		}
	}
	var gone []meta.Topic
	for id, t := range b.byID {
		if !listed[id] {
			gone = append(gone, t)
		}
	}
	b.mu.RUnlock()
	for _, t := range changed {
		b.cacheTopic(t)
		b.registry.tell(&topicChanged{topic: t})
	}
	for _, t := range gone {
		// The list may predate a topic created here since: ask again.
		if _, err := b.meta.TopicByID(ctx, t.ID); !errors.Is(err, meta.ErrNotFound) {
			continue
		}
		b.uncacheTopicID(t)
		b.registry.tell(&stopTopic{id: t.ID, done: make(chan struct{})})
	}
}
