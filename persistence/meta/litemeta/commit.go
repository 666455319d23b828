package litemeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/internal/metasql"
)

// maxCommitBatch bounds how many flushes the committer gathers into one
// SQLite transaction, so one batch cannot hold the writer for long. A
// single call with more flushes still goes whole: it must be atomic.
const maxCommitBatch = 256

// errClosed is returned by a CommitFlushes made after (or racing) Close.
var errClosed = errors.New("litemeta: store is closed")

// commitReq is one CommitFlushes call waiting for the committer.
type commitReq struct {
	ctx     context.Context
	flushes []pendingFlush
	done    chan commitReply // buffered: the committer never blocks on a reply
}

// commitReply answers a commitReq the way CommitFlushes answers its
// caller: per-flush results, or an error for the whole call.
type commitReply struct {
	results []error
	err     error
}

// pendingFlush is one flush made ready for the committer on the caller's
// goroutine: encoding is done there, in parallel, and the committer only
// runs SQL. It holds no slice of the caller's, which a caller that gave up
// waiting may already be reusing while the committer applies the flush.
type pendingFlush struct {
	c         meta.FlushCommit // Segment.Index and Producers cleared: see idx and producers
	resource  string
	idx       []byte
	producers []producerRow
}

// producerRow is one producer's state as its row stores it.
type producerRow struct {
	id         int64
	epoch      int16
	batches    []byte
	lastUpdate int64
}

// CommitFlushes implements meta.Store.
//
// Calls are group-committed: a single committer goroutine takes every call
// waiting at that moment and applies them in one transaction, each call
// inside its own savepoint, so they share one fsync (with synchronous=FULL
// the fsync is nearly all of a commit's cost) while each call still
// succeeds or fails alone. For the caller it is still exactly one
// transaction: its flushes become durable together, at that transaction's
// COMMIT, or not at all. A call whose ctx is done before the committer
// reaches it is not applied.
func (s *Store) CommitFlushes(ctx context.Context, cs []meta.FlushCommit) ([]error, error) {
	if err := metasql.ValidateCommits(cs); err != nil {
		return nil, err
	}
	r := &commitReq{ctx: ctx, flushes: make([]pendingFlush, len(cs)), done: make(chan commitReply, 1)}
	for i, c := range cs {
		idx, err := metasql.EncodeIndex(c.Segment)
		if err != nil {
			return nil, err
		}
		ps := metasql.DedupeProducers(c.Producers)
		rows := make([]producerRow, len(ps))
		for j, p := range ps {
			rows[j] = producerRow{p.ProducerID, p.ProducerEpoch, metasql.EncodeBatches(p.Batches), p.LastUpdate}
		}
		c.Segment.Index, c.Producers = nil, nil
		r.flushes[i] = pendingFlush{
			c:         c,
			resource:  meta.PartitionResource(c.Segment.TopicID, c.Segment.Partition),
			idx:       nonNil(idx),
			producers: rows,
		}
	}
	select {
	case s.commits <- r:
	case <-ctx.Done():
		return nil, callErr(cs, fmt.Errorf("not applied: %w", ctx.Err()))
	case <-s.stop:
		return nil, callErr(cs, errClosed)
	}
	select {
	case rep := <-r.done:
		if rep.err != nil {
			return nil, callErr(cs, rep.err)
		}
		return rep.results, nil
	case <-ctx.Done():
		// The committer may be applying it right now.
		return nil, callErr(cs, fmt.Errorf("outcome unknown: %w", ctx.Err()))
	}
}

// callErr gives the error of a whole CommitFlushes call its context.
func callErr(cs []meta.FlushCommit, err error) error {
	if len(cs) == 1 {
		return commitErr(cs[0], err)
	}
	return fmt.Errorf("commit %d flushes: %w", len(cs), err)
}

// commitErr gives a flush's error its context. It is built only on
// failure, to keep formatting off the hot path.
func commitErr(c meta.FlushCommit, err error) error {
	seg := c.Segment
	return fmt.Errorf("commit flush %s/%d [%d, %d) epoch %d owner %s: %w",
		seg.TopicID, seg.Partition, seg.BaseOffset, seg.EndOffset, c.LeaseEpoch, c.Owner, err)
}

