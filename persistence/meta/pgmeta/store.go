package pgmeta

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/internal/metasql"
)

// --- topics -----------------------------------------------------------------

// CreateTopic implements meta.Store.
func (s *Store) CreateTopic(ctx context.Context, t meta.Topic) (meta.Topic, error) {
	if err := metasql.ValidateTopic(t); err != nil {
		return meta.Topic{}, err
	}
	if t.ID == (meta.TopicID{}) {
		u, err := uuid.NewRandom()
		if err != nil {
			return meta.Topic{}, fmt.Errorf("create topic %s: new id: %w", t.Name, err)
		}
		t.ID = meta.TopicID(u)
	}
	t.Config = metasql.CopyConfig(t.Config)
	cfg, err := metasql.EncodeConfig(t.Config)
	if err != nil {
		return meta.Topic{}, fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	// The config travels as text: as []byte, the exec and simple protocol
	// modes (see WithPoolConfig) would send it as bytea, which ::jsonb
	// rejects.
	err = s.pool.QueryRow(ctx, qCreateTopic,
		pgID(t.ID), t.Name, string(t.Kind), t.Partitions, string(cfg), nullTime(t.CreatedAt),
	).Scan(&t.CreatedAt)
	if isUnique(err, "") {
		// The name (or a caller-chosen id) is taken.
		return meta.Topic{}, fmt.Errorf("create topic %s: %w", t.Name, meta.ErrExists)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	return t, nil
}

// scanTopic reads a row of topicColumns.
func scanTopic(row pgx.Row) (meta.Topic, error) {
	var (
		t    meta.Topic
		id   pgtype.UUID
		kind string
		cfg  []byte
	)
	if err := row.Scan(&id, &t.Name, &kind, &t.Partitions, &cfg, &t.CreatedAt); err != nil {
		return meta.Topic{}, err
	}
	t.ID = meta.TopicID(id.Bytes)
	t.Kind = meta.TopicKind(kind)
	c, err := metasql.DecodeConfig(cfg)
	if err != nil {
		return meta.Topic{}, err
	}
	t.Config = c
	return t, nil
}

// Topic implements meta.Store.
func (s *Store) Topic(ctx context.Context, name string) (meta.Topic, error) {
	t, err := scanTopic(s.pool.QueryRow(ctx, qTopicByName, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return meta.Topic{}, fmt.Errorf("topic %s: %w", name, meta.ErrNotFound)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("topic %s: %w", name, err)
	}
	return t, nil
}

// TopicByID implements meta.Store.
func (s *Store) TopicByID(ctx context.Context, id meta.TopicID) (meta.Topic, error) {
	t, err := scanTopic(s.pool.QueryRow(ctx, qTopicByID, pgID(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return meta.Topic{}, fmt.Errorf("topic id %s: %w", id, meta.ErrNotFound)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("topic id %s: %w", id, err)
	}
	return t, nil
}

// ListTopics implements meta.Store.
func (s *Store) ListTopics(ctx context.Context, prefix, after string, limit int) ([]meta.Topic, error) {
	rows, err := s.pool.Query(ctx, qListTopics, prefix, after, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("list topics %q after %q: %w", prefix, after, err)
	}
	topics, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.Topic, error) { return scanTopic(r) })
	if err != nil {
		return nil, fmt.Errorf("list topics %q after %q: %w", prefix, after, err)
	}
	return topics, nil
}

// PartitionCount implements meta.Store.
func (s *Store) PartitionCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, qPartitionCount).Scan(&n); err != nil {
		return 0, fmt.Errorf("count partitions: %w", err)
	}
	return n, nil
}

// sqlLimit maps "limit <= 0 means all" to a NULL LIMIT.
func sqlLimit(limit int) any {
	if limit <= 0 {
		return nil
	}
	return int64(limit)
}

// lockTopic locks a topic's row for the rest of tx and returns its id and
// partition count, or ErrNotFound.
func lockTopic(ctx context.Context, tx pgx.Tx, name string) (meta.TopicID, int32, error) {
	var (
		id    pgtype.UUID
		parts int32
	)
	err := tx.QueryRow(ctx, qLockTopic, name).Scan(&id, &parts)
	if errors.Is(err, pgx.ErrNoRows) {
		return meta.TopicID{}, 0, meta.ErrNotFound
	}
	return meta.TopicID(id.Bytes), parts, err
}

// DeleteTopic implements meta.Store. The leases go first: CommitFlushes
// locks a lease row before its partition row, and taking them in the same
// order here means a delete racing a commit waits for it instead of
// deadlocking.
func (s *Store) DeleteTopic(ctx context.Context, name string) ([]string, error) {
	var keys []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, parts, err := lockTopic(ctx, tx, name)
		if err != nil {
			return err
		}
		resources := make([]string, parts)
		for p := range parts {
			resources[p] = meta.PartitionResource(id, p)
		}
		if _, err := tx.Exec(ctx, qDeleteLeases, resources); err != nil {
			return fmt.Errorf("delete leases: %w", err)
		}
		rows, err := tx.Query(ctx, qDeleteSegments, pgID(id))
		if err != nil {
			return fmt.Errorf("delete segments: %w", err)
		}
		if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("delete segments: %w", err)
		}
		if keys, err = unreferenced(ctx, tx, keys); err != nil {
			return err
		}
		// Partitions and producer state go by ON DELETE CASCADE.
		if _, err := tx.Exec(ctx, qDeleteTopic, pgID(id)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, qDeleteTopicOffs, name); err != nil {
			return fmt.Errorf("delete committed offsets: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete topic %s: %w", name, err)
	}
	return keys, nil
}

