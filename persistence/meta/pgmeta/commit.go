package pgmeta

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/internal/metasql"
)

// CommitFlushes implements meta.Store.
//
// A single flush is one qCommitFlush statement, its own transaction.
// Several are split into waves, the k-th flush of every partition in wave
// k, each wave one qCommitWave statement that checks and applies all its
// flushes at once: a node-level flush names each partition once, so it is
// one wave and costs about one statement however many partitions it
// carries. The waves are sent in order as one pgx batch: pgx pipelines
// them behind a single Sync message, and PostgreSQL runs everything before
// a Sync as one implicit transaction, committed at the Sync only if no
// statement failed and rolled back whole otherwise. So a call costs one
// round trip and one commit (one WAL flush), a failed check stores nothing
// for its flush alone, a partition's later flush is checked against what
// its earlier one did, and any statement error (a reused object slice, a
// lost connection) leaves nothing behind.
//
// Lease rows are locked in resource order, all of the call's in the first
// wave (see qCommitWave), the order RenewLeases and DeleteTopic use, so
// calls sharing partitions never deadlock.
func (s *Store) CommitFlushes(ctx context.Context, cs []meta.FlushCommit) ([]error, error) {
	if err := metasql.ValidateCommits(cs); err != nil {
		return nil, err
	}
	results := make([]error, len(cs))
	if len(cs) == 1 {
		args, err := commitArgs(meta.PartitionResource(cs[0].Segment.TopicID, cs[0].Segment.Partition), cs[0])
		if err != nil {
			return nil, err
		}
		var o commitOutcome
		if err := s.pool.QueryRow(ctx, qCommitFlush, args...).Scan(&o.leaseOK, &o.advanced, &o.next); err != nil {
			return nil, flushFailed(cs, 0, err)
		}
		results[0] = o.result(cs[0])
		return results, nil
	}
	waves, err := commitWaves(cs)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(waves))}
	for i := range waves {
		b.Queue(qCommitWave, waves[i].args()...)
	}
	br := s.pool.SendBatch(ctx, b)
	for range waves {
		if err := readWave(br, cs, results); err != nil {
			_ = br.Close() // reports err again; it also returns the connection
			return nil, waveFailed(len(cs), err)
		}
	}
	// The results so far were read before the Sync: only a clean Close
	// (the commit's ReadyForQuery) means they are durable.
	if err := br.Close(); err != nil {
		return nil, waveFailed(len(cs), err)
	}
	return results, nil
}

// commitWave is one qCommitWave statement's arguments: a column per field
// of its flushes, and its producers flattened, each with its flush's ordinal.
type commitWave struct {
	lockResources, lockOwners []string
	lockEpochs                []int64

	ords                           []int32
	resources, owners, keys        []string
	epochs, bases, ends, positions []int64
	sizes, maxTimestamps           []int64
	topics                         []pgtype.UUID
	partitions                     []int32
	indexes                        [][]byte
	created                        []pgtype.Timestamptz
	prodOrds                       []int32
	prodIDs, prodUpdated           []int64
	prodEpochs                     []int16
	prodBatches                    [][]byte
}

func (w *commitWave) args() []any {
	return []any{
		w.lockResources, w.lockOwners, w.lockEpochs,
		w.ords, w.resources, w.owners, w.epochs, w.topics, w.partitions,
		w.bases, w.ends, w.keys, w.positions, w.sizes,
		w.maxTimestamps, w.indexes, w.created,
		w.prodOrds, w.prodIDs, w.prodEpochs, w.prodBatches, w.prodUpdated,
	}
}

// commitWaves splits cs into waves, the k-th flush of each partition in
// wave k, keeping each partition's flushes in the order of cs.
func commitWaves(cs []meta.FlushCommit) ([]commitWave, error) {
	type lockKey struct {
		resource, owner string
		epoch           int64
	}
	seen := make(map[string]int, len(cs))
	locks := make(map[lockKey]struct{}, len(cs))
	waves := make([]commitWave, 1)
	for i, c := range cs {
		seg := c.Segment
		resource := meta.PartitionResource(seg.TopicID, seg.Partition)
		k := seen[resource]
		seen[resource] = k + 1
		if k == len(waves) {
			waves = append(waves, commitWave{})
		}
		idx, err := metasql.EncodeIndex(seg)
		if err != nil {
			return nil, err
		}
		w := &waves[k]
		w.ords = append(w.ords, int32(i))
		w.resources = append(w.resources, resource)
		w.owners = append(w.owners, c.Owner)
		w.epochs = append(w.epochs, c.LeaseEpoch)
		w.topics = append(w.topics, pgID(seg.TopicID))
		w.partitions = append(w.partitions, seg.Partition)
		w.bases = append(w.bases, seg.BaseOffset)
		w.ends = append(w.ends, seg.EndOffset)
		w.keys = append(w.keys, seg.ObjectKey)
		w.positions = append(w.positions, seg.Position)
		w.sizes = append(w.sizes, seg.Size)
		w.maxTimestamps = append(w.maxTimestamps, seg.MaxTimestamp)
		w.indexes = append(w.indexes, idx)
		w.created = append(w.created, nullTime(seg.CreatedAt))
		for _, p := range metasql.DedupeProducers(c.Producers) {
			w.prodOrds = append(w.prodOrds, int32(i))
			w.prodIDs = append(w.prodIDs, p.ProducerID)
			w.prodEpochs = append(w.prodEpochs, p.ProducerEpoch)
			w.prodBatches = append(w.prodBatches, metasql.EncodeBatches(p.Batches))
			w.prodUpdated = append(w.prodUpdated, p.LastUpdate)
		}
		if k > 0 {
			lk := lockKey{resource, c.Owner, c.LeaseEpoch}
			if _, ok := locks[lk]; !ok {
				locks[lk] = struct{}{}
				w0 := &waves[0]
				w0.lockResources = append(w0.lockResources, resource)
				w0.lockOwners = append(w0.lockOwners, c.Owner)
				w0.lockEpochs = append(w0.lockEpochs, c.LeaseEpoch)
			}
		}
	}
	// Every wave locks its own flushes' leases; the first also those of
	// the later waves' (added above), so they are taken in resource order
	// with the rest rather than after them.
	for k := range waves {
		w := &waves[k]
		w.lockResources = append(w.lockResources, w.resources...)
		w.lockOwners = append(w.lockOwners, w.owners...)
		w.lockEpochs = append(w.lockEpochs, w.epochs...)
	}
	return waves, nil
}

