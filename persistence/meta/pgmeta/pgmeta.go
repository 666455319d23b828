// Package pgmeta is the PostgreSQL implementation of meta.Store, for
// clusters: every node of a cluster opens the same database, and the
// database (its row locks and its clock) is what keeps one writer per
// partition.
//
// The schema lives in numbered migrations embedded from migrations/*.sql
// and is brought up to date by Open.
package pgmeta

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/internal/metasql"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey is the pg_advisory_xact_lock key that serializes schema
// migrations between nodes starting at the same time. It is an arbitrary
// constant ("morax_m1" in ASCII) that no other lock in the schema uses.
const migrationLockKey int64 = 0x6d6f7261785f6d31

// defaultMaxConns is the pool size when the URL does not set
// pool_max_conns. pgxpool's own default (max(4, CPUs)) would cap the number
// of partitions that can commit a flush at once; commits are short and
// PostgreSQL groups their fsyncs, so more concurrent commits are cheaper
// than queueing them in the pool.
const defaultMaxConns = 16

// uniqueViolation is PostgreSQL's SQLSTATE for a unique constraint failure.
const uniqueViolation = "23505"

// objectSliceConstraint is the name migration 0002 gives the unique
// constraint on segments (object_key, object_pos), so a reused slice of an
// object can be reported as such.
const objectSliceConstraint = "segments_object_key_pos_key"

const qCreateMigrationsTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// Option adjusts how Open connects.
type Option func(*options)

type options struct {
	configure []func(*pgxpool.Config)
}

// WithPoolConfig lets the caller adjust the pgxpool configuration parsed
// from the URL before the pool is created: pool sizes, timeouts, or
// DefaultQueryExecMode when PostgreSQL is reached through a transaction
// pooler that cannot keep prepared statements.
func WithPoolConfig(fn func(*pgxpool.Config)) Option {
	return func(o *options) { o.configure = append(o.configure, fn) }
}

// Store is a meta.Store on a PostgreSQL database. It is safe for concurrent
// use.
type Store struct {
	pool *pgxpool.Pool
}

var _ meta.Store = (*Store)(nil)

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// keyword/value DSN, including pgxpool's pool_* settings) and applies any
// schema migrations it has not seen yet. Several nodes may Open the same
// database at once: migrations run under an advisory lock.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: parse database url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	for _, fn := range o.configure {
		fn(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgmeta: connect: %w", err)
	}
	ms, err := metasql.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgmeta: %w", err)
	}
	if err := migrate(ctx, pool, ms); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// migrate applies the migrations of ms (Open passes every embedded one;
// tests pass a prefix to build an old schema) that schema_migrations does
// not list, all in one transaction: a node either sees the old schema or
// the whole new one. The advisory lock is taken first, before even
// creating schema_migrations, because concurrent CREATE TABLE IF NOT EXISTS
// can itself fail on a fresh database.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []metasql.Migration) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, qCreateMigrationsTable); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		pending, err := metasql.Pending(ms, applied)
		if err != nil {
			return err
		}
		for _, m := range pending {
			// No arguments: pgx sends this with the simple protocol, which
			// accepts a file of several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgmeta: migrate: %w", err)
	}
	return nil
}

// Close closes every connection of the pool. It is safe to call twice.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// pgID converts a topic id to the pgx uuid value.
func pgID(id meta.TopicID) pgtype.UUID {
	return pgtype.UUID{Bytes: id, Valid: true}
}

// nullTime makes a zero time NULL, so COALESCE($n, now()) stamps it with the
// database clock.
func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// isUnique reports whether err is a unique constraint violation, optionally
// of one named constraint.
func isUnique(err error, constraint string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != uniqueViolation {
		return false
	}
	return constraint == "" || pe.ConstraintName == constraint
}

// nonNil turns a nil byte slice into an empty one: pgx sends nil as NULL,
// and the bytea columns are NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
