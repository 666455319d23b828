package litemeta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

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
	err = s.write(ctx, func(tx *sql.Tx, now int64) error {
		created := microsOr(t.CreatedAt, now)
		if _, err := tx.ExecContext(ctx, qCreateTopic, t.ID[:], t.Name, string(t.Kind), t.Partitions, string(cfg), created); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qInsertPartitions, t.ID[:], 0, t.Partitions); err != nil {
			return err
		}
		t.CreatedAt = fromMicros(created)
		return nil
	})
	if isUnique(err) {
		return meta.Topic{}, fmt.Errorf("create topic %s: %w", t.Name, meta.ErrExists)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	return t, nil
}

// scanner is the Scan of *sql.Row and *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanTopic(r scanner) (meta.Topic, error) {
	var (
		t       meta.Topic
		id      []byte
		kind    string
		cfg     string
		created int64
	)
	if err := r.Scan(&id, &t.Name, &kind, &t.Partitions, &cfg, &created); err != nil {
		return meta.Topic{}, err
	}
	var err error
	if t.ID, err = topicID(id); err != nil {
		return meta.Topic{}, err
	}
	t.Kind = meta.TopicKind(kind)
	t.CreatedAt = fromMicros(created)
	t.Config, err = metasql.DecodeConfig([]byte(cfg))
	return t, err
}

// Topic implements meta.Store.
func (s *Store) Topic(ctx context.Context, name string) (meta.Topic, error) {
	t, err := scanTopic(s.r.QueryRowContext(ctx, qTopicByName, name))
	if errors.Is(err, sql.ErrNoRows) {
		return meta.Topic{}, fmt.Errorf("topic %s: %w", name, meta.ErrNotFound)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("topic %s: %w", name, err)
	}
	return t, nil
}

// TopicByID implements meta.Store.
func (s *Store) TopicByID(ctx context.Context, id meta.TopicID) (meta.Topic, error) {
	t, err := scanTopic(s.r.QueryRowContext(ctx, qTopicByID, id[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return meta.Topic{}, fmt.Errorf("topic id %s: %w", id, meta.ErrNotFound)
	}
	if err != nil {
		return meta.Topic{}, fmt.Errorf("topic id %s: %w", id, err)
	}
	return t, nil
}

// ListTopics implements meta.Store.
func (s *Store) ListTopics(ctx context.Context, prefix, after string, limit int) ([]meta.Topic, error) {
	lo, hi := prefixRange(prefix)
	rows, err := s.r.QueryContext(ctx, qListTopics, lo, hi, after, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("list topics %q after %q: %w", prefix, after, err)
	}
	topics, err := collect(rows, func(r *sql.Rows) (meta.Topic, error) { return scanTopic(r) })
	if err != nil {
		return nil, fmt.Errorf("list topics %q after %q: %w", prefix, after, err)
	}
	return topics, nil
}

// PartitionCount implements meta.Store.
func (s *Store) PartitionCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, qPartitionCount).Scan(&n); err != nil {
		return 0, fmt.Errorf("count partitions: %w", err)
	}
	return n, nil
}

// topicForUpdate returns a topic's id and partition count, or ErrNotFound.
// Inside a write transaction the row cannot change until it ends.
func topicForUpdate(ctx context.Context, tx *sql.Tx, name string) (meta.TopicID, int32, error) {
	var (
		b     []byte
		parts int32
	)
	err := tx.QueryRowContext(ctx, qTopicForUpdate, name).Scan(&b, &parts)
	if errors.Is(err, sql.ErrNoRows) {
		return meta.TopicID{}, 0, meta.ErrNotFound
	}
	if err != nil {
		return meta.TopicID{}, 0, err
	}
	id, err := topicID(b)
	return id, parts, err
}

