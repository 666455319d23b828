// Package meta is the metadata store of Morax: topics, partitions, leases,
// segments, idempotent-producer state, consumer groups and cluster nodes.
//
// Every durable decision the broker makes goes through one Store. Two
// implementations exist, PostgreSQL (package pgmeta, for clusters) and an
// embedded SQLite database (package litemeta, for the zero-config single
// node); both pass the same contract suite in package metatest.
//
// The one operation that carries the broker's durability and fencing
// invariants is CommitFlushes: for each flush of a node-level flush (the
// slices of one object, one per partition flush packed into it) it inserts
// a segment row, advances the partition's next offset and saves producer
// state, each only if the writer still holds that partition's lease at the
// epoch it was granted, and all in one transaction. A stale writer gets
// ErrFenced from the database, never from a timer.
package meta

import (
	"context"
	"errors"
	"time"

	"github.com/morax-dev/morax/persistence/segment"
)

// Sentinel errors returned by every Store implementation. Callers test them
// with errors.Is; implementations wrap them with context.
var (
	// ErrFenced means the caller's lease epoch is no longer the partition's
	// current epoch (or the lease is held by another node). The caller must
	// stop writing to the partition at once.
	ErrFenced = errors.New("meta: fenced: lease epoch is stale")
	// ErrOffsetMismatch means a commit's base offset is not the partition's
	// next offset: the caller's view of the log is out of date.
	ErrOffsetMismatch = errors.New("meta: commit base offset is not the partition's next offset")
	// ErrNotFound means the named topic, partition, group or lease does not exist.
	ErrNotFound = errors.New("meta: not found")
	// ErrExists means a topic with the same name already exists.
	ErrExists = errors.New("meta: already exists")
	// ErrLeaseHeld means another node holds an unexpired lease.
	ErrLeaseHeld = errors.New("meta: lease held by another node")
	// ErrInvalid means the arguments can never succeed (a topic without
	// partitions, an empty segment, shrinking a topic, a non-positive lease
	// ttl): retrying will not help, so callers answer with a non-retriable
	// error instead of backing off.
	ErrInvalid = errors.New("meta: invalid argument")
)

// TopicID is a topic's immutable 16-byte identifier (a UUID, as Kafka's
// topic IDs are). Names can be reused after a delete; IDs never are.
type TopicID [16]byte

// TopicKind tells which protocol created a topic. Storage is the same for
// both (invariant 4); the kind only steers defaults and listings.
type TopicKind string

const (
	// KindKafka is a topic created through the Kafka protocol (or auto-created).
	KindKafka TopicKind = "kafka"
	// KindWAL is a single-partition log created through the WAL HTTP API.
	KindWAL TopicKind = "wal"
)

// Topic is a named set of partitions.
type Topic struct {
	ID         TopicID
	Name       string
	Kind       TopicKind
	Partitions int32
	// Config holds topic-level overrides (Kafka config names, e.g.
	// "retention.ms"). Absent keys take the node default.
	Config    map[string]string
	CreatedAt time.Time
}

// Partition is the committed state of one partition of a topic.
type Partition struct {
	TopicID   TopicID
	Partition int32
	// NextOffset is the offset the next committed record receives; every
	// offset below it (and at or above LogStartOffset) is committed.
	NextOffset int64
	// LogStartOffset is the first offset still readable.
	LogStartOffset int64
	// Bytes is the total size of the partition's live segments.
	Bytes int64
}

// PartitionKey names one partition.
type PartitionKey struct {
	TopicID   TopicID
	Partition int32
}

// Lease is the right to write to one partition (or coordinate one group
// slot). Epoch increases every time the lease changes hands; it is the
// Kafka leader epoch.
type Lease struct {
	// Resource names what is leased: see PartitionResource and SlotResource.
	Resource  string
	Owner     string
	Epoch     int64
	ExpiresAt time.Time
}

