package pgmeta

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/internal/metasql"
	"github.com/morax-dev/morax/persistence/segment"
)

// TestMigrateFrom0001 builds a database with migration 0001 only, as a
// node of the first schema left it, stores a segment in it, and checks
// that Open migrates it without losing the row: the segment reads back at
// position 0, and the object it is in may then hold more segments.
func TestMigrateFrom0001(t *testing.T) {
	ctx := context.Background()
	url := itest.PostgresURL(t)
	ms, err := metasql.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d migrations, expected at least 2", len(ms))
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, pool, ms[:1]); err != nil {
		pool.Close()
		t.Fatal(err)
	}
	id := meta.TopicID{7, 7, 7}
	idx := segment.EncodeIndex([]segment.IndexEntry{{Offset: 0, Position: 0}, {Offset: 3, Position: 40}})
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO topics (id, name, kind, partitions) VALUES ($1, 'old', 'kafka', 1)`, []any{pgID(id)}},
		{`INSERT INTO partitions (topic_id, partition, next_offset, bytes) VALUES ($1, 0, 5, 100)`, []any{pgID(id)}},
		{`INSERT INTO leases (resource, owner, epoch, expires_at) VALUES ($1, 'n1', 1, now() + interval '1 hour')`,
			[]any{meta.PartitionResource(id, 0)}},
		{`INSERT INTO segments (topic_id, partition, base_offset, end_offset, object_key, size, epoch, max_timestamp, offset_index)
		  VALUES ($1, 0, 0, 5, 'old-object', 100, 1, 1234, $2)`, []any{pgID(id), idx}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			pool.Close()
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	pool.Close()

	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var versions int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&versions); err != nil || versions != len(ms) {
		t.Fatalf("schema_migrations holds %d versions (%v), want %d", versions, err, len(ms))
	}
	segs, err := s.Segments(ctx, id, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 {
		t.Fatalf("segments after migrating: %+v", segs)
	}
	sg := segs[0]
	if sg.ObjectKey != "old-object" || sg.Position != 0 || sg.Size != 100 || sg.BaseOffset != 0 || sg.EndOffset != 5 ||
		sg.MaxTimestamp != 1234 || len(sg.Index) != 2 || sg.Index[1].Position != 40 || time.Since(sg.CreatedAt) > time.Hour {
		t.Fatalf("segment after migrating: %+v", sg)
	}
	// The old unique constraint on the key alone is gone: the same object
	// takes a segment at another position, but not at the same one.
	next := meta.FlushCommit{LeaseEpoch: 1, Owner: "n1", Segment: meta.Segment{
		TopicID: id, BaseOffset: 5, EndOffset: 6, ObjectKey: "old-object", Position: 100, Size: 1}}
	if err := meta.CommitFlush(ctx, s, next); err != nil {
		t.Fatalf("commit into the migrated object: %v", err)
	}
	again := next
	again.Segment.BaseOffset, again.Segment.EndOffset, again.Segment.Position = 6, 7, 0
	if err := meta.CommitFlush(ctx, s, again); err == nil {
		t.Fatal("commit reusing the migrated segment's slice succeeded")
	}
}