// SetTopicConfig implements meta.Store.
func (s *Store) SetTopicConfig(ctx context.Context, name string, config map[string]string) error {
	cfg, err := metasql.EncodeConfig(config)
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	tag, err := s.pool.Exec(ctx, qSetTopicConfig, name, string(cfg)) // text, as in CreateTopic
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set config of topic %s: %w", name, meta.ErrNotFound)
	}
	return nil
}

// AddPartitions implements meta.Store.
func (s *Store) AddPartitions(ctx context.Context, name string, total int32) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, cur, err := lockTopic(ctx, tx, name)
		if err != nil {
			return err
		}
		switch {
		case total < cur:
			return fmt.Errorf("topic has %d partitions, cannot shrink: %w", cur, meta.ErrInvalid)
		case total == cur:
			return nil
		}
		if _, err := tx.Exec(ctx, qInsertPartitions, pgID(id), cur, total); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, qSetTopicParts, pgID(id), total)
		return err
	})
	if err != nil {
		return fmt.Errorf("add partitions to topic %s (to %d): %w", name, total, err)
	}
	return nil
}

// CatalogVersion implements meta.Store.
func (s *Store) CatalogVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, qCatalogVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("catalog version: %w", err)
	}
	return v, nil
}

// Partition implements meta.Store.
func (s *Store) Partition(ctx context.Context, id meta.TopicID, partition int32) (meta.Partition, error) {
	p := meta.Partition{TopicID: id, Partition: partition}
	err := s.pool.QueryRow(ctx, qPartition, pgID(id), partition).Scan(&p.NextOffset, &p.LogStartOffset, &p.Bytes)
	if errors.Is(err, pgx.ErrNoRows) {
		return meta.Partition{}, fmt.Errorf("partition %s/%d: %w", id, partition, meta.ErrNotFound)
	}
	if err != nil {
		return meta.Partition{}, fmt.Errorf("partition %s/%d: %w", id, partition, err)
	}
	return p, nil
}

// --- segments and producers (the write path is in commit.go) ----------------

// scanSegment reads a row of segmentColumns.
func scanSegment(row pgx.Row, id meta.TopicID, partition int32) (meta.Segment, error) {
	sg := meta.Segment{TopicID: id, Partition: partition}
	var idx []byte
	if err := row.Scan(&sg.BaseOffset, &sg.EndOffset, &sg.ObjectKey, &sg.Position, &sg.Size, &sg.Epoch,
		&sg.MaxTimestamp, &idx, &sg.CreatedAt); err != nil {
		return meta.Segment{}, err
	}
	var err error
	if sg.Index, err = metasql.DecodeIndex(idx); err != nil {
		return meta.Segment{}, fmt.Errorf("segment %s: %w", sg.ObjectKey, err)
	}
	return sg, nil
}

// Segments implements meta.Store.
func (s *Store) Segments(ctx context.Context, id meta.TopicID, partition int32, from int64, limit int) ([]meta.Segment, error) {
	rows, err := s.pool.Query(ctx, qSegments, pgID(id), partition, from, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("segments of %s/%d from %d: %w", id, partition, from, err)
	}
	segs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.Segment, error) {
		return scanSegment(r, id, partition)
	})
	if err != nil {
		return nil, fmt.Errorf("segments of %s/%d from %d: %w", id, partition, from, err)
	}
	return segs, nil
}

