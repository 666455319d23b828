package actors

import (
	"errors"
	"hash/fnv"
	"time"

	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/persistence/meta"
)

// Errors answered by the group coordinator. They mirror the Kafka error codes
// of the classic group protocol one to one, so the Kafka layer maps each to
// its kerr code with errors.Is; the coordinator returns them exactly where
// Kafka's GroupCoordinator does.
var (
	// ErrInvalidGroupID means the group id is empty where one is required.
	ErrInvalidGroupID = errors.New("invalid group id")
	// ErrInvalidSessionTimeout means a join's session timeout is outside the
	// coordinator's allowed range.
	ErrInvalidSessionTimeout = errors.New("session timeout outside the allowed range")
	// ErrInconsistentGroupProtocol means a member's protocol type or
	// protocols do not match what the group uses.
	ErrInconsistentGroupProtocol = errors.New("inconsistent group protocol")
	// ErrMemberIDRequired answers a first join of a dynamic member when the
	// client must rejoin with the member id the result carries (Kafka
	// JoinGroup v4+).
	ErrMemberIDRequired = errors.New("member id required: rejoin with the assigned member id")
	// ErrUnknownMemberID means the member id (or instance id) is not a
	// member of the group.
	ErrUnknownMemberID = errors.New("unknown member id")
	// ErrIllegalGeneration means the request's generation is not the
	// group's current one.
	ErrIllegalGeneration = errors.New("illegal generation")
	// ErrRebalanceInProgress means the group is rebalancing: the member must
	// rejoin.
	ErrRebalanceInProgress = errors.New("rebalance in progress")
	// ErrFencedInstanceID means another member now holds the request's
	// group.instance.id.
	ErrFencedInstanceID = errors.New("instance id fenced by a newer member")
	// ErrGroupMaxSizeReached means the group has as many members as allowed.
	ErrGroupMaxSizeReached = errors.New("group is full")
	// ErrCoordinatorNotAvailable means the coordinator cannot answer right
	// now (stopping, or the metadata store failed). Retriable.
	ErrCoordinatorNotAvailable = errors.New("group coordinator not available")
	// ErrNotCoordinator means this node does not coordinate the group's
	// slot; the client should look the coordinator up again. Retriable.
	ErrNotCoordinator = errors.New("not the coordinator of this group")
	// ErrGroupIDNotFound means the group does not exist.
	ErrGroupIDNotFound = errors.New("group not found")
	// ErrNonEmptyGroup means the operation needs a group without members.
	ErrNonEmptyGroup = errors.New("group is not empty")
	// ErrGroupSubscribedToTopic means offsets of a topic cannot be deleted
	// while a member of the group consumes it.
	ErrGroupSubscribedToTopic = errors.New("group is subscribed to the topic")
	// ErrOffsetMetadataTooLarge means an offset commit's metadata string is
	// longer than GroupOptions.MaxOffsetMetadata.
	ErrOffsetMetadataTooLarge = errors.New("offset metadata too large")
)

// Group states, named as Kafka names them in DescribeGroups and ListGroups.
const (
	GroupEmpty               = "Empty"
	GroupPreparingRebalance  = "PreparingRebalance"
	GroupCompletingRebalance = "CompletingRebalance"
	GroupStable              = "Stable"
	GroupDead                = "Dead"
)

// DefaultGroupSlots is the number of coordinator slots group ids hash into.
// It is fixed for the life of a cluster: changing it moves groups between
// slots, so it is part of the cluster's format, not a config key.
const DefaultGroupSlots = 64

// GroupSlot is the coordinator slot of a group: FNV-1a of its id modulo
// slots. Every node computes the same slot, so the node holding the slot's
// lease (meta.SlotResource) is the group's coordinator.
func GroupSlot(group string, slots int) int {
	if slots <= 0 {
		slots = DefaultGroupSlots
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(group))
	return int(h.Sum32() % uint32(slots))
}

