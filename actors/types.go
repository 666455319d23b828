package actors

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/morax-dev/morax/persistence/meta"
)

// The protocol layers talk only to this package. The records they name are
// defined by the metadata store, which owns their shape; these aliases are
// how the protocol layers name them without reaching into storage.
type (
	// Topic is a topic or log as the metadata store keeps it.
	Topic = meta.Topic
	// TopicID is a topic's stable id.
	TopicID = meta.TopicID
	// TopicKind says which protocol created a topic.
	TopicKind = meta.TopicKind
	// Node is a cluster member as registered in the metadata store.
	Node = meta.Node
	// Lease is an ownership lease: resource, owner, epoch, expiry.
	Lease = meta.Lease
	// OffsetCommit is a consumer group's committed offset of a partition.
	OffsetCommit = meta.OffsetCommit
	// PartitionKey names a partition of a topic.
	PartitionKey = meta.PartitionKey
)

// Topic kinds.
const (
	// KindKafka is a topic created through the Kafka protocol.
	KindKafka = meta.KindKafka
	// KindWAL is a log created through the WAL API.
	KindWAL = meta.KindWAL
)

// LeaseNode is the node id in a lease owner string (node@incarnation).
func LeaseNode(owner string) string { return meta.LeaseNode(owner) }

// NextProducerID allocates a producer id for InitProducerId, unique across
// the cluster.
func (b *Broker) NextProducerID(ctx context.Context) (int64, error) {
	id, err := b.meta.NextProducerID(ctx)
	if err != nil {
		return -1, fmt.Errorf("%w: next producer id: %v", ErrStorage, err)
	}
	return id, nil
}

// PartitionBytes is the committed size of partition p of topic id, as the
// metadata store counts it.
func (b *Broker) PartitionBytes(ctx context.Context, id TopicID, p int32) (int64, error) {
	part, err := b.meta.Partition(ctx, id, p)
	if errors.Is(err, meta.ErrNotFound) {
		return 0, fmt.Errorf("%w: %s/%d", ErrUnknownPartition, id, p)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: partition %s/%d: %v", ErrStorage, id, p, err)
	}
	return part.Bytes, nil
}

// leaseScanThreshold is the topic count above which LeaderEpochs reads
// every partition lease in one scan instead of one scan per topic.
const leaseScanThreshold = 8

// LeaderEpochs returns the lease epoch of every partition of topics that
// has a lease, read from the metadata store (for a node without the
// cluster loop, which has no view to ask).
func (b *Broker) LeaderEpochs(ctx context.Context, topics []Topic) (map[PartitionKey]int32, error) {
	epochs := map[PartitionKey]int32{}
	if len(topics) == 0 {
		return epochs, nil
	}
	// The prefix every partition lease shares: a topic's prefix minus its id.
	prefixes := []string{strings.TrimSuffix(meta.TopicResourcePrefix(TopicID{}), TopicID{}.String()+"/")}
	if len(topics) <= leaseScanThreshold {
		prefixes = prefixes[:0]
		for _, t := range topics {
			prefixes = append(prefixes, meta.TopicResourcePrefix(t.ID))
		}
	}
	for _, prefix := range prefixes {
		leases, err := b.meta.Leases(ctx, prefix)
		if err != nil {
			return epochs, fmt.Errorf("%w: read partition leases: %v", ErrStorage, err)
		}
		for _, l := range leases {
			if key, ok := meta.ParsePartitionResource(l.Resource); ok {
				epochs[key] = int32(min(l.Epoch, math.MaxInt32))
			}
		}
	}
	return epochs, nil
}

// PartitionHolder is the live node holding the lease of partition p of
// topic id in the view, with the lease.
func (v *ClusterView) PartitionHolder(id TopicID, p int32) (Node, Lease, bool) {
	return v.Holder(meta.PartitionResource(id, p))
}

// SlotHolder is the live node holding the lease of group coordinator slot
// s in the view, with the lease.
func (v *ClusterView) SlotHolder(s int) (Node, Lease, bool) {
	return v.Holder(meta.SlotResource(s))
}
