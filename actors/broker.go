package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
)

// Broker is a node's stateful core as the protocol layers see it: topic
// administration and the doorway to partition actors.
type Broker struct {
	opts    Options
	meta    meta.Store
	objects objstore.Store
	system  *actor.ActorSystem
	budget  *budget
	blocks  *blockCache
	metrics *metrics

	// registry is the mailbox of the node's partition registry actor.
	registry *mailbox
	// partitionKind is what partition actors' mailboxes share.
	partitionKind *mailboxKind
	flusher       *flusher
	// partitionLives numbers partition actor lives for the flusher.
	partitionLives atomic.Uint64
	// pids caches the partition actors' mailboxes by partition. Only the
	// registry actor writes it; everyone may read it to skip a hop through
	// the registry.
	pids sync.Map // meta.PartitionKey -> *mailbox
	// running is how many partition actors run, as the registry last
	// published it (for Health).
	running atomic.Int64
	// leases is the node's lease owner (leases.go): it holds and renews
	// every lease of this process, and its published view answers which
	// partitions and slots this node leads.
	leases *leases

	// catalog is topic administration and the topic cache; its methods
	// are the Broker's.
	*catalog

	// owner is this process's lease owner string (meta.LeaseOwner).
	owner string
	// cluster is the ownership loop, nil without StartCluster. It decides
	// what this node should own; the lease owner holds what it does.
	cluster atomic.Pointer[ownership]
	remote  atomic.Pointer[Remote] // set by StartRemote; routes requests to other nodes (route.go)

	closing atomic.Bool
	bg      sync.WaitGroup // background loops (retention, sweep)
	stopBg  context.CancelFunc
}

// New starts a broker on the given stores. Close stops it.
func New(opts Options, store meta.Store, objects objstore.Store) (*Broker, error) {
	opts = opts.withDefaults()
	b := &Broker{
		opts:    opts,
		owner:   meta.LeaseOwner(opts.NodeID, newIncarnation()),
		meta:    store,
		objects: objects,
		budget:  &budget{limit: opts.NodeBufferBytes},
	}
	b.metrics = newMetrics(opts.Metrics, b.budget)
	b.blocks = newBlockCache(objects, opts.BlockCacheBytes, opts.BlockSize, b.metrics)
	logger := opts.Logger
	b.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger.With("lib", "protoactor") }))
	b.partitionKind = newMailboxKind(b.metrics, "partition", int64(opts.MailboxRequests), ErrNotOwner)
	registryKind := newMailboxKind(b.metrics, "registry", int64(opts.MailboxRequests), ErrShuttingDown)
	reg, err := spawnOwner(b.system.Root, b.system.Root, registryKind, "registry", func(mb *mailbox) actor.Actor { return newRegistry(b, mb) })
	if err != nil {
		return nil, err
	}
	b.registry = reg
	b.catalog = &catalog{
		store:    store,
		objects:  objects,
		registry: reg,
		log:      opts.Logger,
		validate: b.ValidateTopicConfig,
		created:  b.kickCluster,
		limits:   opts.Limits,
		refuse:   b.refuseLimit,
		bucket:   newTokenBucket(opts.Limits.CreateRate, opts.Limits.CreateBurst, opts.Now()),
		now:      opts.Now,
		admit:    make(chan struct{}, 1),
		byName:   map[string]meta.Topic{},
		byID:     map[meta.TopicID]meta.Topic{},
	}
	if b.leases, err = startLeases(b); err != nil {
		return nil, err
	}
	if b.flusher, err = newFlusher(b); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.stopBg = cancel
	b.bg.Add(2)
	go func() { defer b.bg.Done(); b.retentionLoop(ctx) }()
	go func() { defer b.bg.Done(); b.sweepLoop(ctx) }()
	return b, nil
}

// NodeID is this node's id.
func (b *Broker) NodeID() string { return b.opts.NodeID }

// LeaseOwner is the owner string this process writes into leases: the node
// id and an incarnation new at every start (meta.LeaseOwner).
func (b *Broker) LeaseOwner() string { return b.owner }

// Meta is the metadata store, for layers that keep their own records in it
// (consumer group offsets).
func (b *Broker) Meta() meta.Store { return b.meta }

// Options returns the broker's effective options.
func (b *Broker) Options() Options { return b.opts }

// ActorSystem is the node's actor system, for protocol layers that run their
// own actors (connection actors).
func (b *Broker) ActorSystem() *actor.ActorSystem { return b.system }

// Close drains every partition (sealing and committing what is buffered,
// then releasing its lease) and stops the actor system. Appends that arrive
// meanwhile are refused with ErrShuttingDown.
func (b *Broker) Close(ctx context.Context) error {
	if !b.closing.CompareAndSwap(false, true) {
		return nil
	}
	b.stopBg()
	if c := b.cluster.Load(); c != nil {
		c.close() // before the drain, so it starts nothing new
	}
	done := make(chan struct{})
	b.registry.tell(&drainAll{done: done})
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("drain partitions: %w", ctx.Err())
	}
	b.bg.Wait()
	b.leases.close() // after the drain: draining partitions stay renewed
	b.flusher.stop()
	b.system.Shutdown()
	return err
}

// Send delivers r to the actor of partition p of topic t, starting it if
// needed. The answer comes through r's Reply. Appends are refused at once
// with ErrBackpressure when the node's buffers are full.
func (b *Broker) Send(t meta.Topic, p int32, r Request) {
	if p < 0 || p >= t.Partitions {
		r.fail(fmt.Errorf("%w: %s has no partition %d", ErrUnknownPartition, t.Name, p))
		return
	}
	if b.closing.Load() {
		r.fail(ErrShuttingDown)
		return
	}
	if a, ok := r.(*Append); ok {
		n := int64(len(a.Batches))
		if !b.budget.tryAcquire(n) {
			b.metrics.appendErrors.WithLabelValues("node_buffer_full").Inc()
			r.fail(fmt.Errorf("%w: node holds %d unacknowledged bytes", ErrBackpressure, b.budget.used.Load()))
			return
		}
		a.reserved, a.budget = n, b.budget
	}
	key := meta.PartitionKey{TopicID: t.ID, Partition: p}
	if mb, ok := b.pids.Load(key); ok {
		mb.(*mailbox).request(r)
		return
	}
	if c := b.cluster.Load(); c != nil && !c.mayStart(t.ID, p) {
		r.fail(fmt.Errorf("%w: %s/%d is served by another node", ErrNotOwner, t.Name, p))
		return
	}
	b.registry.request(&route{topic: t, partition: p, req: r})
}