// committer applies queued calls until Close. The commits channel is
// unbuffered, so the drain below collects exactly the callers blocked in
// CommitFlushes at that moment: a lone call is applied at once, and under
// load a batch grows to however many arrived during the previous fsync.
func (s *Store) committer() {
	defer close(s.committerDone)
	batch := make([]*commitReq, 0, maxCommitBatch)
	for {
		var flushes int
		select {
		case r := <-s.commits:
			batch = append(batch[:0], r)
			flushes = len(r.flushes)
		case <-s.stop:
			return
		}
	drain:
		for flushes < maxCommitBatch {
			select {
			case r := <-s.commits:
				batch = append(batch, r)
				flushes += len(r.flushes)
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
	replies := make([]commitReply, len(batch))
	// The batch is not tied to any one caller's ctx: one caller giving up
	// must not roll back the others.
	ctx := context.Background()
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				replies[i].err = fmt.Errorf("not applied: %w", err)
				continue
			}
			if _, err := tx.StmtContext(ctx, s.savepoint).ExecContext(ctx); err != nil {
				return err
			}
			results, err := s.applyRequest(ctx, tx, r, now)
			if err != nil {
				// The call fails whole: undo the flushes of it that were
				// applied, keep the other calls'.
				if _, err := tx.StmtContext(ctx, s.rollbackTo).ExecContext(ctx); err != nil {
					return err
				}
				replies[i].err = err
			} else {
				replies[i].results = results
			}
			if _, err := tx.StmtContext(ctx, s.release).ExecContext(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	for i, r := range batch {
		if err != nil && replies[i].err == nil {
			// The transaction failed: nothing in it is durable, including
			// the calls it applied and those it never reached.
			replies[i] = commitReply{err: err}
		}
		r.done <- replies[i]
	}
}

// applyRequest applies one call's flushes in order inside the batch
// transaction and returns their results. A flush that fails its checks
// has written nothing (the conditional advance is its first write, and it
// updated no row), so it needs no savepoint of its own; any other error
// fails the call, and the caller rolls back to the call's savepoint.
func (s *Store) applyRequest(ctx context.Context, tx *sql.Tx, r *commitReq, now int64) ([]error, error) {
	results := make([]error, len(r.flushes))
	for i := range r.flushes {
		f := &r.flushes[i]
		res, err := s.applyFlush(ctx, tx, f, now)
		if err != nil {
			if len(r.flushes) > 1 {
				// Name the flush; CommitFlushes names a lone one itself.
				err = commitErr(f.c, err)
			}
			return nil, err
		}
		if res != nil {
			results[i] = commitErr(f.c, res)
		}
	}
	return results, nil
}

// applyFlush runs one flush: the conditional advance, then the segment and
// producer rows. result is why the flush failed its checks (nothing
// written); err is any other failure, after which the call must be undone.
func (s *Store) applyFlush(ctx context.Context, tx *sql.Tx, f *pendingFlush, now int64) (result, err error) {
	c, seg := f.c, f.c.Segment
	res, err := tx.StmtContext(ctx, s.advance).ExecContext(ctx,
		f.resource, c.Owner, c.LeaseEpoch, seg.TopicID[:], seg.Partition, seg.BaseOffset, seg.EndOffset, seg.Size, now)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		return whyNotAdvanced(ctx, tx, f, now)
	}
	_, err = tx.StmtContext(ctx, s.insertSegment).ExecContext(ctx,
		seg.TopicID[:], seg.Partition, seg.BaseOffset, seg.EndOffset, seg.ObjectKey,
		seg.Size, c.LeaseEpoch, seg.MaxTimestamp, f.idx, microsOr(seg.CreatedAt, now), seg.Position)
	if isUnique(err) {
		return nil, fmt.Errorf("object %s position %d is already committed, nothing stored: %w", seg.ObjectKey, seg.Position, err)
	}
	if err != nil {
		return nil, err
	}
	if len(f.producers) > 0 {
		up := tx.StmtContext(ctx, s.upsertProducer)
		for _, p := range f.producers {
			if _, err := up.ExecContext(ctx, seg.TopicID[:], seg.Partition, p.id, p.epoch, p.batches, p.lastUpdate); err != nil {
				return nil, fmt.Errorf("save producer %d: %w", p.id, err)
			}
		}
	}
	return nil, nil
}

// whyNotAdvanced tells a fenced flush from an offset mismatch after the
// conditional advance updated nothing. Fencing is checked first: a stale
// writer must stop, not retry at another offset.
func whyNotAdvanced(ctx context.Context, tx *sql.Tx, f *pendingFlush, now int64) (result, err error) {
	c := f.c
	var held int
	if err := tx.QueryRowContext(ctx, qLeaseOK, f.resource, c.Owner, c.LeaseEpoch, now).Scan(&held); err != nil {
		return nil, err
	}
	if held == 0 {
		return meta.ErrFenced, nil
	}
	var next, start, bytes int64
	err = tx.QueryRowContext(ctx, qPartition, c.Segment.TopicID[:], c.Segment.Partition).Scan(&next, &start, &bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("partition: %w", meta.ErrNotFound), nil
	}
	if err != nil {
		return nil, err
	}
	return fmt.Errorf("partition next offset is %d: %w", next, meta.ErrOffsetMismatch), nil
}