// DeleteTopic implements meta.Store.
func (s *Store) DeleteTopic(ctx context.Context, name string) ([]string, error) {
	var keys []string
	err := s.write(ctx, func(tx *sql.Tx, _ int64) error {
		id, parts, err := topicForUpdate(ctx, tx, name)
		if err != nil {
			return err
		}
		resources := make([]string, parts)
		for p := range parts {
			resources[p] = meta.PartitionResource(id, p)
		}
		list, err := json.Marshal(resources)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qDeleteLeases, string(list)); err != nil {
			return fmt.Errorf("delete leases: %w", err)
		}
		rows, err := tx.QueryContext(ctx, qDeleteSegments, id[:])
		if err != nil {
			return fmt.Errorf("delete segments: %w", err)
		}
		if keys, err = collect(rows, scanString); err != nil {
			return fmt.Errorf("delete segments: %w", err)
		}
		if keys, err = unreferenced(ctx, tx, keys); err != nil {
			return err
		}
		// Partitions and producer state go by ON DELETE CASCADE.
		if _, err := tx.ExecContext(ctx, qDeleteTopic, id[:]); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qDeleteTopicOffs, name); err != nil {
			return fmt.Errorf("delete committed offsets: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete topic %s: %w", name, err)
	}
	return keys, nil
}

func scanString(r *sql.Rows) (string, error) {
	var v string
	err := r.Scan(&v)
	return v, err
}