// SegmentByTimestamp implements meta.Store.
func (s *Store) SegmentByTimestamp(ctx context.Context, id meta.TopicID, partition int32, ts int64) (meta.Segment, error) {
	sg, err := scanSegment(s.pool.QueryRow(ctx, qSegmentByTimestamp, pgID(id), partition, ts), id, partition)
	if errors.Is(err, pgx.ErrNoRows) {
		return meta.Segment{}, fmt.Errorf("segment of %s/%d at timestamp %d: %w", id, partition, ts, meta.ErrNotFound)
	}
	if err != nil {
		return meta.Segment{}, fmt.Errorf("segment of %s/%d at timestamp %d: %w", id, partition, ts, err)
	}
	return sg, nil
}

// AdvanceLogStart implements meta.Store.
func (s *Store) AdvanceLogStart(ctx context.Context, id meta.TopicID, partition int32, offset int64) (int64, []string, error) {
	var (
		start int64
		keys  []string
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, qAdvanceLogStart, pgID(id), partition, offset).Scan(&start)
		if errors.Is(err, pgx.ErrNoRows) {
			return meta.ErrNotFound
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, qDropSegmentsBelow, pgID(id), partition, start)
		if err != nil {
			return err
		}
		if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		keys, err = unreferenced(ctx, tx, keys)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("advance log start of %s/%d to %d: %w", id, partition, offset, err)
	}
	return start, keys, nil
}

// unreferenced returns the distinct keys of deleted segments whose objects
// no segment references any more, as tx sees it after the deletion. A
// concurrent transaction dropping the other segments of one object may
// make both miss it; the orphan sweep deletes such an object later.
func unreferenced(ctx context.Context, tx pgx.Tx, keys []string) ([]string, error) {
	keys = metasql.UniqueKeys(keys)
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, qUnreferencedKeys, keys)
	if err != nil {
		return nil, fmt.Errorf("find unreferenced objects: %w", err)
	}
	free, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find unreferenced objects: %w", err)
	}
	return free, nil
}

// CommittedKeys implements meta.Store.
func (s *Store) CommittedKeys(ctx context.Context, keys []string) (map[string]bool, error) {
	out := make(map[string]bool, len(keys))
	for _, k := range keys {
		out[k] = false
	}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, qCommittedKeys, keys)
	if err != nil {
		return nil, fmt.Errorf("committed keys (%d asked): %w", len(keys), err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("committed keys (%d asked): %w", len(keys), err)
	}
	for _, k := range found {
		out[k] = true
	}
	return out, nil
}

// Producers implements meta.Store.
func (s *Store) Producers(ctx context.Context, id meta.TopicID, partition int32) ([]meta.ProducerState, error) {
	rows, err := s.pool.Query(ctx, qProducers, pgID(id), partition)
	if err != nil {
		return nil, fmt.Errorf("producers of %s/%d: %w", id, partition, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.ProducerState, error) {
		var (
			p meta.ProducerState
			b []byte
		)
		if err := r.Scan(&p.ProducerID, &p.ProducerEpoch, &b, &p.LastUpdate); err != nil {
			return p, err
		}
		var err error
		p.Batches, err = metasql.DecodeBatches(b)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("producers of %s/%d: %w", id, partition, err)
	}
	return ps, nil
}

// NextProducerID implements meta.Store.
func (s *Store) NextProducerID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, qNextProducerID).Scan(&id); err != nil {
		return 0, fmt.Errorf("next producer id: %w", err)
	}
	return id, nil
}

// --- leases -----------------------------------------------------------------

// AcquireLease implements meta.Store with the single upsert qAcquireLease.
func (s *Store) AcquireLease(ctx context.Context, resource, owner string, ttl time.Duration) (meta.Lease, error) {
	if err := metasql.ValidateLease("acquire lease", resource, owner, ttl); err != nil {
		return meta.Lease{}, err
	}
	l := meta.Lease{Resource: resource}
	err := s.pool.QueryRow(ctx, qAcquireLease, resource, owner, metasql.Micros(ttl)).Scan(&l.Owner, &l.Epoch, &l.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return meta.Lease{}, fmt.Errorf("acquire lease %s for %s: %w", resource, owner, meta.ErrLeaseHeld)
	}
	if err != nil {
		return meta.Lease{}, fmt.Errorf("acquire lease %s for %s: %w", resource, owner, err)
	}
	return l, nil
}

