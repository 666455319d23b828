package litemeta

import (
	"context"
	"path/filepath"
	"testing"
)

// TestPragmas checks the connection settings durability and integrity rest
// on (they are DSN parameters, and a typo there would fail silently) and
// that the migrations were recorded.
func TestPragmas(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		db     string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "foreign_keys", "1"},
		{"writer", "busy_timeout", "10000"},
		{"reader", "query_only", "1"},
		{"reader", "busy_timeout", "10000"},
	} {
		db := s.w
		if c.db == "reader" {
			db = s.r
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", c.db, c.pragma, err)
		}
		if got != c.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", c.db, c.pragma, got, c.want)
		}
	}
	var versions, top int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&versions, &top); err != nil {
		t.Fatal(err)
	}
	if versions < 1 || versions != top {
		t.Errorf("schema_migrations holds %d versions, the highest %d", versions, top)
	}
	// A write through the read pool is refused rather than becoming a
	// second writer.
	if _, err := s.r.ExecContext(ctx, `DELETE FROM nodes`); err == nil {
		t.Error("the read pool accepted a write")
	}
}
