// Package kafkatest starts a whole Morax node in-process for tests that talk
// to it with real Kafka clients: metadata store, object store, broker core,
// group coordinator and Kafka listener on 127.0.0.1.
//
// Client test suites (franz-go here; sarama, kafka-go, librdkafka, kcat,
// kafkajs elsewhere) share it so that each runs against both deployments
// the same way:
//
//	for _, b := range kafkatest.Backends() {
//		t.Run(b.Name, func(t *testing.T) {
//			n := kafkatest.Start(t, kafkatest.Options{Backend: b})
//			// dial n.Addr
//		})
//	}
package kafkatest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/internal/teststores"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/wire/kafka"
)

// Backend opens the stores a node runs on; see internal/teststores.
type Backend = teststores.Backend

// Embedded is the zero-config deployment: SQLite metadata and objects in
// files, both in the test's temporary directory.
func Embedded() Backend { return teststores.Embedded() }

// PostgresMinIO is the cluster deployment: PostgreSQL metadata and MinIO
// objects from the dev servers (dev/up.sh). Tests using it are skipped when
// the servers' variables are unset, unless MORAX_REQUIRE_INTEGRATION=1.
func PostgresMinIO() Backend { return teststores.PostgresMinIO() }

// Backends lists both deployments, for tests that must pass on each.
func Backends() []Backend { return teststores.All() }

// Options shape a test node. The zero value is an embedded node with
// auto-creation on, three partitions for auto-created topics and a short
// linger.
type Options struct {
	// Backend defaults to Embedded.
	Backend Backend
	// Broker adjusts the broker's options before it starts.
	Broker func(*actors.Options)
	// Groups adjusts the group coordinator's options before it starts.
	Groups func(*actors.GroupOptions)
	// Server adjusts the Kafka server's config before it starts.
	Server func(*kafka.Config)
	// Logger receives the node's logs; nil logs warnings and errors to
	// stderr (so a failing test shows why), or everything when
	// MORAX_TEST_LOG=debug.
	Logger *slog.Logger
}

// Node is a running test node. Its parts are exposed for tests that check
// state behind the protocol.
type Node struct {
	// Addr is the Kafka listener's host:port.
	Addr string
	// Broker, Groups and Server are the node's running parts.
	Broker *actors.Broker
	Groups *actors.Groups
	Server *kafka.Server
	// Meta and Objects are the stores it runs on.
	Meta    meta.Store
	Objects objstore.Store
	// Registry holds the node's metrics.
	Registry *prometheus.Registry
}

// Start starts a node and stops it when the test ends.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	if opts.Backend.Open == nil {
		opts.Backend = Embedded()
	}
	logger := opts.Logger
	if logger == nil {
		level := slog.LevelWarn
		if os.Getenv("MORAX_TEST_LOG") == "debug" {
			level = slog.LevelDebug
		}
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	store, objects := opts.Backend.Open(t)
	reg := prometheus.NewRegistry()
	bo := actors.Options{
		NodeID:  "test-node",
		Linger:  2 * time.Millisecond,
		Logger:  logger.With("component", "broker"),
		Metrics: reg,
	}
	if opts.Broker != nil {
		opts.Broker(&bo)
	}
	broker, err := actors.New(bo, store, objects)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	var gopts actors.GroupOptions
	if opts.Groups != nil {
		opts.Groups(&gopts)
	}
	groups := actors.NewGroups(broker, gopts)
	cfg := kafka.Config{
		Broker:            broker,
		Groups:            groups,
		ListenAddr:        "127.0.0.1:0",
		AutoCreateTopics:  true,
		DefaultPartitions: 3,
		Logger:            logger.With("component", "kafka"),
		Metrics:           reg,
	}
	if opts.Server != nil {
		opts.Server(&cfg)
	}
	srv, err := kafka.NewServer(cfg)
	if err != nil {
		t.Fatalf("kafka server: %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("kafka listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	n := &Node{
		Addr: srv.Addr().String(), Broker: broker, Groups: groups, Server: srv,
		Meta: store, Objects: objects, Registry: reg,
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close kafka server: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("kafka serve: %v", err)
		}
		if err := groups.Close(ctx); err != nil {
			t.Errorf("close groups: %v", err)
		}
		if err := broker.Close(ctx); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return n
}