// RenewLease implements meta.Store.
func (s *Store) RenewLease(ctx context.Context, resource, owner string, epoch int64, ttl time.Duration) (meta.Lease, error) {
	if err := metasql.ValidateLease("renew lease", resource, owner, ttl); err != nil {
		return meta.Lease{}, err
	}
	l := meta.Lease{Resource: resource}
	err := s.pool.QueryRow(ctx, qRenewLease, resource, owner, epoch, metasql.Micros(ttl)).Scan(&l.Owner, &l.Epoch, &l.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return meta.Lease{}, fmt.Errorf("renew lease %s for %s at epoch %d: %w", resource, owner, epoch, meta.ErrFenced)
	}
	if err != nil {
		return meta.Lease{}, fmt.Errorf("renew lease %s for %s at epoch %d: %w", resource, owner, epoch, err)
	}
	return l, nil
}

// RenewLeases implements meta.Store.
func (s *Store) RenewLeases(ctx context.Context, owner string, ttl time.Duration) ([]meta.Lease, error) {
	if err := metasql.ValidateLease("renew leases", "*", owner, ttl); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, qRenewLeases, owner, metasql.Micros(ttl))
	if err != nil {
		return nil, fmt.Errorf("renew leases of %s: %w", owner, err)
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.Lease, error) {
		var l meta.Lease
		err := r.Scan(&l.Resource, &l.Owner, &l.Epoch, &l.ExpiresAt)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("renew leases of %s: %w", owner, err)
	}
	return ls, nil
}

// ReleaseStaleLeases implements meta.Store.
func (s *Store) ReleaseStaleLeases(ctx context.Context, node, current string) (int, error) {
	if node == "" || meta.LeaseNode(current) != node {
		return 0, fmt.Errorf("release stale leases of %q (current %q): %w", node, current, meta.ErrInvalid)
	}
	tag, err := s.pool.Exec(ctx, qReleaseStaleLeases, node, current)
	if err != nil {
		return 0, fmt.Errorf("release stale leases of %s: %w", node, err)
	}
	return int(tag.RowsAffected()), nil
}

// ReleaseLease implements meta.Store.
func (s *Store) ReleaseLease(ctx context.Context, resource, owner string, epoch int64) error {
	if owner == "" {
		// The vacant marker is owner ''; "releasing" as nobody must not
		// match a vacant row.
		return nil
	}
	if _, err := s.pool.Exec(ctx, qReleaseLease, resource, owner, epoch); err != nil {
		return fmt.Errorf("release lease %s for %s at epoch %d: %w", resource, owner, epoch, err)
	}
	return nil
}

// Leases implements meta.Store.
func (s *Store) Leases(ctx context.Context, prefix string) ([]meta.Lease, error) {
	rows, err := s.pool.Query(ctx, qLeases, prefix)
	if err != nil {
		return nil, fmt.Errorf("leases %q: %w", prefix, err)
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.Lease, error) {
		var l meta.Lease
		err := r.Scan(&l.Resource, &l.Owner, &l.Epoch, &l.ExpiresAt)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("leases %q: %w", prefix, err)
	}
	return ls, nil
}

// --- consumer groups --------------------------------------------------------

// CommitOffsets implements meta.Store in one statement.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []meta.OffsetCommit, fence meta.Fence) error {
	offsets = metasql.DedupeOffsets(offsets)
	if len(offsets) == 0 {
		return nil
	}
	n := len(offsets)
	var (
		topics   = make([]string, n)
		parts    = make([]int32, n)
		offs     = make([]int64, n)
		epochs   = make([]int32, n)
		metadata = make([]string, n)
		at       = make([]pgtype.Timestamptz, n)
	)
	for i, o := range offsets {
		topics[i], parts[i], offs[i], epochs[i], metadata[i], at[i] = o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, nullTime(o.CommittedAt)
	}
	res, fOwner, fEpoch := fenceArgs(fence)
	tag, err := s.pool.Exec(ctx, qCommitOffsets, group, topics, parts, offs, epochs, metadata, at, res, fOwner, fEpoch)
	if err != nil {
		return fmt.Errorf("commit %d offsets of group %s: %w", n, group, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("commit offsets of group %s: %w: %s not held by %s at epoch %d", group, meta.ErrFenced, fence.Resource, fence.Owner, fence.Epoch)
	}
	return nil
}