// GroupOptions configure the group coordinator. Zero fields take the
// defaults of DefaultGroupOptions.
type GroupOptions struct {
	// Slots is the number of coordinator slots (see GroupSlot).
	Slots int
	// OwnsSlot reports whether this node coordinates a slot. Nil means every
	// slot (single node). It is called from the coordinator's manager actor
	// and must be safe for concurrent use; clustering backs it with the
	// slot leases and calls Groups.ReleaseSlot when one is lost.
	OwnsSlot func(slot int) bool
	// MinSessionTimeout and MaxSessionTimeout bound a member's session
	// timeout (Kafka group.min/max.session.timeout.ms).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members (Kafka
	// group.initial.rebalance.delay.ms). Negative means no delay.
	InitialRebalanceDelay time.Duration
	// MaxSize bounds a group's members (Kafka group.max.size).
	MaxSize int
	// MaxOffsetMetadata bounds a committed offset's metadata string (Kafka
	// offset.metadata.max.bytes).
	MaxOffsetMetadata int
	// IdleTimeout is how long an empty group's actor lives without
	// requests before it stops (its state is in the metadata store).
	IdleTimeout time.Duration
	// MaxPendingBytes bounds the bytes of group requests queued or parked
	// in the coordinator (join metadata, assignments, commits); past it new
	// requests get ErrCoordinatorNotAvailable.
	MaxPendingBytes int64
	// MailboxRequests bounds the requests queued for one group actor and
	// for the manager that routes them; past it requests get
	// ErrCoordinatorNotAvailable instead of queueing.
	MailboxRequests int
}

// DefaultGroupOptions are the values used for zero fields of GroupOptions:
// the group section of config.Default() (Kafka's defaults), and
// DefaultGroupSlots.
func DefaultGroupOptions() GroupOptions {
	g := config.Default().Group
	return GroupOptions{
		Slots:                 DefaultGroupSlots,
		MinSessionTimeout:     g.MinSessionTimeout.Duration(),
		MaxSessionTimeout:     g.MaxSessionTimeout.Duration(),
		InitialRebalanceDelay: g.InitialRebalanceDelay.Duration(),
		MaxSize:               int(g.MaxSize),
		MaxOffsetMetadata:     int(g.MaxOffsetMetadataBytes),
		IdleTimeout:           g.IdleTimeout.Duration(),
		MaxPendingBytes:       g.MaxPendingBytes,
		MailboxRequests:       int(g.MailboxRequests),
	}
}

func (o GroupOptions) withDefaults() GroupOptions {
	d := DefaultGroupOptions()
	if o.Slots <= 0 {
		o.Slots = d.Slots
	}
	if o.MinSessionTimeout <= 0 {
		o.MinSessionTimeout = d.MinSessionTimeout
	}
	if o.MaxSessionTimeout <= 0 {
		o.MaxSessionTimeout = d.MaxSessionTimeout
	}
	if o.InitialRebalanceDelay == 0 {
		o.InitialRebalanceDelay = d.InitialRebalanceDelay
	}
	if o.InitialRebalanceDelay < 0 {
		o.InitialRebalanceDelay = 0
	}
	if o.MaxSize <= 0 {
		o.MaxSize = d.MaxSize
	}
	if o.MaxOffsetMetadata <= 0 {
		o.MaxOffsetMetadata = d.MaxOffsetMetadata
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = d.IdleTimeout
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = d.MaxPendingBytes
	}
	if o.MailboxRequests <= 0 {
		o.MailboxRequests = d.MailboxRequests
	}
	return o
}

// GroupProtocol is one protocol a joining member supports, in the member's
// order of preference.
type GroupProtocol struct {
	Name     string
	Metadata []byte
	// Topics are the topics the member subscribes to under this protocol,
	// when the protocol layer could decode them (Kafka protocol type
	// "consumer"); nil when unknown. OffsetDelete uses them to refuse
	// deleting offsets of consumed topics.
	Topics []string
}

