package litemeta

// The SQL of every Store method, in SQLite's dialect. Tables, columns and
// the shape of each statement follow pgmeta's queries.go; the differences
// are the dialect's:
//   - parameters are ?N, times are INTEGER microseconds and "now" is a
//     parameter taken from the Go clock once the write lock is held (the
//     embedded store is one process on one machine, so that clock is the
//     database clock);
//   - arrays travel as JSON text and are unpacked with json_each;
//   - prefixes are matched as the byte range [prefix, PrefixEnd(prefix)),
//     which SQLite's BINARY collation can answer from an index;
//   - a LIMIT of -1 is no limit.

const topicColumns = `id, name, kind, partitions, config, created_at`

const (
	qCreateTopic = `
INSERT INTO topics (id, name, kind, partitions, config, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)`

	// qInsertPartitions creates partitions [?2, ?3) of topic ?1.
	qInsertPartitions = `
WITH RECURSIVE g (n) AS (SELECT ?2 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < ?3)
INSERT INTO partitions (topic_id, partition)
SELECT ?1, n FROM g WHERE n < ?3`

	// qPartitionCount reads the topics' counts, not the partitions
	// table: one row per topic rather than per partition.
	qPartitionCount = `SELECT COALESCE(SUM(partitions), 0) FROM topics`

	qTopicByName = `SELECT ` + topicColumns + ` FROM topics WHERE name = ?1`
	qTopicByID   = `SELECT ` + topicColumns + ` FROM topics WHERE id = ?1`

	qListTopics = `
SELECT ` + topicColumns + ` FROM topics
WHERE name >= ?1 AND (?2 IS NULL OR name < ?2) AND name > ?3
ORDER BY name
LIMIT ?4`

	qTopicForUpdate = `SELECT id, partitions FROM topics WHERE name = ?1`

	qDeleteLeases     = `DELETE FROM leases WHERE resource IN (SELECT value FROM json_each(?1))`
	qDeleteSegments   = `DELETE FROM segments WHERE topic_id = ?1 RETURNING object_key`
	qDeleteTopic      = `DELETE FROM topics WHERE id = ?1`
	qDeleteTopicOffs  = `DELETE FROM group_offsets WHERE topic = ?1`
	qSetTopicConfig   = `UPDATE topics SET config = ?2 WHERE name = ?1`
	qSetTopicParts    = `UPDATE topics SET partitions = ?2 WHERE id = ?1`
	qPartition        = `SELECT next_offset, log_start_offset, bytes FROM partitions WHERE topic_id = ?1 AND partition = ?2`
	qNextProducerID   = `UPDATE producer_ids SET next_id = next_id + 1 RETURNING next_id - 1`
	qCommittedKeys    = `SELECT k.value FROM json_each(?1) AS k WHERE EXISTS (SELECT 1 FROM segments WHERE object_key = k.value)`
	qProducers        = `SELECT producer_id, producer_epoch, batches, last_update FROM producers WHERE topic_id = ?1 AND partition = ?2 ORDER BY producer_id`
	qLeaseOK          = `SELECT count(*) FROM leases WHERE resource = ?1 AND owner = ?2 AND epoch = ?3 AND expires_at > ?4`
	qCreateMigrations = `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`

	// qUnreferencedKeys: see pgmeta. It runs after the deletion that freed
	// the keys, in the same transaction, and keeps their order.
	qUnreferencedKeys = `
SELECT k.value FROM json_each(?1) AS k
WHERE NOT EXISTS (SELECT 1 FROM segments WHERE object_key = k.value)
ORDER BY k.key`
)

const (
	// qCommitAdvance is the conditional heart of CommitFlushes: it advances
	// the partition only if the writer holds the lease at its epoch,
	// unexpired at ?9, and the base offset is the next offset. Writes are
	// serialized (one writer connection, BEGIN IMMEDIATE), so no other
	// commit or takeover can slip in between this check and COMMIT.
	qCommitAdvance = `
UPDATE partitions SET next_offset = ?7, bytes = bytes + ?8
WHERE topic_id = ?4 AND partition = ?5 AND next_offset = ?6
  AND EXISTS (SELECT 1 FROM leases
              WHERE resource = ?1 AND owner = ?2 AND epoch = ?3 AND expires_at > ?9)`

	qCommitSegment = `
INSERT INTO segments (topic_id, partition, base_offset, end_offset, object_key,
                      size, epoch, max_timestamp, offset_index, created_at, object_pos)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)`

	qCommitProducer = `
INSERT INTO producers (topic_id, partition, producer_id, producer_epoch, batches, last_update)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (topic_id, partition, producer_id) DO UPDATE
SET producer_epoch = excluded.producer_epoch,
    batches = excluded.batches,
    last_update = excluded.last_update`
)

const segmentColumns = `base_offset, end_offset, object_key, object_pos, size, epoch, max_timestamp, offset_index, created_at`

