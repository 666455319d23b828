package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
)

// catalog is a node's topic administration: creating, changing and
// deleting topics in the metadata store, telling the registry what that
// means for running partitions, and a cache of topics by name and by id.
// Its exported methods are the Broker's (Broker embeds it).
type catalog struct {
	store    meta.Store
	objects  objstore.Store
	registry *mailbox
	log      *slog.Logger
	// validate checks a topic's config overrides (Broker.ValidateTopicConfig).
	validate func(meta.TopicKind, map[string]string) error
	// created is called after a topic is created or grows, so ownership
	// places its partitions without waiting for its next poll.
	created func()
	// limits are the creation caps and rate; refuse counts a refusal by
	// one of them (Broker.refuseLimit) and returns its error.
	limits Limits
	refuse func(reason string, err error) error

	// admit (a one-slot semaphore, so a waiter gives up with its
	// context) serializes this node's creations and growths from the
	// count of the cluster's partitions to the write, so two of them
	// cannot both pass the cap on the same count. Creations are
	// rate-limited, so holding it across the store calls costs little.
	// Nodes do not share it: concurrent creations on several nodes may
	// pass the cap by what they create together.
	admit chan struct{}
	// rateMu guards bucket, the node's creation token bucket, which
	// refills by now (Options.Now).
	rateMu sync.Mutex
	bucket *tokenBucket
	now    func() time.Time

	// mu guards byName and byID. Every topic change made through this
	// catalog updates them; other nodes' changes arrive when an entry is
	// refreshed (see Topic) or when ownership syncs the whole list
	// (Broker.syncTopics).
	mu     sync.RWMutex
	byName map[string]meta.Topic
	byID   map[meta.TopicID]meta.Topic
}

