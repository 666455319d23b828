// Package node assembles a Morax node from its configuration: it builds
// the parts in order, runs them, and stops them in the reverse order.
//
// New builds, in this order:
//
//  1. the data directory, the node id and, for an embedded node, the
//     directory's lock, which proves that a previous run on it is dead;
//  2. the metrics registry, the metadata store, the object store and the
//     pprof listener (when configured);
//  3. the broker, then protoactor remote (clustered nodes), which takes the
//     broker's actor system; then, holding the lock, the previous run's
//     leases are released so its partitions need not wait out their TTL;
//  4. the group coordinator;
//  5. the Kafka and WAL servers, both bound before either serves, so a
//     taken port fails the start and not the first client;
//  6. the node's registration in the nodes table, with the addresses bound,
//     and the ownership loop, which needs the registration to find itself
//     among the live nodes.
//
// Each part registers how it stops as it is built. If a step fails, New
// stops what it built, last first, and returns the error; Run stops
// everything the same way once its context ends or a server fails. The
// reverse order deregisters the node first, so other nodes stop choosing
// it and take each lease as soon as the broker's drain releases it; closes
// the servers before the group coordinator and the broker they call; stops
// remote after the broker, so other nodes' requests get their answers; and
// closes the stores and the lock last.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/wal"
)

// ErrClosed is returned by Run on a node that was already stopped (by an
// earlier Run or by Close).
var ErrClosed = errors.New("node: already stopped")

// Node is one Morax node: its stores, broker, group coordinator, servers
// and cluster membership, built by New from a config.Config.
type Node struct {
	cfg config.Config
	log *slog.Logger
	id  string

	// Set while New builds the node and never changed after it returns.
	self      meta.Node // as registered in the nodes table
	reg       *prometheus.Registry
	dirLocked bool
	store     meta.Store
	objects   objstore.Store
	broker    *actors.Broker
	remote    *actors.Remote
	groups    *actors.Groups
	kafka     *kafka.Server
	wal       *wal.Server

	// mu guards the fields below.
	mu sync.Mutex
	// stops are the parts built so far, in build order; teardown runs them
	// backwards and empties the list.
	stops   []part
	running bool // Run was called
	stopped bool // teardown ran
}

// part is how one built part of the node stops.
type part struct {
	name string
	stop func(context.Context) error
}

// New builds a node from cfg, in the order the package documentation
// gives, and returns it ready to Run: its listeners are bound and it is
// registered in the cluster. ctx bounds the start (opening the stores,
// registering). On any error New stops what it had built, last first,
// within server.shutdown_timeout, and returns the error with any error of
// that teardown. A nil logger discards the node's logs.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node: invalid configuration:\n%w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: logger}
	defer func() {
		if err == nil {
			return
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.Duration())
		defer cancel()
		if terr := n.Close(stopCtx); terr != nil {
			err = errors.Join(err, fmt.Errorf("stop after the failed start: %w", terr))
		}
	}()
	for _, step := range []func(context.Context) error{
		n.openDataDir,
		n.openStores,
		n.startBroker,
		n.startGroups,
		n.bindServers,
		n.join,
	} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// onStop registers how a part just built stops.
func (n *Node) onStop(name string, stop func(context.Context) error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stops = append(n.stops, part{name, stop})
}

