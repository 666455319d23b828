package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

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
	// held maps the partitions whose lease a ready actor of this node holds
	// to the lease epoch. Partition actors write their own entry; routing
	// reads it, fresher than the cluster view.
	held sync.Map // meta.PartitionKey -> int64

	// topics caches topics by name, and topicsByID the same by id; both
	// guarded by topicsMu. Every topic change made through this Broker
	// updates them; other nodes' changes arrive when an entry is refreshed
	// (see Topic).
	topicsMu   sync.RWMutex
	topics     map[string]meta.Topic
	topicsByID map[meta.TopicID]meta.Topic

	// owner is this process's lease owner string (meta.LeaseOwner).
	owner string
	// cluster is the ownership loop, nil without StartCluster.
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
		opts:       opts,
		owner:      meta.LeaseOwner(opts.NodeID, newIncarnation()),
		meta:       store,
		objects:    objects,
		budget:     &budget{limit: opts.NodeBufferBytes},
		topics:     map[string]meta.Topic{},
		topicsByID: map[meta.TopicID]meta.Topic{},
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
	b.flusher = newFlusher(b)
	ctx, cancel := context.WithCancel(context.Background())
	b.stopBg = cancel
	b.bg.Add(3)
	go func() { defer b.bg.Done(); b.leaseLoop(ctx) }()
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

// CreateTopic creates a topic. ID and CreatedAt are filled in.
func (b *Broker) CreateTopic(ctx context.Context, t meta.Topic) (meta.Topic, error) {
	if t.Partitions < 1 {
		return meta.Topic{}, fmt.Errorf("%w: a topic needs at least one partition", ErrInvalidArgument)
	}
	if t.Kind == "" {
		t.Kind = meta.KindKafka
	}
	if err := b.ValidateTopicConfig(t.Kind, t.Config); err != nil {
		return meta.Topic{}, err
	}
	if t.ID == (meta.TopicID{}) {
		t.ID = meta.TopicID(uuid.New())
	}
	created, err := b.meta.CreateTopic(ctx, t)
	if errors.Is(err, meta.ErrExists) {
		return meta.Topic{}, fmt.Errorf("%w: %s", ErrTopicExists, t.Name)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	b.cacheTopic(created)
	b.kickCluster()
	return created, nil
}

// Topic returns a topic by name (from cache when possible).
func (b *Broker) Topic(ctx context.Context, name string) (meta.Topic, error) {
	b.topicsMu.RLock()
	t, ok := b.topics[name]
	b.topicsMu.RUnlock()
	if ok {
		return t, nil
	}
	return b.RefreshTopic(ctx, name)
}

// RefreshTopic reads a topic from the metadata store, bypassing the cache.
func (b *Broker) RefreshTopic(ctx context.Context, name string) (meta.Topic, error) {
	t, err := b.meta.Topic(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		b.uncacheTopic(name)
		return meta.Topic{}, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("load topic %s: %w", name, err)
	}
	b.cacheTopic(t)
	return t, nil
}

// TopicByID returns a topic by id.
func (b *Broker) TopicByID(ctx context.Context, id meta.TopicID) (meta.Topic, error) {
	b.topicsMu.RLock()
	t, ok := b.topicsByID[id]
	b.topicsMu.RUnlock()
	if ok {
		return t, nil
	}
	t, err := b.meta.TopicByID(ctx, id)
	if errors.Is(err, meta.ErrNotFound) {
		return meta.Topic{}, fmt.Errorf("%w: id %s", ErrUnknownTopic, id)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("load topic %s: %w", id, err)
	}
	b.cacheTopic(t)
	return t, nil
}

// ListTopics lists topics by name prefix, after a name, at most limit (<= 0: all).
func (b *Broker) ListTopics(ctx context.Context, prefix, after string, limit int) ([]meta.Topic, error) {
	ts, err := b.meta.ListTopics(ctx, prefix, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	for _, t := range ts {
		b.cacheTopic(t)
	}
	return ts, nil
}

// DeleteTopic stops the topic's partition actors (failing what they hold
// with ErrNotOwner), deletes its metadata and then its objects.
func (b *Broker) DeleteTopic(ctx context.Context, name string) error {
	t, err := b.RefreshTopic(ctx, name)
	if err != nil {
		return err
	}
	stopped := make(chan struct{})
	b.registry.tell(&stopTopic{id: t.ID, done: stopped})
	select {
	case <-stopped:
	case <-ctx.Done():
		return fmt.Errorf("delete topic %s: stop partitions: %w", name, ctx.Err())
	}
	keys, err := b.meta.DeleteTopic(ctx, name)
	b.uncacheTopic(name)
	if errors.Is(err, meta.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	// Objects left behind by a failure here are removed by the orphan sweep.
	for _, k := range keys {
		if err := b.objects.Delete(ctx, k); err != nil {
			b.opts.Logger.Warn("delete segment object of deleted topic", "topic", name, "key", k, "err", err)
		}
	}
	return nil
}

// SetTopicConfig replaces a topic's config overrides and tells its running
// partition actors.
func (b *Broker) SetTopicConfig(ctx context.Context, name string, config map[string]string) error {
	t, err := b.RefreshTopic(ctx, name)
	if err != nil {
		return err
	}
	if err := b.ValidateTopicConfig(t.Kind, config); err != nil {
		return err
	}
	if err := b.meta.SetTopicConfig(ctx, name, config); err != nil {
		return fmt.Errorf("set config of %s: %w", name, err)
	}
	t.Config = config
	b.cacheTopic(t)
	b.registry.tell(&topicChanged{topic: t})
	return nil
}

// AddPartitions grows a topic to total partitions.
func (b *Broker) AddPartitions(ctx context.Context, name string, total int32) error {
	t, err := b.RefreshTopic(ctx, name)
	if err != nil {
		return err
	}
	if total <= t.Partitions {
		return fmt.Errorf("%w: %s has %d partitions; the count can only grow", ErrInvalidArgument, name, t.Partitions)
	}
	if err := b.meta.AddPartitions(ctx, name, total); err != nil {
		return fmt.Errorf("add partitions to %s: %w", name, err)
	}
	_, err = b.RefreshTopic(ctx, name)
	b.kickCluster()
	return err
}

func (b *Broker) cacheTopic(t meta.Topic) {
	b.topicsMu.Lock()
	if old, ok := b.topics[t.Name]; ok && old.ID != t.ID {
		delete(b.topicsByID, old.ID) // the name was deleted and reused
	}
	b.topics[t.Name] = t
	b.topicsByID[t.ID] = t
	b.topicsMu.Unlock()
}

// uncacheTopicID forgets t unless its name now names another topic.
func (b *Broker) uncacheTopicID(t meta.Topic) {
	b.topicsMu.Lock()
	if cur, ok := b.topics[t.Name]; ok && cur.ID == t.ID {
		delete(b.topics, t.Name)
	}
	delete(b.topicsByID, t.ID)
	b.topicsMu.Unlock()
}

func (b *Broker) uncacheTopic(name string) {
	b.topicsMu.Lock()
	if old, ok := b.topics[name]; ok {
		delete(b.topicsByID, old.ID)
	}
	delete(b.topics, name)
	b.topicsMu.Unlock()
}
