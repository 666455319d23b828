// Package litemeta is the embedded implementation of meta.Store, on SQLite
// (modernc.org/sqlite, pure Go), for the zero-config single node: no
// PostgreSQL to run, one file on local disk.
//
// It keeps the same guarantees as pgmeta by a simpler route: every write
// goes through one connection inside BEGIN IMMEDIATE, so writes are
// serialized and each check-then-write (the lease and offset checks of
// CommitFlushes, the lease upsert) is atomic. Reads use a separate pool of
// read-only connections, which WAL mode lets run alongside the writer.
//
// Flush commits from many partitions are group-committed (see CommitFlushes)
// so they share an fsync, the way PostgreSQL's own group commit lets
// concurrent pgmeta commits share one.
package litemeta

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/internal/metasql"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// writerParams configures the writer connection:
//   - WAL lets readers run while a write is in progress;
//   - synchronous=FULL fsyncs the WAL at every commit, because the broker
//     acknowledges a produce as soon as CommitFlushes returns (invariant 1);
//     NORMAL would survive a process crash but not a power loss;
//   - foreign keys make deletes cascade as in PostgreSQL;
//   - _txlock=immediate makes BEGIN take the write lock at once, so a
//     transaction never fails half-way when upgrading from a read lock;
//   - the busy timeout only matters when another process holds the file's
//     lock: within this process the one writer connection serializes
//     writes in database/sql's queue.
const writerParams = "_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate"

// readerParams configures the read pool: query_only makes a write through
// it an error rather than a second, unserialized writer.
const readerParams = "_busy_timeout=10000&_query_only=1"

// Store is a meta.Store on a SQLite database file. It is safe for
// concurrent use.
type Store struct {
	w *sql.DB // exactly one connection: every write
	r *sql.DB // read-only connections

	// The CommitFlushes statements, prepared once on the writer connection
	// since they run on every flush.
	advance, insertSegment, upsertProducer *sql.Stmt
	savepoint, rollbackTo, release         *sql.Stmt

	// Group commit (see CommitFlushes): callers hand their call to the
	// committer goroutine through commits.
	commits       chan *commitReq
	stop          chan struct{} // closed by Close
	committerDone chan struct{} // closed when the committer has exited
	closeOnce     sync.Once
	closeErr      error
}

var _ meta.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path and applies
// any schema migrations it has not seen yet.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		// The driver reads everything after '?' as parameters.
		return nil, fmt.Errorf("litemeta: open %q: path must be non-empty and contain no '?': %w", path, meta.ErrInvalid)
	}
	w, err := sql.Open("sqlite", path+"?"+writerParams)
	if err != nil {
		return nil, fmt.Errorf("litemeta: open %s: %w", path, err)
	}
	// SQLite has one writer at a time; one connection makes that explicit
	// and queues writers in database/sql instead of in busy retries.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, commits: make(chan *commitReq), stop: make(chan struct{}), committerDone: make(chan struct{})}
	go s.committer()
	ms, err := metasql.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("litemeta: open %s: %w", path, err)
	}
	if err := migrate(ctx, w, ms); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("litemeta: open %s: %w", path, err)
	}
	if err := s.prepare(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("litemeta: open %s: %w", path, err)
	}
	// Readers open after the migration, so the file is already in WAL mode.
	r, err := sql.Open("sqlite", path+"?"+readerParams)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("litemeta: open %s for reading: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("litemeta: open %s for reading: %w", path, err)
	}
	return s, nil
}

// migrate applies the migrations of ms (Open passes every embedded one;
// tests pass a prefix to build an old schema) that schema_migrations does
// not list, on the writer connection w in one BEGIN IMMEDIATE transaction,
// which also serializes two processes opening the same fresh file.
func migrate(ctx context.Context, w *sql.DB, ms []metasql.Migration) error {
	return write(ctx, w, func(tx *sql.Tx, now int64) error {
		if _, err := tx.ExecContext(ctx, qCreateMigrations); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		applied, err := collect(rows, func(r *sql.Rows) (int, error) {
			var v int
			err := r.Scan(&v)
			return v, err
		})
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		pending, err := metasql.Pending(ms, applied)
		if err != nil {
			return err
		}
		for _, m := range pending {
			// The driver runs every statement of a multi-statement string.
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)`,
				m.Version, m.Name, now); err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

func (s *Store) prepare(ctx context.Context) error {
	var err error
	if s.advance, err = s.w.PrepareContext(ctx, qCommitAdvance); err != nil {
		return fmt.Errorf("prepare commit: %w", err)
	}
	if s.insertSegment, err = s.w.PrepareContext(ctx, qCommitSegment); err != nil {
		return fmt.Errorf("prepare commit: %w", err)
	}
	if s.upsertProducer, err = s.w.PrepareContext(ctx, qCommitProducer); err != nil {
		return fmt.Errorf("prepare commit: %w", err)
	}
	if s.savepoint, err = s.w.PrepareContext(ctx, `SAVEPOINT commit_call`); err != nil {
		return fmt.Errorf("prepare commit: %w", err)
	}
	if s.rollbackTo, err = s.w.PrepareContext(ctx, `ROLLBACK TO commit_call`); err != nil {
		return fmt.Errorf("prepare commit: %w", err)
	}
	if s.release, err = s.w.PrepareContext(ctx, `RELEASE commit_call`); err != nil {
		return fmt.Errorf("prepare commit: %w", err)
	}
	return nil
}

// Close stops the committer (commits it has already taken are finished and
// answered; later ones fail), then closes the statements and both
// connection pools. Calling it again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.committerDone
		var errs []error
		for _, st := range []*sql.Stmt{s.advance, s.insertSegment, s.upsertProducer, s.savepoint, s.rollbackTo, s.release} {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.w.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("litemeta: close: %w", err)
		}
	})
	return s.closeErr
}

// write runs fn in a write transaction. now is read after BEGIN IMMEDIATE
// has taken the write lock, so every lease and heartbeat time is judged at
// the moment the write really happens, not when it started waiting.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx, now int64) error) error {
	return write(ctx, s.w, fn)
}

// write is Store.write on the writer connection w.
func write(ctx context.Context, w *sql.DB, fn func(tx *sql.Tx, now int64) error) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx, time.Now().UnixMicro()); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// collect reads every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation. The
// driver enables extended result codes, which tell the two apart from
// other constraint failures.
func isUnique(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// microsOr returns t in microseconds, or now when t is zero.
func microsOr(t time.Time, now int64) int64 {
	if t.IsZero() {
		return now
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of microsOr's encoding.
func fromMicros(us int64) time.Time {
	return time.UnixMicro(us)
}

// topicID converts a topics.id blob.
func topicID(b []byte) (meta.TopicID, error) {
	var id meta.TopicID
	if len(b) != len(id) {
		return id, fmt.Errorf("topic id of %d bytes", len(b))
	}
	copy(id[:], b)
	return id, nil
}

// sqlLimit maps "limit <= 0 means all" to SQLite's LIMIT -1.
func sqlLimit(limit int) int64 {
	if limit <= 0 {
		return -1
	}
	return int64(limit)
}

// prefixRange returns the bounds of a prefix match for the
// "x >= ?lo AND (?hi IS NULL OR x < ?hi)" idiom.
func prefixRange(prefix string) (lo string, hi any) {
	if end, ok := metasql.PrefixEnd(prefix); ok {
		return prefix, end
	}
	return prefix, nil
}

// nonNil turns a nil byte slice into an empty one: the driver binds nil as
// NULL, and the BLOB columns are NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
