-- Morax metadata schema, version 2 (SQLite): packed objects. See pgmeta's
-- 0002_segment_position.sql for why: a segment is now the slice
-- [object_pos, object_pos + size) of an object that other segments may
-- share, and the slice's start, not the key, is what must be unique.
--
-- SQLite cannot drop a column's UNIQUE constraint, so the table is rebuilt
-- (https://sqlite.org/lang_altertable.html, "other kinds of table schema
-- changes"). The migration runner applies this inside its write
-- transaction, where PRAGMA foreign_keys cannot be turned off (it is a
-- no-op there), so the steps are chosen to be safe with foreign keys on:
-- segments only references partitions and nothing references segments, so
-- copying its valid rows satisfies the new table's foreign key, and
-- dropping the old table (an implicit DELETE of child rows) cascades
-- nowhere.

CREATE TABLE segments_new (
    topic_id      BLOB NOT NULL,
    partition     INTEGER NOT NULL,
    base_offset   INTEGER NOT NULL,
    end_offset    INTEGER NOT NULL,
    object_key    TEXT NOT NULL,
    object_pos    INTEGER NOT NULL DEFAULT 0 CHECK (object_pos >= 0),
    size          INTEGER NOT NULL,
    epoch         INTEGER NOT NULL,
    max_timestamp INTEGER NOT NULL,
    offset_index  BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset),
    -- Its index leads with object_key, so it also answers "is this object
    -- still referenced?".
    UNIQUE (object_key, object_pos),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions (topic_id, partition) ON DELETE CASCADE,
    CHECK (end_offset > base_offset)
) STRICT;

-- Every existing segment had an object of its own, starting at 0.
INSERT INTO segments_new (topic_id, partition, base_offset, end_offset, object_key, object_pos,
                          size, epoch, max_timestamp, offset_index, created_at)
SELECT topic_id, partition, base_offset, end_offset, object_key, 0,
       size, epoch, max_timestamp, offset_index, created_at
FROM segments;

-- Dropping the table drops its segments_end_offset index with it.
DROP TABLE segments;
ALTER TABLE segments_new RENAME TO segments;
CREATE UNIQUE INDEX segments_end_offset ON segments (topic_id, partition, end_offset);