// JoinRequest is a classic JoinGroup.
type JoinRequest struct {
	Group string
	// MemberID is empty on a member's first join.
	MemberID string
	// InstanceID is the member's group.instance.id (static membership);
	// empty for a dynamic member.
	InstanceID   string
	ClientID     string
	ClientHost   string
	ProtocolType string
	Protocols    []GroupProtocol
	// SessionTimeout expires the member when it sends no heartbeat for that
	// long; RebalanceTimeout bounds how long a rebalance waits for members
	// to rejoin and sync.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// RequireKnownMemberID makes a dynamic member's first join answer
	// ErrMemberIDRequired with its new member id (Kafka JoinGroup v4+).
	RequireKnownMemberID bool
	// Reason is the client's reason for joining, for logs.
	Reason string
}

// JoinMember is a member as the leader sees it in a join result.
type JoinMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte
}

// JoinResult answers a join. MemberID is set with ErrMemberIDRequired too.
type JoinResult struct {
	Err          error
	MemberID     string
	Generation   int32
	ProtocolType string
	Protocol     string
	Leader       string
	// SkipAssignment tells a static leader that replaced itself in a stable
	// group to send the current assignment back without computing one
	// (KIP-814).
	SkipAssignment bool
	// Members is filled for the leader only.
	Members []JoinMember
}

// MemberAssignment is the leader's assignment for one member.
type MemberAssignment struct {
	MemberID   string
	Assignment []byte
}

// SyncRequest is a SyncGroup. The leader carries every member's assignment.
type SyncRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
	// ProtocolType and Protocol are checked against the group's when set
	// (Kafka SyncGroup v5+).
	ProtocolType string
	Protocol     string
	Assignments  []MemberAssignment
}

// SyncResult answers a sync with the member's assignment.
type SyncResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatRequest keeps a member's session alive.
type HeartbeatRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
}

// LeavingMember is one member of a (batched) LeaveGroup. A static member
// may be named by InstanceID alone (MemberID empty), as admin clients do.
type LeavingMember struct {
	MemberID   string
	InstanceID string
	Reason     string
}

// LeaveRequest removes members from a group.
type LeaveRequest struct {
	Group   string
	Members []LeavingMember
}

// LeaveResult answers a leave: Err for the whole request, else one error
// (nil for success) per member, in request order.
type LeaveResult struct {
	Err     error
	Members []error
}

// CommitRequest stores committed offsets. A simple consumer (one that does
// not use group management) sends Generation -1 and an empty MemberID.
type CommitRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
	Offsets    []meta.OffsetCommit
}

// CommitResult answers a commit: Err for every offset, else one error (nil
// for success) per offset, in request order.
type CommitResult struct {
	Err     error
	Offsets []error
}

// FetchOffsetsRequest reads a group's committed offsets; Topics nil means
// every topic.
type FetchOffsetsRequest struct {
	Group  string
	Topics []string
}

// FetchOffsetsResult holds the committed offsets found. A partition without
// a commit is absent; the Kafka layer answers it with offset -1.
type FetchOffsetsResult struct {
	Err     error
	Offsets []meta.OffsetCommit
}

// GroupMemberDescription is a member in DescribeGroups. Metadata and
// Assignment are set only while the group is Stable, as Kafka does.
type GroupMemberDescription struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Metadata   []byte
	Assignment []byte
}

// GroupDescription answers DescribeGroups for one group. A group that does
// not exist has State GroupDead and Err ErrGroupIDNotFound.
type GroupDescription struct {
	Group        string
	Err          error
	State        string
	ProtocolType string
	// Protocol is set only while the group is Stable.
	Protocol string
	Members  []GroupMemberDescription
}

// GroupListing is one group in ListGroups.
type GroupListing struct {
	Group        string
	ProtocolType string
	State        string
}

// TopicPartitions names partitions of one topic.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// DeleteOffsetsRequest removes committed offsets of a group (Kafka
// OffsetDelete).
type DeleteOffsetsRequest struct {
	Group  string
	Topics []TopicPartitions
}

// DeleteOffsetsResult answers DeleteOffsets: Err for the whole group, else
// an error (nil for success) per requested partition, shaped like the
// request's Topics.
type DeleteOffsetsResult struct {
	Err    error
	Topics [][]error
}

// ListGroupsResult answers ListGroups.
type ListGroupsResult struct {
	Err    error
	Groups []GroupListing
}
