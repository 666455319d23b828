package pgmeta

// The SQL of every Store method. Durations travel as bigint microseconds
// and are turned into intervals by the database, so every comparison with
// now() happens on the database clock.

const topicColumns = `id, name, kind, partitions, config, created_at`

const (
	// qCreateTopic inserts the topic and its partitions in one statement,
	// so a topic is never visible without its partitions.
	qCreateTopic = `
WITH t AS (
	INSERT INTO topics (id, name, kind, partitions, config, created_at)
	VALUES ($1, $2, $3, $4, $5::jsonb, COALESCE($6, now()))
	RETURNING id, created_at
), p AS (
	INSERT INTO partitions (topic_id, partition)
	SELECT t.id, g FROM t, generate_series(0, $4::integer - 1) AS g
)
SELECT created_at FROM t`

	// qPartitionCount reads the topics' counts, not the partitions
	// table: one row per topic rather than per partition.
	qPartitionCount = `SELECT COALESCE(SUM(partitions), 0) FROM topics`

	qTopicByName = `SELECT ` + topicColumns + ` FROM topics WHERE name = $1`
	qTopicByID   = `SELECT ` + topicColumns + ` FROM topics WHERE id = $1`

	// qListTopics uses starts_with rather than LIKE so names with % or _
	// (legal in Kafka topic names) need no escaping. A NULL limit is no
	// limit.
	qListTopics = `
SELECT ` + topicColumns + ` FROM topics
WHERE starts_with(name, $1) AND name > $2
ORDER BY name
LIMIT $3`

	qLockTopic = `SELECT id, partitions FROM topics WHERE name = $1 FOR UPDATE`

	// qDeleteLeases locks the leases in resource order before deleting
	// them, the order CommitFlushes locks them in, so a delete racing a
	// commit of several partitions waits for it instead of deadlocking.
	qDeleteLeases = `
DELETE FROM leases WHERE resource IN (
	SELECT resource FROM leases WHERE resource = ANY($1::text[])
	ORDER BY resource FOR UPDATE)`
	qDeleteSegments   = `DELETE FROM segments WHERE topic_id = $1 RETURNING object_key`
	qDeleteTopic      = `DELETE FROM topics WHERE id = $1`
	qDeleteTopicOffs  = `DELETE FROM group_offsets WHERE topic = $1`
	qSetTopicConfig   = `UPDATE topics SET config = $2::jsonb WHERE name = $1`
	qSetTopicParts    = `UPDATE topics SET partitions = $2 WHERE id = $1`
	qInsertPartitions = `
INSERT INTO partitions (topic_id, partition)
SELECT $1::uuid, g FROM generate_series($2::integer, $3::integer - 1) AS g`

	qPartition = `
SELECT next_offset, log_start_offset, bytes FROM partitions
WHERE topic_id = $1 AND partition = $2`
)

// qCommitFlush is the whole commit of one flush as one statement: alone it
// costs one round trip and is its own transaction; CommitFlushes sends one
// per flush in a batch, which is still one round trip and one transaction.
//
//   - lease locks the lease row FOR UPDATE if (and only if) it is still the
//     writer's at its epoch and unexpired by the database clock. The lock is
//     held until commit, so a takeover (an upsert of the same row) waits for
//     this commit, and a commit that starts after a takeover re-reads the
//     changed row under READ COMMITTED and finds no lease: the database
//     fences a stale writer, not a timer.
//   - part advances the partition only from the expected next offset. Two
//     commits racing on one partition serialize on the row lock; the second
//     re-evaluates its WHERE against the new row and updates nothing.
//   - seg and prod run only if part updated its row.
//   - The final SELECT reports which check failed. Its subqueries see the
//     snapshot from before the statement (including what earlier
//     statements of the same transaction did), which is only used for the
//     error message.
const qCommitFlush = `
WITH lease AS MATERIALIZED (
	SELECT 1 FROM leases
	WHERE resource = $1 AND owner = $2 AND epoch = $3 AND expires_at > now()
	FOR UPDATE
), part AS (
	UPDATE partitions SET next_offset = $7, bytes = bytes + $9
	WHERE topic_id = $4 AND partition = $5 AND next_offset = $6
	  AND EXISTS (SELECT 1 FROM lease)
	RETURNING 1
), seg AS (
	INSERT INTO segments (topic_id, partition, base_offset, end_offset, object_key, object_pos,
	                      size, epoch, max_timestamp, offset_index, created_at)
	SELECT $4::uuid, $5::integer, $6::bigint, $7::bigint, $8::text, $17::bigint, $9::bigint, $3::bigint,
	       $10::bigint, $11::bytea, COALESCE($12::timestamptz, now())
	FROM part
), prod AS (
	INSERT INTO producers (topic_id, partition, producer_id, producer_epoch, batches, last_update)
	SELECT $4::uuid, $5::integer, p.id, p.epoch, p.batches, p.last_update
	FROM unnest($13::bigint[], $14::smallint[], $15::bytea[], $16::bigint[])
	     AS p (id, epoch, batches, last_update)
	WHERE EXISTS (SELECT 1 FROM part)
	ON CONFLICT (topic_id, partition, producer_id) DO UPDATE
	SET producer_epoch = EXCLUDED.producer_epoch,
	    batches = EXCLUDED.batches,
	    last_update = EXCLUDED.last_update
)
SELECT EXISTS (SELECT 1 FROM lease),
       EXISTS (SELECT 1 FROM part),
       (SELECT next_offset FROM partitions WHERE topic_id = $4 AND partition = $5)`

