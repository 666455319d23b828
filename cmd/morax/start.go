package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/litemeta"
	"github.com/morax-dev/morax/persistence/meta/pgmeta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/wal"
)

// shutdownTimeout bounds a graceful stop: listeners close, partitions
// commit what they buffered, leases are released.
const shutdownTimeout = 8 * time.Second

func runStart(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("morax start", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config-file", "", "TOML config file (default: embedded mode, no file)")
	dataDir := fs.String("data-dir", "", "data directory (overrides data_dir)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*configFile, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "morax: invalid configuration:\n%v\n", err)
		return 2
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	logger := newLogger(cfg.Telemetry.Log, stderr)
	if err := startNode(ctx, cfg, logger); err != nil {
		logger.Error("node failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// startNode builds the node from cfg, runs it until ctx ends, then stops
// every part in reverse order.
func startNode(ctx context.Context, cfg config.Config, logger *slog.Logger) (err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	nodeID, err := resolveNodeID(cfg)
	if err != nil {
		return err
	}
	// An embedded node is alone on its data directory; the lock proves it
	// (below, it lets the node take back its previous run's leases).
	var dirLocked bool
	if cfg.Embedded() {
		unlock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		if unlock != nil {
			dirLocked = true
			defer unlock()
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, metaDesc, err := openMeta(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	objects, objDesc, err := openObjects(ctx, cfg)
	if err != nil {
		return err
	}
	defer objects.Close()
	metered, err := objstore.NewMetered(objects, reg)
	if err != nil {
		return fmt.Errorf("object store metrics: %w", err)
	}
	logger.Info("backends ready", "node", nodeID, "meta", metaDesc, "objects", objDesc)
	if addr := cfg.Telemetry.PprofListenAddr; addr != "" {
		stop, err := servePprof(addr, logger)
		if err != nil {
			return err
		}
		defer stop()
	}

	broker, err := actors.New(actors.Options{
		NodeID:            nodeID,
		FlushBytes:        int(cfg.Partition.FlushBytes),
		Linger:            cfg.Partition.Linger.Duration(),
		ObjectBytes:       int(cfg.Storage.ObjectBytes),
		ObjectLinger:      cfg.Storage.ObjectLinger.Duration(),
		MaxUploads:        int(cfg.Storage.MaxUploads),
		MaxBufferBytes:    cfg.Partition.MaxBufferBytes,
		NodeBufferBytes:   cfg.Partition.NodeBufferBytes,
		TailCacheBytes:    cfg.Partition.TailCacheBytes,
		BlockCacheBytes:   cfg.Partition.BlockCacheBytes,
		MaxMessageBytes:   int(cfg.Partition.MaxMessageBytes),
		LeaseTTL:          cfg.Cluster.LeaseTTL.Duration(),
		RetentionInterval: cfg.Partition.RetentionCheckInterval.Duration(),
		OrphanMinAge:      cfg.Partition.OrphanMinAge.Duration(),
		Logger:            logger,
		Metrics:           reg,
	}, store, metered)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	// Other nodes forward WAL requests for the logs this node owns over
	// protoactor remote. It starts before anything listens or the cluster
	// starts: the actor system takes its address from it. An embedded node
	// (SQLite metadata) is alone by construction and has nothing to forward.
	remoteAddr := ""
	if !cfg.Embedded() {
		rem, err := wal.StartRemote(broker.ActorSystem(), cfg.Cluster.RemoteListenAddr, int(cfg.Server.WALBroker.MaxBodyBytes))
		if err != nil {
			return err
		}
		defer rem.Close() // after the broker has stopped, below
		remoteAddr = rem.Addr()
	}
	if dirLocked {
		// A previous run that crashed left its leases behind; it is dead
		// (we hold its lock), so waiting for them to expire would only
		// keep its partitions unavailable for a lease TTL.
		n, err := store.ReleaseStaleLeases(ctx, nodeID, broker.LeaseOwner())
		if err != nil {
			return errors.Join(fmt.Errorf("release the previous run's leases: %w", err), broker.Close(ctx))
		}
		if n > 0 {
			logger.Info("took back the leases of a previous run that did not stop cleanly", "leases", n)
		}
	}
	groups := actors.NewGroups(broker, actors.GroupOptions{Slots: actors.DefaultGroupSlots, OwnsSlot: broker.OwnsSlot})

	kafkaSrv, err := kafka.NewServer(kafka.Config{
		Broker:            broker,
		Groups:            groups,
		ListenAddr:        cfg.Server.KafkaBroker.ListenAddr,
		AdvertisedAddr:    cfg.KafkaAdvertised(),
		MaxFrameBytes:     int32(cfg.Server.KafkaBroker.MaxFrameBytes),
		IdleTimeout:       cfg.Server.KafkaBroker.IdleTimeout.Duration(),
		AutoCreateTopics:  cfg.Server.KafkaBroker.AutoCreateTopics,
		DefaultPartitions: cfg.Server.KafkaBroker.DefaultPartitions,
		Logger:            logger.With("component", "kafka"),
		Metrics:           reg,
	})
	if err != nil {
		return fmt.Errorf("kafka server: %w", err)
	}
	walCfg := wal.Config{
		Broker:             broker,
		ListenAddr:         cfg.Server.WALBroker.ListenAddr,
		MaxBodyBytes:       int(cfg.Server.WALBroker.MaxBodyBytes),
		MaxWait:            cfg.Server.WALBroker.MaxWait.Duration(),
		AllowPerLogStorage: cfg.Server.WALBroker.AllowPerLogStorage,
		Storage: wal.StorageIdentity{
			Scheme:   cfg.Storage.Scheme,
			Bucket:   cfg.Storage.Bucket,
			Endpoint: cfg.Storage.Endpoint,
			Region:   cfg.Storage.Region,
		},
		Logger:         logger.With("component", "wal"),
		ServeForwarded: remoteAddr != "",
	}
	if cfg.Telemetry.Metrics.Enabled {
		walCfg.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	walSrv, err := wal.NewServer(walCfg)
	if err != nil {
		return fmt.Errorf("wal server: %w", err)
	}
	// Bind both listeners before serving either, so a taken port fails the
	// start cleanly.
	if err := kafkaSrv.Listen(); err != nil {
		return fmt.Errorf("kafka listener: %w", err)
	}
	if err := walSrv.Listen(); err != nil {
		return fmt.Errorf("wal listener: %w", err)
	}
	self := meta.Node{ID: nodeID, KafkaAddr: cfg.KafkaAdvertised(), WALAddr: walSrv.Addr().String(), RemoteAddr: remoteAddr}
	membership, err := actors.StartMembership(ctx, store, self, cfg.Cluster.HeartbeatInterval.Duration(), logger)
	if err != nil {
		return err
	}
	err = broker.StartCluster(actors.ClusterOptions{
		Self:  self,
		Slots: actors.DefaultGroupSlots,
		OnSlotLost: func(slot int) {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := groups.ReleaseSlot(ctx, slot); err != nil {
				logger.Warn("unload groups of a lost slot", "slot", slot, "err", err)
			}
		},
	})
	if err != nil {
		return errors.Join(fmt.Errorf("start cluster: %w", err), membership.Close(ctx))
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- kafkaSrv.Serve() }()
	go func() { serveErr <- walSrv.Serve() }()
	logger.Info("morax node started", "node", nodeID, "kafka", kafkaSrv.Addr().String(),
		"kafka_advertised", cfg.KafkaAdvertised(), "wal", walSrv.Addr().String())

	select {
	case <-ctx.Done():
		logger.Info("stopping")
	case err = <-serveErr:
		logger.Error("listener failed; stopping", "err", err)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	errs := []error{err}
	// Deregister first, so the other nodes stop choosing this one and take
	// each lease as soon as the drain below releases it.
	errs = append(errs, kafkaSrv.Close(stopCtx), walSrv.Close(stopCtx), membership.Close(stopCtx), groups.Close(stopCtx),
		broker.Close(stopCtx))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

func openMeta(ctx context.Context, cfg config.Config) (meta.Store, string, error) {
	if cfg.Embedded() {
		s, err := litemeta.Open(ctx, cfg.MetaPath())
		if err != nil {
			return nil, "", fmt.Errorf("open embedded metadata %s: %w", cfg.MetaPath(), err)
		}
		return s, "embedded " + cfg.MetaPath(), nil
	}
	url := cfg.Server.Meta.ServiceURL
	s, err := pgmeta.Open(ctx, url.Reveal())
	if err != nil {
		return nil, "", fmt.Errorf("open PostgreSQL metadata %s: %w", url, err)
	}
	return s, "postgresql " + url.String(), nil
}

func openObjects(ctx context.Context, cfg config.Config) (objstore.Store, string, error) {
	st := cfg.Storage
	if st.Scheme == "fs" {
		s, err := objstore.NewFS(cfg.ObjectsDir())
		if err != nil {
			return nil, "", fmt.Errorf("open object folder %s: %w", cfg.ObjectsDir(), err)
		}
		return s, "fs " + cfg.ObjectsDir(), nil
	}
	s, err := objstore.NewS3(ctx, objstore.S3Config{
		Bucket:          st.Bucket,
		Region:          st.Region,
		Endpoint:        st.Endpoint,
		AccessKeyID:     st.AccessKeyID,
		SecretAccessKey: st.SecretAccessKey.Reveal(),
		PathStyle:       st.PathStyle,
		Prefix:          st.Prefix,
		RequestTimeout:  st.RequestTimeout.Duration(),
	})
	if err != nil {
		return nil, "", fmt.Errorf("open S3 bucket %s: %w", st.Bucket, err)
	}
	return s, fmt.Sprintf("s3 %s/%s", st.Endpoint, st.Bucket), nil
}

// resolveNodeID returns the configured node id, or the one persisted in the
// data dir (created on first start), so a node keeps its id across restarts.
func resolveNodeID(cfg config.Config) (string, error) {
	if cfg.Cluster.NodeID != "" {
		return cfg.Cluster.NodeID, nil
	}
	path := cfg.NodeIDPath()
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	id := "node-" + hex.EncodeToString(raw[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	if err := os.Rename(tmp, filepath.Clean(path)); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}