// Fence makes a write conditional on a lease: it applies only while Owner
// holds Resource at Epoch, unexpired by the database clock, and a takeover
// of the lease waits for a write that passed the check. A group
// coordinator fences its writes with its slot lease, so a coordinator that
// lost its slot (paused past its lease, say) cannot overwrite what the new
// one stored. The zero Fence applies unconditionally.
type Fence struct {
	Resource string
	Owner    string
	Epoch    int64
}

// IsZero reports whether f is the unconditional fence.
func (f Fence) IsZero() bool { return f.Resource == "" }

// Segment is the committed record batches for the offsets [BaseOffset,
// EndOffset) of one partition: the bytes [Position, Position+Size) of an
// object. A node packs the flushes of many partitions into one object, so
// several segments (of one or several partitions) may share an object; the
// object is deleted when the last of them is.
type Segment struct {
	TopicID    TopicID
	Partition  int32
	BaseOffset int64
	EndOffset  int64 // exclusive
	ObjectKey  string
	// Position is where the segment's first batch starts in the object.
	Position int64
	// Size is the segment's length in bytes.
	Size int64
	// Epoch is the lease epoch the segment was written under.
	Epoch int64
	// MaxTimestamp is the largest record timestamp in the segment (ms since
	// the Unix epoch), for time retention and ListOffsets by timestamp.
	MaxTimestamp int64
	// Index is the sparse offset index, ascending by offset; its first entry
	// is {BaseOffset, 0}. Stored with segment.EncodeIndex.
	Index []segment.IndexEntry
	// CreatedAt is when the segment was committed; CommitFlushes stamps a
	// zero value with the database clock.
	CreatedAt time.Time
}

// ProducerBatch records one batch an idempotent producer wrote, so a retry of
// it can be answered with its original offsets.
type ProducerBatch struct {
	FirstSeq   int32
	LastSeq    int32
	BaseOffset int64
	LastOffset int64
	Timestamp  int64
}

// ProducerState is the idempotence window of one producer on one partition:
// its epoch and its last few batches (Kafka keeps five).
type ProducerState struct {
	ProducerID    int64
	ProducerEpoch int16
	Batches       []ProducerBatch
	// LastUpdate is when the state last changed (ms since the Unix epoch);
	// it lets old producers expire.
	LastUpdate int64
}

// FlushCommit is everything one partition's flush makes durable at once.
type FlushCommit struct {
	// LeaseEpoch is the epoch the writer holds; the commit is refused with
	// ErrFenced if it is no longer current.
	LeaseEpoch int64
	// Owner is the node id holding the lease.
	Owner   string
	Segment Segment
	// Producers replace the stored state of the producers they name.
	Producers []ProducerState
}

// OffsetCommit is a consumer group's committed position in one partition.
type OffsetCommit struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommittedAt time.Time
}

// Group is the persisted state of a consumer group: enough for a new
// coordinator to continue after failover. State is opaque to the store.
type Group struct {
	Name         string
	ProtocolType string
	State        []byte
	UpdatedAt    time.Time
}