// fenceArgs are a fence's query arguments; a zero fence's resource is NULL.
func fenceArgs(f meta.Fence) (resource *string, owner string, epoch int64) {
	if f.IsZero() {
		return nil, "", 0
	}
	return &f.Resource, f.Owner, f.Epoch
}

// FetchOffsets implements meta.Store.
func (s *Store) FetchOffsets(ctx context.Context, group string, topics []string) ([]meta.OffsetCommit, error) {
	// A nil slice is sent as NULL (all topics); an empty one as '{}' (none).
	rows, err := s.pool.Query(ctx, qFetchOffsets, group, topics)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	os, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.OffsetCommit, error) {
		var o meta.OffsetCommit
		err := r.Scan(&o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata, &o.CommittedAt)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	return os, nil
}

// DeleteOffsets implements meta.Store.
func (s *Store) DeleteOffsets(ctx context.Context, group, topic string, partitions []int32) error {
	if len(partitions) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, qDeleteOffsets, group, topic, partitions); err != nil {
		return fmt.Errorf("delete offsets of group %s topic %s: %w", group, topic, err)
	}
	return nil
}

// SaveGroup implements meta.Store.
func (s *Store) SaveGroup(ctx context.Context, g meta.Group, fence meta.Fence) error {
	res, fOwner, fEpoch := fenceArgs(fence)
	tag, err := s.pool.Exec(ctx, qSaveGroup, g.Name, g.ProtocolType, nonNil(g.State), nullTime(g.UpdatedAt), res, fOwner, fEpoch)
	if err != nil {
		return fmt.Errorf("save group %s: %w", g.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("save group %s: %w: %s not held by %s at epoch %d", g.Name, meta.ErrFenced, fence.Resource, fence.Owner, fence.Epoch)
	}
	return nil
}

func scanGroup(r pgx.Row) (meta.Group, error) {
	var g meta.Group
	err := r.Scan(&g.Name, &g.ProtocolType, &g.State, &g.UpdatedAt)
	return g, err
}

// Group implements meta.Store.
func (s *Store) Group(ctx context.Context, name string) (meta.Group, error) {
	g, err := scanGroup(s.pool.QueryRow(ctx, qGroup, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return meta.Group{}, fmt.Errorf("group %s: %w", name, meta.ErrNotFound)
	}
	if err != nil {
		return meta.Group{}, fmt.Errorf("group %s: %w", name, err)
	}
	return g, nil
}

// ListGroups implements meta.Store.
func (s *Store) ListGroups(ctx context.Context) ([]meta.Group, error) {
	rows, err := s.pool.Query(ctx, qListGroups)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.Group, error) { return scanGroup(r) })
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return gs, nil
}

// DeleteGroup implements meta.Store.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	var n int64
	if err := s.pool.QueryRow(ctx, qDeleteGroup, name).Scan(&n); err != nil {
		return fmt.Errorf("delete group %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("delete group %s: %w", name, meta.ErrNotFound)
	}
	return nil
}

// --- nodes ------------------------------------------------------------------

// Heartbeat implements meta.Store.
func (s *Store) Heartbeat(ctx context.Context, n meta.Node) error {
	if n.ID == "" {
		return fmt.Errorf("heartbeat: empty node id: %w", meta.ErrInvalid)
	}
	if _, err := s.pool.Exec(ctx, qHeartbeat, n.ID, n.KafkaAddr, n.WALAddr, n.RemoteAddr, nullTime(n.StartedAt)); err != nil {
		return fmt.Errorf("heartbeat of node %s: %w", n.ID, err)
	}
	return nil
}

// LiveNodes implements meta.Store.
func (s *Store) LiveNodes(ctx context.Context, within time.Duration) ([]meta.Node, error) {
	rows, err := s.pool.Query(ctx, qLiveNodes, metasql.Micros(within))
	if err != nil {
		return nil, fmt.Errorf("live nodes within %v: %w", within, err)
	}
	ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.Node, error) {
		var n meta.Node
		err := r.Scan(&n.ID, &n.KafkaAddr, &n.WALAddr, &n.RemoteAddr, &n.StartedAt, &n.HeartbeatAt)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("live nodes within %v: %w", within, err)
	}
	return ns, nil
}

// RemoveNode implements meta.Store.
func (s *Store) RemoveNode(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, qRemoveNode, id); err != nil {
		return fmt.Errorf("remove node %s: %w", id, err)
	}
	return nil
}
