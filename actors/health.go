package actors

import (
	"fmt"
	"time"
)

// Health is whether this node can serve, and what it refuses, as its
// owners last published it. It is cheap: reading it touches no store and
// sends no message, so a load balancer may ask as often as it likes.
type Health struct {
	// Problems say why the node cannot serve; none means it can. They
	// name the failing part and since when, never the underlying error,
	// which may hold hosts or credentials and is in the node's log.
	Problems []string
	// Partitions is how many partition actors run on this node.
	Partitions int
	// PartitionLimit is Limits.MaxNodePartitions.
	PartitionLimit int
	// PartitionsRefused is how many partitions this node should own by
	// placement but does not start, being at its limit (zero without a
	// cluster, where nothing is placed).
	PartitionsRefused int
}

// OK reports whether the node can serve.
func (h Health) OK() bool { return len(h.Problems) == 0 }

// Health reports whether the node can serve: not when it is shutting
// down, when its lease renewals fail (its leases run out and its
// partitions stop), or when its cluster poll fails (the metadata store is
// unreachable, so it can neither route nor start partitions).
func (b *Broker) Health() Health {
	h := Health{
		Partitions:     int(b.running.Load()),
		PartitionLimit: b.opts.Limits.MaxNodePartitions,
	}
	now := time.Now()
	if b.closing.Load() {
		h.Problems = append(h.Problems, "node shutting down")
	}
	if since := b.leases.view.Load().renewFailingSince; !since.IsZero() {
		h.Problems = append(h.Problems, fmt.Sprintf("lease renewals failing for %s: the metadata store does not answer them", now.Sub(since).Round(time.Second)))
	}
	if c := b.cluster.Load(); c != nil {
		if since := c.pollFailingSince.Load(); since != nil {
			h.Problems = append(h.Problems, fmt.Sprintf("cluster poll failing for %s: the metadata store is unreachable", now.Sub(*since).Round(time.Second)))
		}
		h.PartitionsRefused = int(c.refused.Load())
	}
	return h
}