// SetTopicConfig implements meta.Store.
func (s *Store) SetTopicConfig(ctx context.Context, name string, config map[string]string) error {
	cfg, err := metasql.EncodeConfig(config)
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	err = s.write(ctx, func(tx *sql.Tx, _ int64) error {
		res, err := tx.ExecContext(ctx, qSetTopicConfig, name, string(cfg))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return meta.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set config of topic %s: %w", name, err)
	}
	return nil
}

// AddPartitions implements meta.Store.
func (s *Store) AddPartitions(ctx context.Context, name string, total int32) error {
	err := s.write(ctx, func(tx *sql.Tx, _ int64) error {
		id, cur, err := topicForUpdate(ctx, tx, name)
		if err != nil {
			return err
		}
		switch {
		case total < cur:
			return fmt.Errorf("topic has %d partitions, cannot shrink: %w", cur, meta.ErrInvalid)
		case total == cur:
			return nil
		}
		if _, err := tx.ExecContext(ctx, qInsertPartitions, id[:], cur, total); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, qSetTopicParts, id[:], total)
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
	if err := s.r.QueryRowContext(ctx, qCatalogVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("catalog version: %w", err)
	}
	return v, nil
}

// Partition implements meta.Store.
func (s *Store) Partition(ctx context.Context, id meta.TopicID, partition int32) (meta.Partition, error) {
	p := meta.Partition{TopicID: id, Partition: partition}
	err := s.r.QueryRowContext(ctx, qPartition, id[:], partition).Scan(&p.NextOffset, &p.LogStartOffset, &p.Bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return meta.Partition{}, fmt.Errorf("partition %s/%d: %w", id, partition, meta.ErrNotFound)
	}
	if err != nil {
		return meta.Partition{}, fmt.Errorf("partition %s/%d: %w", id, partition, err)
	}
	return p, nil
}

// --- the write path ---------------------------------------------------------

func scanSegment(r scanner, id meta.TopicID, partition int32) (meta.Segment, error) {
	sg := meta.Segment{TopicID: id, Partition: partition}
	var (
		idx     []byte
		created int64
	)
	if err := r.Scan(&sg.BaseOffset, &sg.EndOffset, &sg.ObjectKey, &sg.Position, &sg.Size, &sg.Epoch,
		&sg.MaxTimestamp, &idx, &created); err != nil {
		return meta.Segment{}, err
	}
	sg.CreatedAt = fromMicros(created)
	var err error
	if sg.Index, err = metasql.DecodeIndex(idx); err != nil {
		return meta.Segment{}, fmt.Errorf("segment %s: %w", sg.ObjectKey, err)
	}
	return sg, nil
}

// Segments implements meta.Store.
func (s *Store) Segments(ctx context.Context, id meta.TopicID, partition int32, from int64, limit int) ([]meta.Segment, error) {
	rows, err := s.r.QueryContext(ctx, qSegments, id[:], partition, from, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("segments of %s/%d from %d: %w", id, partition, from, err)
	}
	segs, err := collect(rows, func(r *sql.Rows) (meta.Segment, error) { return scanSegment(r, id, partition) })
	if err != nil {
		return nil, fmt.Errorf("segments of %s/%d from %d: %w", id, partition, from, err)
	}
	return segs, nil
}

// SegmentByTimestamp implements meta.Store.
func (s *Store) SegmentByTimestamp(ctx context.Context, id meta.TopicID, partition int32, ts int64) (meta.Segment, error) {
	sg, err := scanSegment(s.r.QueryRowContext(ctx, qSegmentByTimestamp, id[:], partition, ts), id, partition)
	if errors.Is(err, sql.ErrNoRows) {
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
	err := s.write(ctx, func(tx *sql.Tx, _ int64) error {
		err := tx.QueryRowContext(ctx, qAdvanceLogStart, id[:], partition, offset).Scan(&start)
		if errors.Is(err, sql.ErrNoRows) {
			return meta.ErrNotFound
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, qDropSegmentsBelow, id[:], partition, start)
		if err != nil {
			return err
		}
		var freed int64
		keys, err = collect(rows, func(r *sql.Rows) (string, error) {
			var (
				k    string
				size int64
			)
			err := r.Scan(&k, &size)
			freed += size
			return k, err
		})
		if err != nil {
			return err
		}
		if keys, err = unreferenced(ctx, tx, keys); err != nil {
			return err
		}
		if freed == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, qSubtractBytes, id[:], partition, freed)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("advance log start of %s/%d to %d: %w", id, partition, offset, err)
	}
	return start, keys, nil
}

// unreferenced returns the distinct keys of deleted segments whose objects
// no segment references any more. Writes are serialized, so unlike
// pgmeta's no concurrent deletion can make it miss one.
func unreferenced(ctx context.Context, tx *sql.Tx, keys []string) ([]string, error) {
	keys = metasql.UniqueKeys(keys)
	if len(keys) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("find unreferenced objects: %w", err)
	}
	rows, err := tx.QueryContext(ctx, qUnreferencedKeys, string(list))
	if err != nil {
		return nil, fmt.Errorf("find unreferenced objects: %w", err)
	}
	free, err := collect(rows, scanString)
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
	list, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("committed keys: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, qCommittedKeys, string(list))
	if err != nil {
		return nil, fmt.Errorf("committed keys (%d asked): %w", len(keys), err)
	}
	found, err := collect(rows, scanString)
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
	rows, err := s.r.QueryContext(ctx, qProducers, id[:], partition)
	if err != nil {
		return nil, fmt.Errorf("producers of %s/%d: %w", id, partition, err)
	}
	ps, err := collect(rows, func(r *sql.Rows) (meta.ProducerState, error) {
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
	err := s.write(ctx, func(tx *sql.Tx, _ int64) error {
		return tx.QueryRowContext(ctx, qNextProducerID).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("next producer id: %w", err)
	}
	return id, nil
}

// --- leases -----------------------------------------------------------------

func scanLease(r scanner, l *meta.Lease) error {
	var exp int64
	if err := r.Scan(&l.Owner, &l.Epoch, &exp); err != nil {
		return err
	}
	l.ExpiresAt = fromMicros(exp)
	return nil
}

// AcquireLease implements meta.Store with the single upsert qAcquireLease.
func (s *Store) AcquireLease(ctx context.Context, resource, owner string, ttl time.Duration) (meta.Lease, error) {
	if err := metasql.ValidateLease("acquire lease", resource, owner, ttl); err != nil {
		return meta.Lease{}, err
	}
	l := meta.Lease{Resource: resource}
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		return scanLease(tx.QueryRowContext(ctx, qAcquireLease, resource, owner, now, metasql.Micros(ttl)), &l)
	})
	if errors.Is(err, sql.ErrNoRows) {
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
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		return scanLease(tx.QueryRowContext(ctx, qRenewLease, resource, owner, epoch, now, metasql.Micros(ttl)), &l)
	})
	if errors.Is(err, sql.ErrNoRows) {
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
	var ls []meta.Lease
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		ls = ls[:0] // a retried transaction starts over
		rows, err := tx.QueryContext(ctx, qRenewLeases, owner, now, metasql.Micros(ttl))
		if err != nil {
			return err
		}
		ls, err = collect(rows, func(r *sql.Rows) (meta.Lease, error) {
			var (
				l   meta.Lease
				exp int64
			)
			err := r.Scan(&l.Resource, &l.Owner, &l.Epoch, &exp)
			l.ExpiresAt = fromMicros(exp)
			return l, err
		})
		return err
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
	var n int64
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		res, err := tx.ExecContext(ctx, qReleaseStaleLeases, node, current, now)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release stale leases of %s: %w", node, err)
	}
	return int(n), nil
}

// ReleaseLease implements meta.Store.
func (s *Store) ReleaseLease(ctx context.Context, resource, owner string, epoch int64) error {
	if owner == "" {
		// The vacant marker is owner ''; "releasing" as nobody must not
		// match a vacant row.
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, qReleaseLease, resource, owner, epoch, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s for %s at epoch %d: %w", resource, owner, epoch, err)
	}
	return nil
}

// Leases implements meta.Store.
func (s *Store) Leases(ctx context.Context, prefix string) ([]meta.Lease, error) {
	lo, hi := prefixRange(prefix)
	rows, err := s.r.QueryContext(ctx, qLeases, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("leases %q: %w", prefix, err)
	}
	ls, err := collect(rows, func(r *sql.Rows) (meta.Lease, error) {
		var (
			l   meta.Lease
			exp int64
		)
		err := r.Scan(&l.Resource, &l.Owner, &l.Epoch, &exp)
		l.ExpiresAt = fromMicros(exp)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("leases %q: %w", prefix, err)
	}
	return ls, nil
}

// --- consumer groups --------------------------------------------------------

// CommitOffsets implements meta.Store in one transaction.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []meta.OffsetCommit, fence meta.Fence) error {
	offsets = metasql.DedupeOffsets(offsets)
	if len(offsets) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		if err := checkFence(ctx, tx, fence, now); err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, qCommitOffset)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, o := range offsets {
			if _, err := st.ExecContext(ctx, group, o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata,
				microsOr(o.CommittedAt, now)); err != nil {
				return fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit %d offsets of group %s: %w", len(offsets), group, err)
	}
	return nil
}

// FetchOffsets implements meta.Store.
func (s *Store) FetchOffsets(ctx context.Context, group string, topics []string) ([]meta.OffsetCommit, error) {
	var filter any // NULL: every topic
	if topics != nil {
		b, err := json.Marshal(topics)
		if err != nil {
			return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
		}
		filter = string(b)
	}
	rows, err := s.r.QueryContext(ctx, qFetchOffsets, group, filter)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	os, err := collect(rows, func(r *sql.Rows) (meta.OffsetCommit, error) {
		var (
			o  meta.OffsetCommit
			at int64
		)
		err := r.Scan(&o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata, &at)
		o.CommittedAt = fromMicros(at)
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
	list, err := json.Marshal(partitions)
	if err != nil {
		return fmt.Errorf("delete offsets of group %s topic %s: %w", group, topic, err)
	}
	err = s.write(ctx, func(tx *sql.Tx, _ int64) error {
		_, err := tx.ExecContext(ctx, qDeleteOffsets, group, topic, string(list))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete offsets of group %s topic %s: %w", group, topic, err)
	}
	return nil
}

// SaveGroup implements meta.Store.
func (s *Store) SaveGroup(ctx context.Context, g meta.Group, fence meta.Fence) error {
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		if err := checkFence(ctx, tx, fence, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, qSaveGroup, g.Name, g.ProtocolType, nonNil(g.State), microsOr(g.UpdatedAt, now))
		return err
	})
	if err != nil {
		return fmt.Errorf("save group %s: %w", g.Name, err)
	}
	return nil
}

func scanGroup(r scanner) (meta.Group, error) {
	var (
		g  meta.Group
		at int64
	)
	err := r.Scan(&g.Name, &g.ProtocolType, &g.State, &at)
	g.UpdatedAt = fromMicros(at)
	return g, err
}

// Group implements meta.Store.
func (s *Store) Group(ctx context.Context, name string) (meta.Group, error) {
	g, err := scanGroup(s.r.QueryRowContext(ctx, qGroup, name))
	if errors.Is(err, sql.ErrNoRows) {
		return meta.Group{}, fmt.Errorf("group %s: %w", name, meta.ErrNotFound)
	}
	if err != nil {
		return meta.Group{}, fmt.Errorf("group %s: %w", name, err)
	}
	return g, nil
}

// ListGroups implements meta.Store.
func (s *Store) ListGroups(ctx context.Context) ([]meta.Group, error) {
	rows, err := s.r.QueryContext(ctx, qListGroups)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	gs, err := collect(rows, func(r *sql.Rows) (meta.Group, error) { return scanGroup(r) })
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return gs, nil
}

// DeleteGroup implements meta.Store.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	err := s.write(ctx, func(tx *sql.Tx, _ int64) error {
		var total int64
		for _, q := range []string{qDeleteGroup, qDeleteGroupOffsets} {
			res, err := tx.ExecContext(ctx, q, name)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		if total == 0 {
			return meta.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete group %s: %w", name, err)
	}
	return nil
}

// --- nodes ------------------------------------------------------------------

// Heartbeat implements meta.Store.
func (s *Store) Heartbeat(ctx context.Context, n meta.Node) error {
	if n.ID == "" {
		return fmt.Errorf("heartbeat: empty node id: %w", meta.ErrInvalid)
	}
	var started any // NULL: keep the stored start, or stamp now
	if !n.StartedAt.IsZero() {
		started = n.StartedAt.UnixMicro()
	}
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, qHeartbeat, n.ID, n.KafkaAddr, n.WALAddr, n.RemoteAddr, started, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("heartbeat of node %s: %w", n.ID, err)
	}
	return nil
}

// LiveNodes implements meta.Store.
func (s *Store) LiveNodes(ctx context.Context, within time.Duration) ([]meta.Node, error) {
	rows, err := s.r.QueryContext(ctx, qLiveNodes, time.Now().UnixMicro(), metasql.Micros(within))
	if err != nil {
		return nil, fmt.Errorf("live nodes within %v: %w", within, err)
	}
	ns, err := collect(rows, func(r *sql.Rows) (meta.Node, error) {
		var (
			n           meta.Node
			started, hb int64
		)
		err := r.Scan(&n.ID, &n.KafkaAddr, &n.WALAddr, &n.RemoteAddr, &started, &hb)
		n.StartedAt, n.HeartbeatAt = fromMicros(started), fromMicros(hb)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("live nodes within %v: %w", within, err)
	}
	return ns, nil
}

// RemoveNode implements meta.Store.
func (s *Store) RemoveNode(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *sql.Tx, _ int64) error {
		_, err := tx.ExecContext(ctx, qRemoveNode, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove node %s: %w", id, err)
	}
	return nil
}

// checkFence fails with ErrFenced unless fence holds at now. The store has
// one writer, so nothing can take the lease between this check and the
// transaction's commit.
func checkFence(ctx context.Context, tx *sql.Tx, fence meta.Fence, now int64) error {
	if fence.IsZero() {
		return nil
	}
	var held int
	if err := tx.QueryRowContext(ctx, qLeaseOK, fence.Resource, fence.Owner, fence.Epoch, now).Scan(&held); err != nil {
		return fmt.Errorf("check lease %s: %w", fence.Resource, err)
	}
	if held == 0 {
		return fmt.Errorf("%w: %s not held by %s at epoch %d", meta.ErrFenced, fence.Resource, fence.Owner, fence.Epoch)
	}
	return nil
}