func (n *Node) openDataDir(context.Context) error {
	if err := os.MkdirAll(n.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	id, err := resolveNodeID(n.cfg)
	if err != nil {
		return err
	}
	n.id = id
	if !n.cfg.Embedded() {
		// Nodes sharing PostgreSQL hold leases per process incarnation
		// and wait out a dead one's; no lock can prove another machine's
		// process dead.
		return nil
	}
	release, err := lockDataDir(n.cfg.DataDir)
	if err != nil {
		return err
	}
	if release != nil {
		n.dirLocked = true
		n.onStop("data dir lock", func(context.Context) error { return release() })
	}
	return nil
}

func (n *Node) openStores(ctx context.Context) error {
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, metaDesc, err := openMeta(ctx, n.cfg)
	if err != nil {
		return err
	}
	n.store = store
	n.onStop("metadata store", func(context.Context) error { return store.Close() })
	objects, objDesc, err := openObjects(ctx, n.cfg)
	if err != nil {
		return err
	}
	n.onStop("object store", func(context.Context) error { return objects.Close() })
	metered, err := objstore.NewMetered(objects, n.reg)
	if err != nil {
		return fmt.Errorf("object store metrics: %w", err)
	}
	n.objects = metered
	n.log.Info("backends ready", "node", n.id, "meta", metaDesc, "objects", objDesc)
	if addr := n.cfg.Telemetry.PprofListenAddr; addr != "" {
		stop, err := servePprof(addr, n.log)
		if err != nil {
			return err
		}
		n.onStop("pprof listener", stop)
	}
	return nil
}

func (n *Node) startBroker(ctx context.Context) error {
	opts := brokerOptions(n.cfg)
	opts.NodeID, opts.Logger, opts.Metrics = n.id, n.log, n.reg
	b, err := actors.New(opts, n.store, n.objects)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	n.broker = b
	n.onStop("broker", func(ctx context.Context) error {
		err := b.Close(ctx)
		if n.remote != nil {
			// After the broker: until its drain ends, remote carries the
			// answers to requests other nodes sent its partitions.
			n.remote.Close()
		}
		return err
	})
	// Nodes send each other requests for the partitions they own (a WAL
	// request reaches its log's owner this way). An embedded node (SQLite
	// metadata) is alone by construction and has nobody to talk to.
	if !n.cfg.Embedded() {
		// Before anything listens or the cluster starts: the actor system
		// takes its address from it.
		rem, err := actors.StartRemote(b, remoteConfig(n.cfg))
		if err != nil {
			return err
		}
		n.remote = rem
	}
	if n.dirLocked {
		// A previous run that crashed left its leases behind; it is dead
		// (we hold its lock), so waiting for them to expire would only
		// keep its partitions unavailable for a lease TTL.
		released, err := n.store.ReleaseStaleLeases(ctx, n.id, b.LeaseOwner())
		if err != nil {
			return fmt.Errorf("release the previous run's leases: %w", err)
		}
		if released > 0 {
			n.log.Info("took back the leases of a previous run that did not stop cleanly", "leases", released)
		}
	}
	return nil
}

func (n *Node) startGroups(context.Context) error {
	opts := groupOptions(n.cfg)
	opts.OwnsSlot = n.broker.OwnsSlot
	n.groups = actors.NewGroups(n.broker, opts)
	n.onStop("group coordinator", n.groups.Close)
	return nil
}

func (n *Node) bindServers(context.Context) error {
	kcfg := kafkaConfig(n.cfg)
	kcfg.Broker, kcfg.Groups = n.broker, n.groups
	kcfg.Logger, kcfg.Metrics = n.log.With("component", "kafka"), n.reg
	ks, err := kafka.NewServer(kcfg)
	if err != nil {
		return fmt.Errorf("kafka server: %w", err)
	}
	n.kafka = ks
	n.onStop("kafka server", ks.Close)

	wcfg := walConfig(n.cfg)
	wcfg.Broker, wcfg.Logger, wcfg.Registry = n.broker, n.log.With("component", "wal"), n.reg
	if n.cfg.Telemetry.Metrics.Enabled {
		wcfg.Metrics = promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{})
	}
	ws, err := wal.NewServer(wcfg)
	if err != nil {
		return fmt.Errorf("wal server: %w", err)
	}
	n.wal = ws
	n.onStop("wal server", ws.Close)

	if err := ks.Listen(); err != nil {
		return fmt.Errorf("kafka listener: %w", err)
	}
	if err := ws.Listen(); err != nil {
		return fmt.Errorf("wal listener: %w", err)
	}
	return nil
}

