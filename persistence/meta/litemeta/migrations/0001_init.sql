-- Morax metadata schema, version 1 (SQLite).
--
-- The same tables and columns as pgmeta's 0001_init.sql, in SQLite's types:
--   uuid        -> BLOB (16 bytes)
--   jsonb       -> TEXT holding JSON
--   bytea       -> BLOB
--   timestamptz -> INTEGER microseconds since the Unix epoch (UTC)
--   SEQUENCE    -> a one-row counter table
-- Tables are STRICT so a wrong type is an error, as in PostgreSQL. Text
-- compares with SQLite's BINARY collation, the byte order pgmeta gets from
-- COLLATE "C".

CREATE TABLE topics (
    id         BLOB PRIMARY KEY CHECK (length(id) = 16),
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    partitions INTEGER NOT NULL CHECK (partitions > 0),
    config     TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE partitions (
    topic_id         BLOB NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    partition        INTEGER NOT NULL CHECK (partition >= 0),
    next_offset      INTEGER NOT NULL DEFAULT 0,
    log_start_offset INTEGER NOT NULL DEFAULT 0,
    bytes            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition),
    CHECK (0 <= log_start_offset AND log_start_offset <= next_offset)
) STRICT, WITHOUT ROWID;

-- A lease with owner '' is vacant (released); it keeps its epoch.
CREATE TABLE leases (
    resource   TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE segments (
    topic_id      BLOB NOT NULL,
    partition     INTEGER NOT NULL,
    base_offset   INTEGER NOT NULL,
    end_offset    INTEGER NOT NULL,
    object_key    TEXT NOT NULL UNIQUE,
    size          INTEGER NOT NULL,
    epoch         INTEGER NOT NULL,
    max_timestamp INTEGER NOT NULL,
    offset_index  BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions (topic_id, partition) ON DELETE CASCADE,
    CHECK (end_offset > base_offset)
) STRICT;

-- See pgmeta: contiguous segments order the same by end and base offset.
CREATE UNIQUE INDEX segments_end_offset ON segments (topic_id, partition, end_offset);

CREATE TABLE producers (
    topic_id       BLOB NOT NULL,
    partition      INTEGER NOT NULL,
    producer_id    INTEGER NOT NULL,
    producer_epoch INTEGER NOT NULL,
    batches        BLOB NOT NULL,
    last_update    INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions (topic_id, partition) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- The producer id sequence: one row holding the next id to hand out.
CREATE TABLE producer_ids (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    next_id INTEGER NOT NULL
) STRICT;
INSERT INTO producer_ids (one, next_id) VALUES (1, 1);

CREATE TABLE groups (
    name          TEXT PRIMARY KEY,
    protocol_type TEXT NOT NULL,
    state         BLOB NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE group_offsets (
    group_name       TEXT NOT NULL,
    topic            TEXT NOT NULL,
    partition        INTEGER NOT NULL,
    committed_offset INTEGER NOT NULL,
    leader_epoch     INTEGER NOT NULL,
    metadata         TEXT NOT NULL,
    committed_at     INTEGER NOT NULL,
    PRIMARY KEY (group_name, topic, partition)
) STRICT, WITHOUT ROWID;

CREATE INDEX group_offsets_topic ON group_offsets (topic);

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    kafka_addr   TEXT NOT NULL,
    wal_addr     TEXT NOT NULL,
    remote_addr  TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
) STRICT;