// qCommitWave is qCommitFlush for many flushes at once, one row per flush
// in unnest()ed arrays, each flush naming a different partition (a wave:
// CommitFlushes sends a partition's later flushes in later waves, later in
// the same transaction). It costs about one statement however many flushes
// it carries.
//
//   - lease locks the lease rows named by the lock triples ($1..$3) that
//     are still their writer's, in resource order: the order RenewLeases and
//     DeleteTopic take them in, so calls sharing leases never wait in a
//     cycle. LockRows sits above the Sort, so rows are locked as sorted.
//     The first wave's triples are those of the whole call, so later waves
//     only re-lock rows the transaction already holds.
//   - part advances a partition only where its flush's own lease matched and
//     its next offset is the flush's base; its partition row is locked only
//     by a transaction that also holds its lease (locked first), so the
//     order the UPDATE happens to take partition rows in cannot deadlock.
//   - seg and prod apply only the flushes part advanced; producers carry
//     their flush's ordinal. Producers are deduplicated per flush and the
//     wave's flushes are distinct partitions, so no producer row is
//     inserted or updated twice by one statement.
//   - The final SELECT reports, per ordinal, what qCommitFlush reports.
const qCommitWave = `
WITH lease AS MATERIALIZED (
	SELECT l.resource, l.owner, l.epoch
	FROM leases l
	JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k (resource, owner, epoch)
	  ON l.resource = k.resource AND l.owner = k.owner AND l.epoch = k.epoch
	WHERE l.expires_at > now()
	ORDER BY l.resource
	FOR UPDATE OF l
), f AS MATERIALIZED (
	SELECT * FROM unnest($4::integer[], $5::text[], $6::text[], $7::bigint[], $8::uuid[], $9::integer[],
	                     $10::bigint[], $11::bigint[], $12::text[], $13::bigint[], $14::bigint[],
	                     $15::bigint[], $16::bytea[], $17::timestamptz[])
	  AS f (ord, resource, owner, epoch, topic_id, partition, base_offset, end_offset, object_key,
	        object_pos, size, max_timestamp, offset_index, created_at)
), ok AS MATERIALIZED (
	SELECT f.ord FROM f
	WHERE EXISTS (SELECT 1 FROM lease
	              WHERE lease.resource = f.resource AND lease.owner = f.owner AND lease.epoch = f.epoch)
), part AS (
	UPDATE partitions p SET next_offset = f.end_offset, bytes = p.bytes + f.size
	FROM f JOIN ok ON ok.ord = f.ord
	WHERE p.topic_id = f.topic_id AND p.partition = f.partition AND p.next_offset = f.base_offset
	RETURNING f.ord
), seg AS (
	INSERT INTO segments (topic_id, partition, base_offset, end_offset, object_key, object_pos,
	                      size, epoch, max_timestamp, offset_index, created_at)
	SELECT f.topic_id, f.partition, f.base_offset, f.end_offset, f.object_key, f.object_pos,
	       f.size, f.epoch, f.max_timestamp, f.offset_index, COALESCE(f.created_at, now())
	FROM f JOIN part ON part.ord = f.ord
), prod AS (
	INSERT INTO producers (topic_id, partition, producer_id, producer_epoch, batches, last_update)
	SELECT f.topic_id, f.partition, p.id, p.epoch, p.batches, p.last_update
	FROM unnest($18::integer[], $19::bigint[], $20::smallint[], $21::bytea[], $22::bigint[])
	     AS p (ord, id, epoch, batches, last_update)
	JOIN part ON part.ord = p.ord
	JOIN f ON f.ord = p.ord
	ON CONFLICT (topic_id, partition, producer_id) DO UPDATE
	SET producer_epoch = EXCLUDED.producer_epoch,
	    batches = EXCLUDED.batches,
	    last_update = EXCLUDED.last_update
)
SELECT f.ord,
       EXISTS (SELECT 1 FROM ok WHERE ok.ord = f.ord),
       EXISTS (SELECT 1 FROM part WHERE part.ord = f.ord),
       (SELECT next_offset FROM partitions p WHERE p.topic_id = f.topic_id AND p.partition = f.partition)
FROM f`

