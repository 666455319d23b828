-- Morax metadata schema, version 1 (PostgreSQL).
--
-- Names and resources use the "C" collation: listings and prefix matches
-- are then byte-ordered, the same in every database locale and the same as
-- the embedded SQLite store.
--
-- Times are timestamptz set from now(), the database clock, which every
-- node shares; Go clocks are never compared across nodes.

CREATE TABLE topics (
    id         uuid PRIMARY KEY,
    name       text COLLATE "C" NOT NULL UNIQUE,
    kind       text NOT NULL,
    partitions integer NOT NULL CHECK (partitions > 0),
    config     jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per partition, updated by every flush commit. The low fillfactor
-- leaves room on each page so those updates stay HOT (no index writes).
CREATE TABLE partitions (
    topic_id         uuid NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    partition        integer NOT NULL CHECK (partition >= 0),
    next_offset      bigint NOT NULL DEFAULT 0,
    log_start_offset bigint NOT NULL DEFAULT 0,
    bytes            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition),
    CHECK (0 <= log_start_offset AND log_start_offset <= next_offset)
) WITH (fillfactor = 50);

-- A lease with owner '' is vacant (released); it keeps its epoch so the
-- next owner is granted epoch + 1 and a released owner stays fenced.
CREATE TABLE leases (
    resource   text COLLATE "C" PRIMARY KEY,
    owner      text NOT NULL,
    epoch      bigint NOT NULL,
    expires_at timestamptz NOT NULL
) WITH (fillfactor = 50);

CREATE TABLE segments (
    topic_id      uuid NOT NULL,
    partition     integer NOT NULL,
    base_offset   bigint NOT NULL,
    end_offset    bigint NOT NULL,
    object_key    text NOT NULL CONSTRAINT segments_object_key_key UNIQUE,
    size          bigint NOT NULL,
    epoch         bigint NOT NULL,
    max_timestamp bigint NOT NULL,
    offset_index  bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic_id, partition, base_offset),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions (topic_id, partition) ON DELETE CASCADE,
    CHECK (end_offset > base_offset)
);

-- Segments of a partition are contiguous, so ordering by end offset is
-- ordering by base offset; this index answers "segments ending above X"
-- (reads from an offset) without scanning the segments below it.
CREATE UNIQUE INDEX segments_end_offset ON segments (topic_id, partition, end_offset);

CREATE TABLE producers (
    topic_id       uuid NOT NULL,
    partition      integer NOT NULL,
    producer_id    bigint NOT NULL,
    producer_epoch smallint NOT NULL,
    batches        bytea NOT NULL,
    last_update    bigint NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id),
    FOREIGN KEY (topic_id, partition) REFERENCES partitions (topic_id, partition) ON DELETE CASCADE
);

-- Producer ids are handed out by a sequence: unique across nodes without a
-- lock, and never reused even if the allocating transaction rolls back.
CREATE SEQUENCE producer_ids AS bigint START WITH 1;

CREATE TABLE groups (
    name          text COLLATE "C" PRIMARY KEY,
    protocol_type text NOT NULL,
    state         bytea NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Offsets are keyed by topic name, as Kafka commits them. They have no
-- foreign key to groups: a client may commit offsets for a group that has
-- no stored state (manual assignment).
CREATE TABLE group_offsets (
    group_name       text COLLATE "C" NOT NULL,
    topic            text COLLATE "C" NOT NULL,
    partition        integer NOT NULL,
    committed_offset bigint NOT NULL,
    leader_epoch     integer NOT NULL,
    metadata         text NOT NULL,
    committed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, topic, partition)
);

-- DeleteTopic removes a topic's offsets from every group.
CREATE INDEX group_offsets_topic ON group_offsets (topic);

CREATE TABLE nodes (
    id           text COLLATE "C" PRIMARY KEY,
    kafka_addr   text NOT NULL,
    wal_addr     text NOT NULL,
    remote_addr  text NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);