// CreateTopic creates a topic. ID and CreatedAt are filled in. It is
// refused with ErrTooManyPartitions past the per-topic cap, ErrThrottled
// when the node's creation rate is used up, and ErrLimitReached when the
// cluster would hold more partitions than its cap.
func (c *catalog) CreateTopic(ctx context.Context, t meta.Topic) (meta.Topic, error) {
	if t.Partitions < 1 {
		return meta.Topic{}, fmt.Errorf("%w: a topic needs at least one partition", ErrInvalidArgument)
	}
	if limit := c.limits.MaxPartitionsPerTopic; t.Partitions > limit {
		return meta.Topic{}, c.refuse(LimitTopicPartitions, fmt.Errorf("%w: %s: %d partitions asked; a topic may have at most %d (limits.max_partitions_per_topic)", ErrTooManyPartitions, t.Name, t.Partitions, limit))
	}
	if t.Kind == "" {
		t.Kind = meta.KindKafka
	}
	if err := c.validate(t.Kind, t.Config); err != nil {
		return meta.Topic{}, err
	}
	if t.ID == (meta.TopicID{}) {
		t.ID = meta.TopicID(uuid.New())
	}
	if err := c.takeToken(); err != nil {
		return meta.Topic{}, err
	}
	release, err := c.admitOne(ctx)
	if err != nil {
		return meta.Topic{}, err
	}
	defer release()
	if err := c.checkClusterPartitions(ctx, t.Name, int64(t.Partitions)); err != nil {
		return meta.Topic{}, err
	}
	created, err := c.store.CreateTopic(ctx, t)
	if errors.Is(err, meta.ErrExists) {
		return meta.Topic{}, fmt.Errorf("%w: %s", ErrTopicExists, t.Name)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	c.cacheTopic(created)
	c.created()
	return created, nil
}

// Topic returns a topic by name (from cache when possible).
func (c *catalog) Topic(ctx context.Context, name string) (meta.Topic, error) {
	c.mu.RLock()
	t, ok := c.byName[name]
	c.mu.RUnlock()
	if ok {
		return t, nil
	}
	return c.RefreshTopic(ctx, name)
}

// RefreshTopic reads a topic from the metadata store, bypassing the cache.
func (c *catalog) RefreshTopic(ctx context.Context, name string) (meta.Topic, error) {
	t, err := c.store.Topic(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		c.uncacheTopic(name)
		return meta.Topic{}, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	if err != nil {
		// ErrStorage: the store being away is retriable (a Kafka client
		// keeps its records and asks again; a WAL client gets 503), not
		// an unexpected server error that makes producers drop records.
		return meta.Topic{}, fmt.Errorf("%w: load topic %s: %w", ErrStorage, name, err)
	}
	c.cacheTopic(t)
	return t, nil
}

// TopicByID returns a topic by id.
func (c *catalog) TopicByID(ctx context.Context, id meta.TopicID) (meta.Topic, error) {
	c.mu.RLock()
	t, ok := c.byID[id]
	c.mu.RUnlock()
	if ok {
		return t, nil
	}
	t, err := c.store.TopicByID(ctx, id)
	if errors.Is(err, meta.ErrNotFound) {
		return meta.Topic{}, fmt.Errorf("%w: id %s", ErrUnknownTopic, id)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("%w: load topic %s: %w", ErrStorage, id, err)
	}
	c.cacheTopic(t)
	return t, nil
}

// ListTopics lists topics by name prefix, after a name, at most limit (<= 0: all).
func (c *catalog) ListTopics(ctx context.Context, prefix, after string, limit int) ([]meta.Topic, error) {
	ts, err := c.store.ListTopics(ctx, prefix, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	for _, t := range ts {
		c.cacheTopic(t)
	}
	return ts, nil
}

// DeleteTopic stops the topic's partition actors (failing what they hold
// with ErrNotOwner), deletes its metadata and then its objects.
func (c *catalog) DeleteTopic(ctx context.Context, name string) error {
	t, err := c.RefreshTopic(ctx, name)
	if err != nil {
		return err
	}
	stopped := make(chan struct{})
	c.registry.tell(&stopTopic{id: t.ID, done: stopped})
	select {
	case <-stopped:
	case <-ctx.Done():
		return fmt.Errorf("delete topic %s: stop partitions: %w", name, ctx.Err())
	}
	keys, err := c.store.DeleteTopic(ctx, name)
	c.uncacheTopic(name)
	if errors.Is(err, meta.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	// Objects left behind by a failure here are removed by the orphan sweep.
	for _, k := range keys {
		if err := c.objects.Delete(ctx, k); err != nil {
			c.log.Warn("delete segment object of deleted topic", "topic", name, "key", k, "err", err)
		}
	}
	return nil
}

// SetTopicConfig replaces a topic's config overrides and tells its running
// partition actors.
func (c *catalog) SetTopicConfig(ctx context.Context, name string, config map[string]string) error {
	t, err := c.RefreshTopic(ctx, name)
	if err != nil {
		return err
	}
	if err := c.validate(t.Kind, config); err != nil {
		return err
	}
	if err := c.store.SetTopicConfig(ctx, name, config); err != nil {
		return fmt.Errorf("set config of %s: %w", name, err)
	}
	t.Config = config
	c.cacheTopic(t)
	c.registry.tell(&topicChanged{topic: t})
	return nil
}

// AddPartitions grows a topic to total partitions.
func (c *catalog) AddPartitions(ctx context.Context, name string, total int32) error {
	t, err := c.RefreshTopic(ctx, name)
	if err != nil {
		return err
	}
	if total <= t.Partitions {
		return fmt.Errorf("%w: %s has %d partitions; the count can only grow", ErrInvalidArgument, name, t.Partitions)
	}
	if limit := c.limits.MaxPartitionsPerTopic; total > limit {
		return c.refuse(LimitTopicPartitions, fmt.Errorf("%w: %s: %d partitions asked; a topic may have at most %d (limits.max_partitions_per_topic)", ErrTooManyPartitions, name, total, limit))
	}
	if err := c.takeToken(); err != nil {
		return err
	}
	release, err := c.admitOne(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := c.checkClusterPartitions(ctx, name, int64(total-t.Partitions)); err != nil {
		return err
	}
	if err := c.store.AddPartitions(ctx, name, total); err != nil {
		return fmt.Errorf("add partitions to %s: %w", name, err)
	}
	_, err = c.RefreshTopic(ctx, name)
	c.created()
	return err
}

// takeToken takes one creation from the node's token bucket, or refuses
// with a ThrottleError saying how long until one is there.
func (c *catalog) takeToken() error {
	c.rateMu.Lock()
	wait, ok := c.bucket.take(c.now())
	c.rateMu.Unlock()
	if !ok {
		return c.refuse(LimitCreateRate, &ThrottleError{Wait: wait})
	}
	return nil
}

// admitOne waits for this node's other creation in progress, if any, to
// end, or for ctx; release ends this one.
func (c *catalog) admitOne(ctx context.Context) (release func(), err error) {
	select {
	case c.admit <- struct{}{}:
		return func() { <-c.admit }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for another creation on this node: %w", ctx.Err())
	}
}

// checkClusterPartitions refuses adding n partitions (to topic name) when
// the cluster would then hold more than its cap. The caller holds admit
// (admitOne).
func (c *catalog) checkClusterPartitions(ctx context.Context, name string, n int64) error {
	have, err := c.store.PartitionCount(ctx)
	if err != nil {
		return fmt.Errorf("check the cluster's partition count: %w", err)
	}
	if limit := c.limits.MaxClusterPartitions; have+n > limit {
		return c.refuse(LimitClusterPartitions, fmt.Errorf("%w: %s: the cluster holds %d partitions and may hold at most %d (limits.max_cluster_partitions); %d more do not fit", ErrLimitReached, name, have, limit, n))
	}
	return nil
}

func (c *catalog) cacheTopic(t meta.Topic) {
	c.mu.Lock()
	if old, ok := c.byName[t.Name]; ok && old.ID != t.ID {
		delete(c.byID, old.ID) // the name was deleted and reused
	}
	c.byName[t.Name] = t
	c.byID[t.ID] = t
	c.mu.Unlock()
}

// uncacheTopicID forgets t unless its name now names another topic.
func (c *catalog) uncacheTopicID(t meta.Topic) {
	c.mu.Lock()
	if cur, ok := c.byName[t.Name]; ok && cur.ID == t.ID {
		delete(c.byName, t.Name)
	}
	delete(c.byID, t.ID)
	c.mu.Unlock()
}

func (c *catalog) uncacheTopic(name string) {
	c.mu.Lock()
	if old, ok := c.byName[name]; ok {
		delete(c.byID, old.ID)
	}
	delete(c.byName, name)
	c.mu.Unlock()
}

// cachedTopicByID returns the topic with id if it is cached.
func (c *catalog) cachedTopicByID(id meta.TopicID) (meta.Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.byID[id]
	return t, ok
}