const (
	qSegments = `
SELECT ` + segmentColumns + ` FROM segments
WHERE topic_id = ?1 AND partition = ?2 AND end_offset > ?3
ORDER BY end_offset
LIMIT ?4`

	qSegmentByTimestamp = `
SELECT ` + segmentColumns + ` FROM segments
WHERE topic_id = ?1 AND partition = ?2 AND max_timestamp >= ?3
ORDER BY base_offset
LIMIT 1`

	qAdvanceLogStart = `
UPDATE partitions
SET log_start_offset = max(log_start_offset, min(?3, next_offset))
WHERE topic_id = ?1 AND partition = ?2
RETURNING log_start_offset`

	qDropSegmentsBelow = `
DELETE FROM segments
WHERE topic_id = ?1 AND partition = ?2 AND end_offset <= ?3
RETURNING object_key, size`

	qSubtractBytes = `UPDATE partitions SET bytes = bytes - ?3 WHERE topic_id = ?1 AND partition = ?2`
)

const (
	// qAcquireLease: see pgmeta's qAcquireLease. ?3 is now, ?4 the ttl.
	qAcquireLease = `
INSERT INTO leases AS l (resource, owner, epoch, expires_at)
VALUES (?1, ?2, 1, ?3 + ?4)
ON CONFLICT (resource) DO UPDATE
SET owner = excluded.owner,
    epoch = CASE WHEN l.owner = excluded.owner AND l.expires_at > ?3
                 THEN l.epoch ELSE l.epoch + 1 END,
    expires_at = excluded.expires_at
WHERE l.owner = excluded.owner OR l.owner = '' OR l.expires_at <= ?3
RETURNING owner, epoch, expires_at`

	qRenewLease = `
UPDATE leases SET expires_at = ?4 + ?5
WHERE resource = ?1 AND owner = ?2 AND epoch = ?3 AND expires_at > ?4
RETURNING owner, epoch, expires_at`

	qRenewLeases = `
UPDATE leases SET expires_at = ?2 + ?3
WHERE owner = ?1 AND expires_at > ?2
RETURNING resource, owner, epoch, expires_at`

	qReleaseStaleLeases = `
UPDATE leases SET owner = '', expires_at = ?3
WHERE substr(owner, 1, length(?1) + 1) = ?1 || '@' AND owner <> ?2`

	qReleaseLease = `
UPDATE leases SET owner = '', expires_at = ?4
WHERE resource = ?1 AND owner = ?2 AND epoch = ?3`

	qLeases = `
SELECT resource, owner, epoch, expires_at FROM leases
WHERE resource >= ?1 AND (?2 IS NULL OR resource < ?2)
ORDER BY resource`
)

const (
	qCommitOffset = `
INSERT INTO group_offsets (group_name, topic, partition, committed_offset, leader_epoch, metadata, committed_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (group_name, topic, partition) DO UPDATE
SET committed_offset = excluded.committed_offset,
    leader_epoch = excluded.leader_epoch,
    metadata = excluded.metadata,
    committed_at = excluded.committed_at`

	qFetchOffsets = `
SELECT topic, partition, committed_offset, leader_epoch, metadata, committed_at
FROM group_offsets
WHERE group_name = ?1 AND (?2 IS NULL OR topic IN (SELECT value FROM json_each(?2)))
ORDER BY topic, partition`

	qDeleteOffsets = `
DELETE FROM group_offsets
WHERE group_name = ?1 AND topic = ?2 AND partition IN (SELECT value FROM json_each(?3))`

	qSaveGroup = `
INSERT INTO groups (name, protocol_type, state, updated_at)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (name) DO UPDATE
SET protocol_type = excluded.protocol_type,
    state = excluded.state,
    updated_at = excluded.updated_at`

	qGroup              = `SELECT name, protocol_type, state, updated_at FROM groups WHERE name = ?1`
	qListGroups         = `SELECT name, protocol_type, state, updated_at FROM groups ORDER BY name`
	qDeleteGroup        = `DELETE FROM groups WHERE name = ?1`
	qDeleteGroupOffsets = `DELETE FROM group_offsets WHERE group_name = ?1`
)

const (
	// qHeartbeat: a NULL ?5 (no StartedAt) keeps the stored start, or
	// stamps now (?6) on first registration.
	qHeartbeat = `
INSERT INTO nodes (id, kafka_addr, wal_addr, remote_addr, started_at, heartbeat_at)
VALUES (?1, ?2, ?3, ?4, coalesce(?5, ?6), ?6)
ON CONFLICT (id) DO UPDATE
SET kafka_addr = excluded.kafka_addr,
    wal_addr = excluded.wal_addr,
    remote_addr = excluded.remote_addr,
    started_at = coalesce(?5, nodes.started_at),
    heartbeat_at = ?6`

	qCatalogVersion = `SELECT version FROM catalog_version WHERE id = 1`
	qLiveNodes      = `
SELECT id, kafka_addr, wal_addr, remote_addr, started_at, heartbeat_at FROM nodes
WHERE heartbeat_at > ?1 - ?2
ORDER BY id`

	qRemoveNode = `DELETE FROM nodes WHERE id = ?1`
)