// Node is a cluster member as registered in the metadata store.
type Node struct {
	ID          string
	KafkaAddr   string
	WALAddr     string
	RemoteAddr  string
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// Store is the metadata store. Every method is safe for concurrent use.
type Store interface {
	// Close releases the store's connections.
	Close() error

	// CreateTopic creates a topic and its partitions (next offset 0). It
	// fills in ID and CreatedAt when zero. ErrExists if the name is taken.
	CreateTopic(ctx context.Context, t Topic) (Topic, error)
	// Topic returns a topic by name, or ErrNotFound.
	Topic(ctx context.Context, name string) (Topic, error)
	// TopicByID returns a topic by id, or ErrNotFound.
	TopicByID(ctx context.Context, id TopicID) (Topic, error)
	// ListTopics returns topics whose names start with prefix, in name order,
	// starting after the name `after` (for pagination), at most limit
	// (limit <= 0 means all).
	ListTopics(ctx context.Context, prefix, after string, limit int) ([]Topic, error)
	// DeleteTopic removes a topic and everything that belongs to it
	// (partitions, segments, producer state, leases, committed offsets) and
	// returns the keys of the objects its segments were in that no segment
	// references any more, so the caller can delete them (see
	// AdvanceLogStart for what may be missed).
	DeleteTopic(ctx context.Context, name string) (keys []string, err error)
	// SetTopicConfig replaces a topic's config overrides.
	SetTopicConfig(ctx context.Context, name string, config map[string]string) error
	// PartitionCount returns the partitions of all topics together, the
	// figure the cluster's partition cap (limits.max_cluster_partitions)
	// is checked against.
	PartitionCount(ctx context.Context) (int64, error)
	// AddPartitions grows a topic to total partitions. It never shrinks:
	// total below the current count is ErrInvalid, total equal to it is a
	// no-op (so a retried request succeeds).
	AddPartitions(ctx context.Context, name string, total int32) error
	// CatalogVersion returns a number that changes whenever any topic is
	// created, deleted, grown or reconfigured, so a poller can skip reading
	// the topic list while it stays the same. Only equality is meaningful.
	CatalogVersion(ctx context.Context) (int64, error)

	// Partition returns the committed state of one partition.
	Partition(ctx context.Context, id TopicID, partition int32) (Partition, error)

	// CommitFlushes commits cs in exactly one transaction. For each c, in
	// order, it inserts c.Segment, advances the partition's next offset to
	// c.Segment.EndOffset and saves c.Producers, provided (Owner,
	// LeaseEpoch) is the partition's current lease (else ErrFenced), the
	// partition exists (else ErrNotFound) and c.Segment.BaseOffset equals
	// the partition's next offset as left by the flushes before it (else
	// ErrOffsetMismatch). A flush that fails its checks stores nothing, and
	// the others commit anyway: results has one entry per flush, nil when
	// it committed, else an error wrapping one of those three. Several
	// flushes of one partition may be in one call, in offset order.
	//
	// The whole call fails, storing nothing, when an argument can never
	// commit (ErrInvalid: no flushes, an empty or negative range, a
	// negative position, one (ObjectKey, Position) twice) or a slice it
	// inserts is already committed. Any other error means the caller cannot
	// know the outcome: either every flush that passed its checks
	// committed, or none did. results is nil whenever err is not.
	CommitFlushes(ctx context.Context, cs []FlushCommit) (results []error, err error)
	// Segments returns up to limit segments of a partition whose end offset
	// is above from, ascending by base offset (limit <= 0 means all).
	Segments(ctx context.Context, id TopicID, partition int32, from int64, limit int) ([]Segment, error)
	// SegmentByTimestamp returns the first segment whose MaxTimestamp is at
	// or after ts, or ErrNotFound.
	SegmentByTimestamp(ctx context.Context, id TopicID, partition int32, ts int64) (Segment, error)
	// AdvanceLogStart raises the partition's log start offset to at least
	// offset (never past its next offset, never down), removes the segment
	// rows wholly below the new start, and returns the keys of the objects
	// they were in that no segment references any more. Two calls that
	// drop the last segments of one object at the same moment may each see
	// the other's segment and neither return the key; the orphan sweep
	// (CommittedKeys) removes such an object later.
	AdvanceLogStart(ctx context.Context, id TopicID, partition int32, offset int64) (start int64, keys []string, err error)
	// CommittedKeys reports which of keys hold at least one committed
	// segment: the map has an entry for every key in keys, true when one
	// does.
	// The orphan sweep deletes objects that are neither committed nor young.
	CommittedKeys(ctx context.Context, keys []string) (map[string]bool, error)
	// Producers returns the stored idempotence windows of a partition.
	Producers(ctx context.Context, id TopicID, partition int32) ([]ProducerState, error)
	// NextProducerID allocates a cluster-unique producer id.
	NextProducerID(ctx context.Context) (int64, error)

	// AcquireLease grants resource to owner for ttl if it is vacant, expired
	// or already owner's. A grant to a new owner (or after expiry) increments
	// the epoch; renewal by the current owner keeps it. ErrLeaseHeld if
	// another node holds it unexpired. Expiry is judged by the database
	// clock.
	AcquireLease(ctx context.Context, resource, owner string, ttl time.Duration) (Lease, error)
	// RenewLease extends owner's lease at epoch; ErrFenced if it is no
	// longer owner's at that epoch.
	RenewLease(ctx context.Context, resource, owner string, epoch int64, ttl time.Duration) (Lease, error)
	// RenewLeases extends, in one statement, every unexpired lease owner
	// holds and returns them: a node renews all its partitions with one
	// round trip instead of one per partition. A lease owner held that is
	// missing from the answer has expired or been taken.
	RenewLeases(ctx context.Context, owner string, ttl time.Duration) ([]Lease, error)
	// ReleaseStaleLeases makes vacant (keeping their epochs) the leases
	// held by incarnations of node other than current (owners
	// meta.LeaseOwner(node, *) but not current), and returns how many. Only
	// a caller that knows those incarnations are dead may call it: the
	// embedded node does, holding its data directory's lock.
	ReleaseStaleLeases(ctx context.Context, node, current string) (int, error)
	// ReleaseLease makes the lease vacant at once (keeping its epoch) if
	// owner holds it at epoch. Releasing a lease one does not hold is a no-op.
	ReleaseLease(ctx context.Context, resource, owner string, epoch int64) error
	// Leases returns every lease whose resource starts with prefix, in
	// resource order. A released lease is listed with Owner "" and keeps its
	// epoch; an expired one keeps its owner (compare ExpiresAt).
	Leases(ctx context.Context, prefix string) ([]Lease, error)

	// CommitOffsets stores a group's offsets (one transaction), provided
	// fence holds (else ErrFenced, nothing stored). A zero CommittedAt is
	// stamped with the database clock.
	CommitOffsets(ctx context.Context, group string, offsets []OffsetCommit, fence Fence) error
	// FetchOffsets returns a group's committed offsets; topics nil means all.
	FetchOffsets(ctx context.Context, group string, topics []string) ([]OffsetCommit, error)
	// DeleteOffsets removes a group's offsets for the named partitions.
	DeleteOffsets(ctx context.Context, group, topic string, partitions []int32) error
	// SaveGroup stores a group's state, provided fence holds (else
	// ErrFenced). A zero UpdatedAt is stamped with the database clock.
	SaveGroup(ctx context.Context, g Group, fence Fence) error
	// Group loads a group's state, or ErrNotFound.
	Group(ctx context.Context, name string) (Group, error)
	// ListGroups returns every stored group.
	ListGroups(ctx context.Context) ([]Group, error)
	// DeleteGroup removes a group and its committed offsets; ErrNotFound if
	// there was neither (a group may have offsets without stored state).
	DeleteGroup(ctx context.Context, name string) error

	// Heartbeat registers n (or refreshes it), stamping HeartbeatAt with the
	// database clock. A zero StartedAt is stamped with the database clock on
	// first registration and leaves the stored value alone afterwards.
	Heartbeat(ctx context.Context, n Node) error
	// LiveNodes returns the nodes whose heartbeat is younger than within, by
	// the database clock, ordered by id.
	LiveNodes(ctx context.Context, within time.Duration) ([]Node, error)
	// RemoveNode deletes a node's registration (graceful shutdown).
	RemoveNode(ctx context.Context, id string) error
}

// CommitFlush commits one flush with s.CommitFlushes and returns its
// result: nil, an error wrapping ErrFenced, ErrNotFound, ErrOffsetMismatch
// or ErrInvalid, or an error after which the outcome is unknown.
func CommitFlush(ctx context.Context, s Store, c FlushCommit) error {
	res, err := s.CommitFlushes(ctx, []FlushCommit{c})
	if err != nil {
		return err
	}
	return res[0]
}