// readWave reads one qCommitWave statement's rows into results.
func readWave(br pgx.BatchResults, cs []meta.FlushCommit, results []error) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		ord int32
		o   commitOutcome
	)
	for rows.Next() {
		o.next = nil
		if err := rows.Scan(&ord, &o.leaseOK, &o.advanced, &o.next); err != nil {
			return err
		}
		results[ord] = o.result(cs[ord])
	}
	return rows.Err()
}

// commitArgs are qCommitFlush's arguments for c.
func commitArgs(resource string, c meta.FlushCommit) ([]any, error) {
	seg := c.Segment
	idx, err := metasql.EncodeIndex(seg)
	if err != nil {
		return nil, err
	}
	ps := metasql.DedupeProducers(c.Producers)
	ids := make([]int64, len(ps))
	epochs := make([]int16, len(ps))
	batches := make([][]byte, len(ps))
	updated := make([]int64, len(ps))
	for i, p := range ps {
		ids[i], epochs[i], batches[i], updated[i] = p.ProducerID, p.ProducerEpoch, metasql.EncodeBatches(p.Batches), p.LastUpdate
	}
	return []any{
		resource, c.Owner, c.LeaseEpoch,
		pgID(seg.TopicID), seg.Partition, seg.BaseOffset, seg.EndOffset,
		seg.ObjectKey, seg.Size, seg.MaxTimestamp, idx, nullTime(seg.CreatedAt),
		ids, epochs, batches, updated, seg.Position,
	}, nil
}

// commitOutcome is what qCommitFlush reports about one flush.
type commitOutcome struct {
	leaseOK, advanced bool
	next              *int64 // nil when the partition does not exist
}

// result is the flush's entry in CommitFlushes' results.
func (o commitOutcome) result(c meta.FlushCommit) error {
	switch {
	case !o.leaseOK:
		return commitErr(c, meta.ErrFenced)
	case o.next == nil:
		return commitErr(c, fmt.Errorf("partition: %w", meta.ErrNotFound))
	case !o.advanced:
		return commitErr(c, fmt.Errorf("partition next offset is %d: %w", *o.next, meta.ErrOffsetMismatch))
	}
	return nil
}

// flushFailed is the error of a CommitFlushes call whose statement for
// cs[i] failed. A reused object slice is named, since it is a broker bug
// rather than a database problem; either way the transaction rolled back.
func flushFailed(cs []meta.FlushCommit, i int, err error) error {
	if isUnique(err, objectSliceConstraint) {
		seg := cs[i].Segment
		err = fmt.Errorf("object %s position %d is already committed, nothing stored: %w", seg.ObjectKey, seg.Position, err)
	}
	err = commitErr(cs[i], err)
	if len(cs) > 1 {
		err = fmt.Errorf("commit %d flushes: %w", len(cs), err)
	}
	return err
}

// waveFailed is the error of a CommitFlushes call whose wave statement
// failed; nothing of the call is stored. A reused object slice is a broker
// bug rather than a database problem, and PostgreSQL's detail names it.
func waveFailed(n int, err error) error {
	var pe *pgconn.PgError
	if isUnique(err, objectSliceConstraint) && errors.As(err, &pe) {
		return fmt.Errorf("commit %d flushes: object slice already committed (%s), nothing stored: %w", n, pe.Detail, err)
	}
	return fmt.Errorf("commit %d flushes: %w", n, err)
}

// commitErr gives a flush's error its context. It is built only on
// failure, to keep formatting off the hot path.
func commitErr(c meta.FlushCommit, err error) error {
	seg := c.Segment
	return fmt.Errorf("commit flush %s/%d [%d, %d) epoch %d owner %s: %w",
		seg.TopicID, seg.Partition, seg.BaseOffset, seg.EndOffset, c.LeaseEpoch, c.Owner, err)
}