func (n *Node) join(ctx context.Context) error {
	kafkaAddr := kafkaAdvertised(n.cfg)
	if kafkaAddr == "" {
		kafkaAddr = n.kafka.Addr().String()
	}
	n.self = meta.Node{ID: n.id, KafkaAddr: kafkaAddr, WALAddr: n.wal.Addr().String(), RemoteAddr: n.RemoteAddr()}
	m, err := actors.StartMembership(ctx, n.store, n.self, n.cfg.Cluster.HeartbeatInterval.Duration(), n.log)
	if err != nil {
		return err
	}
	n.onStop("membership", m.Close)
	co := clusterOptions(n.cfg)
	co.Self = n.self
	co.OnSlotLost = func(slot int) {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Server.ShutdownTimeout.Duration())
		defer cancel()
		if err := n.groups.ReleaseSlot(ctx, slot); err != nil {
			n.log.Warn("unload groups of a lost slot", "slot", slot, "err", err)
		}
	}
	// Broker.Close stops the ownership loop, so it registers no stop of
	// its own.
	if err := n.broker.StartCluster(co); err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	return nil
}

// Run serves Kafka and WAL clients until ctx ends or a server fails, then
// stops every part in reverse order of construction within
// server.shutdown_timeout. It returns nil after a clean stop on ctx, else
// the server's failure and any errors of the stop. A node runs once: Run
// on a stopped node returns ErrClosed.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	switch {
	case n.stopped:
		n.mu.Unlock()
		return ErrClosed
	case n.running:
		n.mu.Unlock()
		return errors.New("node: Run called twice")
	}
	n.running = true
	n.mu.Unlock()

	served := make(chan error, 2)
	go func() { served <- n.kafka.Serve() }()
	go func() { served <- n.wal.Serve() }()
	n.log.Info("morax node started", "node", n.id, "kafka", n.kafka.Addr().String(),
		"kafka_advertised", n.self.KafkaAddr, "wal", n.wal.Addr().String())

	var errs []error
	waiting := 2
	select {
	case <-ctx.Done():
		n.log.Info("stopping")
	case err := <-served:
		waiting--
		if err == nil && !n.isStopped() {
			err = errors.New("a server stopped serving")
		}
		if err != nil {
			n.log.Error("server failed; stopping", "err", err)
			errs = append(errs, err)
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), n.cfg.Server.ShutdownTimeout.Duration())
	defer cancel()
	errs = append(errs, n.teardown(stopCtx))
	// Serve returns once its server is closed; waiting for it means no
	// goroutine of the node outlives Run.
wait:
	for ; waiting > 0; waiting-- {
		select {
		case err := <-served:
			errs = append(errs, err)
		case <-stopCtx.Done():
			errs = append(errs, fmt.Errorf("node: servers still serving after the shutdown timeout: %w", stopCtx.Err()))
			break wait
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n.log.Info("stopped")
	return nil
}

// Close stops a node that New built but that is not to Run, or stops a
// running node from outside Run (Run then returns once its servers have
// stopped). It uses ctx as the deadline of the stop, and does nothing on a
// node already stopped.
func (n *Node) Close(ctx context.Context) error {
	return n.teardown(ctx)
}

func (n *Node) isStopped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopped
}

// teardown stops the parts built so far, last first, each once. A part
// that fails to stop does not keep the ones before it running.
func (n *Node) teardown(ctx context.Context) error {
	n.mu.Lock()
	stops := n.stops
	n.stops, n.stopped = nil, true
	n.mu.Unlock()
	var errs []error
	for _, p := range slices.Backward(stops) {
		if err := p.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", p.name, err))
			continue
		}
		n.log.Debug("stopped", "part", p.name)
	}
	return errors.Join(errs...)
}

// ID is the node's id: cluster.node_id, or the one generated on its first
// start and kept in the data directory.
func (n *Node) ID() string { return n.id }

// KafkaAddr is the address the Kafka listener bound (with listen port 0,
// the port chosen).
func (n *Node) KafkaAddr() net.Addr { return n.kafka.Addr() }

// WALAddr is the address the WAL HTTP listener bound (with listen port 0,
// the port chosen).
func (n *Node) WALAddr() net.Addr { return n.wal.Addr() }

// RemoteAddr is the address other nodes send partition requests to, or ""
// for an embedded node, which runs no remote.
func (n *Node) RemoteAddr() string {
	if n.remote == nil {
		return ""
	}
	return n.remote.Addr()
}