const segmentColumns = `base_offset, end_offset, object_key, object_pos, size, epoch, max_timestamp, offset_index, created_at`

const (
	// qSegments orders by end_offset, which for the contiguous segments of a
	// partition is the same order as base_offset, so the segments_end_offset
	// index serves both the filter and the order. A NULL limit is no limit.
	qSegments = `
SELECT ` + segmentColumns + ` FROM segments
WHERE topic_id = $1 AND partition = $2 AND end_offset > $3
ORDER BY end_offset
LIMIT $4`

	qSegmentByTimestamp = `
SELECT ` + segmentColumns + ` FROM segments
WHERE topic_id = $1 AND partition = $2 AND max_timestamp >= $3
ORDER BY base_offset
LIMIT 1`

	// qAdvanceLogStart moves the start up, never down and never past the
	// next offset, and locks the partition row until the segments below the
	// new start are gone.
	qAdvanceLogStart = `
UPDATE partitions
SET log_start_offset = GREATEST(log_start_offset, LEAST($3, next_offset))
WHERE topic_id = $1 AND partition = $2
RETURNING log_start_offset`

	// qDropSegmentsBelow deletes the segments wholly below the log start and
	// takes their bytes off the partition's total.
	qDropSegmentsBelow = `
WITH d AS (
	DELETE FROM segments
	WHERE topic_id = $1 AND partition = $2 AND end_offset <= $3
	RETURNING object_key, size, base_offset
), u AS (
	UPDATE partitions SET bytes = bytes - (SELECT COALESCE(sum(size), 0) FROM d)
	WHERE topic_id = $1 AND partition = $2
)
SELECT object_key FROM d ORDER BY base_offset`

	// qCommittedKeys probes the (object_key, object_pos) index once per key
	// and answers each key at most once, however many segments share it.
	qCommittedKeys = `
SELECT k FROM unnest($1::text[]) AS k
WHERE EXISTS (SELECT 1 FROM segments WHERE object_key = k)`

	// qUnreferencedKeys keeps the keys of $1 that no segment references,
	// in the order given. It must run as its own statement after the
	// deletion that freed them: in the same statement (a CTE) it would see
	// the deleted rows still there.
	qUnreferencedKeys = `
SELECT k FROM unnest($1::text[]) WITH ORDINALITY AS u (k, i)
WHERE NOT EXISTS (SELECT 1 FROM segments WHERE object_key = u.k)
ORDER BY i`

	qProducers = `
SELECT producer_id, producer_epoch, batches, last_update FROM producers
WHERE topic_id = $1 AND partition = $2
ORDER BY producer_id`

	qNextProducerID = `SELECT nextval('producer_ids')`
)

const (
	// qAcquireLease is the whole acquisition as one upsert: insert at epoch
	// 1; or take over a vacant or expired lease at epoch + 1; or renew the
	// owner's own unexpired lease at the same epoch. When another owner holds
	// it unexpired the WHERE leaves the row alone and nothing is returned.
	qAcquireLease = `
INSERT INTO leases AS l (resource, owner, epoch, expires_at)
VALUES ($1, $2, 1, now() + $3::bigint * interval '1 microsecond')
ON CONFLICT (resource) DO UPDATE
SET owner = EXCLUDED.owner,
    epoch = CASE WHEN l.owner = EXCLUDED.owner AND l.expires_at > now()
                 THEN l.epoch ELSE l.epoch + 1 END,
    expires_at = EXCLUDED.expires_at
WHERE l.owner = EXCLUDED.owner OR l.owner = '' OR l.expires_at <= now()
RETURNING owner, epoch, expires_at`

	// qRenewLease extends only an unexpired lease: once it has expired
	// another node may have been promised it, so the owner must acquire
	// again (and get a new epoch).
	qRenewLease = `
UPDATE leases SET expires_at = now() + $4::bigint * interval '1 microsecond'
WHERE resource = $1 AND owner = $2 AND epoch = $3 AND expires_at > now()
RETURNING owner, epoch, expires_at`

	// qRenewLeases locks the rows in resource order before updating them,
	// the order CommitFlushes locks leases in: a renewal and a commit of
	// several of the owner's partitions then never wait for each other in
	// a cycle (a plain UPDATE would lock in whatever order it scans).
	qRenewLeases = `
UPDATE leases SET expires_at = now() + $2::bigint * interval '1 microsecond'
WHERE resource IN (
	SELECT resource FROM leases WHERE owner = $1 AND expires_at > now()
	ORDER BY resource FOR UPDATE)
  AND owner = $1 AND expires_at > now()
RETURNING resource, owner, epoch, expires_at`

	qReleaseStaleLeases = `
UPDATE leases SET owner = '', expires_at = now()
WHERE starts_with(owner, $1 || '@') AND owner <> $2`

	qReleaseLease = `
UPDATE leases SET owner = '', expires_at = now()
WHERE resource = $1 AND owner = $2 AND epoch = $3`

	qLeases = `
SELECT resource, owner, epoch, expires_at FROM leases
WHERE starts_with(resource, $1)
ORDER BY resource`
)

