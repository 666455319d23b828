package litemeta

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/internal/metasql"
	"github.com/morax-dev/morax/persistence/segment"
)

// TestMigrateFrom0001 builds a database file with migration 0001 only, as
// a node of the first schema left it, stores a segment in it, and checks
// that Open migrates it (rebuilding the segments table) without losing the
// row: the segment reads back at position 0, the partition's other rows
// and foreign keys survive, and the object may then hold more segments.
func TestMigrateFrom0001(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	ms, err := metasql.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d migrations, expected at least 2", len(ms))
	}
	// The writer's parameters, so the old schema is built with foreign
	// keys on, as Open would have.
	w, err := sql.Open("sqlite", path+"?"+writerParams)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	if err := migrate(ctx, w, ms[:1]); err != nil {
		w.Close()
		t.Fatal(err)
	}
	id := meta.TopicID{7, 7, 7}
	idx := segment.EncodeIndex([]segment.IndexEntry{{Offset: 0, Position: 0}, {Offset: 3, Position: 40}})
	now := time.Now().UnixMicro()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO topics (id, name, kind, partitions, created_at) VALUES (?1, 'old', 'kafka', 1, ?2)`, []any{id[:], now}},
		{`INSERT INTO partitions (topic_id, partition, next_offset, bytes) VALUES (?1, 0, 5, 100)`, []any{id[:]}},
		{`INSERT INTO leases (resource, owner, epoch, expires_at) VALUES (?1, 'n1', 1, ?2)`,
			[]any{meta.PartitionResource(id, 0), now + time.Hour.Microseconds()}},
		{`INSERT INTO producers (topic_id, partition, producer_id, producer_epoch, batches, last_update) VALUES (?1, 0, 9, 0, ?2, 1)`,
			[]any{id[:], metasql.EncodeBatches(nil)}},
		{`INSERT INTO segments (topic_id, partition, base_offset, end_offset, object_key, size, epoch, max_timestamp, offset_index, created_at)
		  VALUES (?1, 0, 0, 5, 'old-object', 100, 1, 1234, ?2, ?3)`, []any{id[:], idx, now}},
	} {
		if _, err := w.ExecContext(ctx, q.sql, q.args...); err != nil {
			w.Close()
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var versions int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&versions); err != nil || versions != len(ms) {
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
		sg.MaxTimestamp != 1234 || len(sg.Index) != 2 || sg.Index[1].Position != 40 || sg.CreatedAt.UnixMicro() != now {
		t.Fatalf("segment after migrating: %+v", sg)
	}
	if ps, err := s.Producers(ctx, id, 0); err != nil || len(ps) != 1 {
		t.Fatalf("producers after migrating: %+v, %v", ps, err)
	}
	// The rebuilt table keeps its end-offset index and foreign key.
	for _, q := range []string{
		`SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'segments_end_offset'`,
		`SELECT count(*) FROM pragma_foreign_key_list('segments') WHERE "table" = 'partitions'`,
	} {
		var n int
		if err := s.r.QueryRowContext(ctx, q).Scan(&n); err != nil || n == 0 {
			t.Fatalf("%s: %d, %v", q, n, err)
		}
	}
	if rows, err := s.r.QueryContext(ctx, `PRAGMA foreign_key_check`); err != nil {
		t.Fatal(err)
	} else {
		bad := rows.Next()
		rows.Close()
		if bad {
			t.Fatal("foreign key violations after migrating")
		}
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
	// Deleting the topic cascades through the rebuilt table's foreign key
	// and frees the object once.
	keys, err := s.DeleteTopic(ctx, "old")
	if err != nil || len(keys) != 1 || keys[0] != "old-object" {
		t.Fatalf("delete topic: %q, %v", keys, err)
	}
}
