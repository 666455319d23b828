package litemeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/internal/metasql"
)

// maxCommitBatch bounds how many flush commits share one SQLite transaction,
// so one batch cannot hold the writer for long.
const maxCommitBatch = 256

// errClosed is returned by a CommitFlush made after (or racing) Close.
var errClosed = errors.New("litemeta: store is closed")

// commitReq is one CommitFlush waiting for the committer.
type commitReq struct {
	ctx  context.Context
	c    meta.FlushCommit
	idx  []byte
	ps   []meta.ProducerState
	done chan error // buffered: the committer never blocks on a reply
}

// CommitFlush implements meta.Store.
//
// Commits are group-committed: a single committer goroutine takes every
// commit waiting at that moment and applies them in one transaction, each
// inside its own savepoint, so they share one fsync (with synchronous=FULL
// the fsync is nearly all of a commit's cost) while each still succeeds or
// fails alone. For the caller it is still exactly one transaction: its
// changes become durable together, at that transaction's COMMIT, or not at
// all. A commit whose ctx is done before the committer reaches it is not
// applied.
func (s *Store) CommitFlush(ctx context.Context, c meta.FlushCommit) error {
	if err := metasql.ValidateCommit(c); err != nil {
		return err
	}
	idx, err := metasql.EncodeIndex(c.Segment)
	if err != nil {
		return err
	}
	r := &commitReq{ctx: ctx, c: c, idx: nonNil(idx), ps: metasql.DedupeProducers(c.Producers), done: make(chan error, 1)}
	select {
	case s.commits <- r:
	case <-ctx.Done():
		return commitErr(c, fmt.Errorf("not applied: %w", ctx.Err()))
	case <-s.stop:
		return commitErr(c, errClosed)
	}
	select {
	case err = <-r.done:
	case <-ctx.Done():
		// The committer may be applying it right now.
		return commitErr(c, fmt.Errorf("outcome unknown: %w", ctx.Err()))
	}
	if err != nil {
		return commitErr(c, err)
	}
	return nil
}

// commitErr gives a CommitFlush error its context. It is built only on
// failure, to keep formatting off the hot path.
func commitErr(c meta.FlushCommit, err error) error {
	seg := c.Segment
	return fmt.Errorf("commit flush %s/%d [%d, %d) epoch %d owner %s: %w",
		seg.TopicID, seg.Partition, seg.BaseOffset, seg.EndOffset, c.LeaseEpoch, c.Owner, err)
}

// committer applies queued commits until Close. The commits channel is
// unbuffered, so the drain below collects exactly the callers blocked in
// CommitFlush at that moment: a lone commit is applied at once, and under
// load a batch grows to however many arrived during the previous fsync.
func (s *Store) committer() {
	defer close(s.committerDone)
	batch := make([]*commitReq, 0, maxCommitBatch)
	for {
		select {
		case r := <-s.commits:
			batch = append(batch[:0], r)
		case <-s.stop:
			return
		}
	drain:
		for len(batch) < maxCommitBatch {
			select {
			case r := <-s.commits:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.commitBatch(batch)
		clear(batch) // drop references to answered requests
	}
}

// commitBatch applies batch in one transaction and answers every request.
func (s *Store) commitBatch(batch []*commitReq) {
	errs := make([]error, len(batch))
	applied := make([]bool, len(batch))
	// The batch is not tied to any one caller's ctx: one caller giving up
	// must not roll back the others.
	ctx := context.Background()
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				errs[i] = fmt.Errorf("not applied: %w", err)
				continue
			}
			if _, err := tx.StmtContext(ctx, s.savepoint).ExecContext(ctx); err != nil {
				return err
			}
			if errs[i] = s.applyCommit(ctx, tx, r, now); errs[i] != nil {
				if _, err := tx.StmtContext(ctx, s.rollbackTo).ExecContext(ctx); err != nil {
					return err
				}
			} else {
				applied[i] = true
			}
			if _, err := tx.StmtContext(ctx, s.release).ExecContext(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	for i, r := range batch {
		if err != nil && (applied[i] || errs[i] == nil) {
			// The transaction failed: nothing in it is durable, including
			// the commits it applied and those it never reached.
			errs[i] = err
		}
		r.done <- errs[i]
	}
}

// applyCommit runs one flush commit inside the batch transaction: the
// conditional advance, then the segment and producer rows.
func (s *Store) applyCommit(ctx context.Context, tx *sql.Tx, r *commitReq, now int64) error {
	c, seg := r.c, r.c.Segment
	resource := meta.PartitionResource(seg.TopicID, seg.Partition)
	res, err := tx.StmtContext(ctx, s.advance).ExecContext(ctx,
		resource, c.Owner, c.LeaseEpoch, seg.TopicID[:], seg.Partition, seg.BaseOffset, seg.EndOffset, seg.Size, now)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return whyNotAdvanced(ctx, tx, c, resource, now)
	}
	_, err = tx.StmtContext(ctx, s.insertSegment).ExecContext(ctx,
		seg.TopicID[:], seg.Partition, seg.BaseOffset, seg.EndOffset, seg.ObjectKey,
		seg.Size, c.LeaseEpoch, seg.MaxTimestamp, r.idx, microsOr(seg.CreatedAt, now))
	if isUnique(err) {
		return fmt.Errorf("object key %s is already committed: %w", seg.ObjectKey, err)
	}
	if err != nil {
		return err
	}
	if len(r.ps) > 0 {
		up := tx.StmtContext(ctx, s.upsertProducer)
		for _, p := range r.ps {
			if _, err := up.ExecContext(ctx, seg.TopicID[:], seg.Partition, p.ProducerID, p.ProducerEpoch,
				metasql.EncodeBatches(p.Batches), p.LastUpdate); err != nil {
				return fmt.Errorf("save producer %d: %w", p.ProducerID, err)
			}
		}
	}
	return nil
}

// whyNotAdvanced tells a fenced commit from an offset mismatch after the
// conditional advance updated nothing. Fencing is checked first: a stale
// writer must stop, not retry at another offset.
func whyNotAdvanced(ctx context.Context, tx *sql.Tx, c meta.FlushCommit, resource string, now int64) error {
	var held int
	if err := tx.QueryRowContext(ctx, qLeaseOK, resource, c.Owner, c.LeaseEpoch, now).Scan(&held); err != nil {
		return err
	}
	if held == 0 {
		return meta.ErrFenced
	}
	var next, start, bytes int64
	err := tx.QueryRowContext(ctx, qPartition, c.Segment.TopicID[:], c.Segment.Partition).Scan(&next, &start, &bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("partition: %w", meta.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("partition next offset is %d: %w", next, meta.ErrOffsetMismatch)
}