const (
	// qCommitOffsets and qSaveGroup check their fence ($8.., NULL resource:
	// none) the way qCommitFlush checks its lease: the row is locked (FOR
	// SHARE) until commit, so a takeover waits, and a write that starts
	// after one finds no lease and writes nothing.
	qCommitOffsets = `
WITH fence AS MATERIALIZED (
	SELECT 1 FROM leases
	WHERE resource = $8 AND owner = $9 AND epoch = $10 AND expires_at > now()
	FOR SHARE
)
INSERT INTO group_offsets (group_name, topic, partition, committed_offset, leader_epoch, metadata, committed_at)
SELECT $1::text, o.topic, o.partition, o.off, o.epoch, o.metadata, COALESCE(o.at, now())
FROM unnest($2::text[], $3::integer[], $4::bigint[], $5::integer[], $6::text[], $7::timestamptz[])
     AS o (topic, partition, off, epoch, metadata, at)
WHERE $8::text IS NULL OR EXISTS (SELECT 1 FROM fence)
ON CONFLICT (group_name, topic, partition) DO UPDATE
SET committed_offset = EXCLUDED.committed_offset,
    leader_epoch = EXCLUDED.leader_epoch,
    metadata = EXCLUDED.metadata,
    committed_at = EXCLUDED.committed_at`

	qFetchOffsets = `
SELECT topic, partition, committed_offset, leader_epoch, metadata, committed_at
FROM group_offsets
WHERE group_name = $1 AND ($2::text[] IS NULL OR topic = ANY($2::text[]))
ORDER BY topic, partition`

	qDeleteOffsets = `
DELETE FROM group_offsets
WHERE group_name = $1 AND topic = $2 AND partition = ANY($3::integer[])`

	qSaveGroup = `
WITH fence AS MATERIALIZED (
	SELECT 1 FROM leases
	WHERE resource = $5 AND owner = $6 AND epoch = $7 AND expires_at > now()
	FOR SHARE
)
INSERT INTO groups (name, protocol_type, state, updated_at)
SELECT $1::text, $2::text, $3::bytea, COALESCE($4::timestamptz, now())
WHERE $5::text IS NULL OR EXISTS (SELECT 1 FROM fence)
ON CONFLICT (name) DO UPDATE
SET protocol_type = EXCLUDED.protocol_type,
    state = EXCLUDED.state,
    updated_at = EXCLUDED.updated_at`

	qGroup      = `SELECT name, protocol_type, state, updated_at FROM groups WHERE name = $1`
	qListGroups = `SELECT name, protocol_type, state, updated_at FROM groups ORDER BY name`

	// qDeleteGroup reports how many group and offset rows it removed, so a
	// group that never existed is told apart from one that did.
	qDeleteGroup = `
WITH g AS (
	DELETE FROM groups WHERE name = $1 RETURNING 1
), o AS (
	DELETE FROM group_offsets WHERE group_name = $1 RETURNING 1
)
SELECT (SELECT count(*) FROM g) + (SELECT count(*) FROM o)`
)

const (
	qHeartbeat = `
INSERT INTO nodes (id, kafka_addr, wal_addr, remote_addr, started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, COALESCE($5, now()), now())
ON CONFLICT (id) DO UPDATE
SET kafka_addr = EXCLUDED.kafka_addr,
    wal_addr = EXCLUDED.wal_addr,
    remote_addr = EXCLUDED.remote_addr,
    started_at = COALESCE($5, nodes.started_at),
    heartbeat_at = now()`

	qCatalogVersion = `SELECT version FROM catalog_version WHERE id = 1`
	qLiveNodes      = `
SELECT id, kafka_addr, wal_addr, remote_addr, started_at, heartbeat_at FROM nodes
WHERE heartbeat_at > now() - $1::bigint * interval '1 microsecond'
ORDER BY id`

	qRemoveNode = `DELETE FROM nodes WHERE id = $1`
)
