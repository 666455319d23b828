package actors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/morax-dev/morax/persistence/meta"
)

// Membership keeps this node registered in the metadata store: it
// heartbeats every interval, and deregisters on Close so others see a
// graceful leave at once rather than after the heartbeat goes stale. Live
// nodes are judged by the database clock (meta.Store.LiveNodes). Its state
// is owned by its own goroutine.
type Membership struct {
	store    meta.Store
	node     meta.Node
	interval time.Duration
	log      *slog.Logger
	stop     chan struct{}
	done     chan struct{}
}

// StartMembership registers n at once (an error here fails the node's
// start) and then heartbeats in the background.
func StartMembership(ctx context.Context, store meta.Store, n meta.Node, interval time.Duration, log *slog.Logger) (*Membership, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if n.StartedAt.IsZero() {
		n.StartedAt = time.Now()
	}
	if err := store.Heartbeat(ctx, n); err != nil {
		return nil, fmt.Errorf("register node %s: %w", n.ID, err)
	}
	m := &Membership{store: store, node: n, interval: interval, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go m.loop()
	return m, nil
}

func (m *Membership) loop() {
	defer close(m.done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), m.interval)
			if err := m.store.Heartbeat(ctx, m.node); err != nil {
				m.log.Warn("node heartbeat failed", "node", m.node.ID, "err", err)
			}
			cancel()
		}
	}
}

// Close stops heartbeating and removes the node's registration.
func (m *Membership) Close(ctx context.Context) error {
	close(m.stop)
	<-m.done
	if err := m.store.RemoveNode(ctx, m.node.ID); err != nil {
		return fmt.Errorf("deregister node %s: %w", m.node.ID, err)
	}
	return nil
}

// ClusterStatus is what the admin view shows: the live nodes and who holds
// which lease (partitions and group coordinator slots) at what epoch.
type ClusterStatus struct {
	Nodes  []meta.Node
	Leases []meta.Lease
}

// ClusterStatus reads the cluster's membership and leases. Nodes whose
// heartbeat is older than within are not listed.
func (b *Broker) ClusterStatus(ctx context.Context, within time.Duration) (ClusterStatus, error) {
	nodes, err := b.meta.LiveNodes(ctx, within)
	if err != nil {
		return ClusterStatus{}, fmt.Errorf("list nodes: %w", err)
	}
	leases, err := b.meta.Leases(ctx, "")
	if err != nil {
		return ClusterStatus{}, fmt.Errorf("list leases: %w", err)
	}
	return ClusterStatus{Nodes: nodes, Leases: leases}, nil
}
