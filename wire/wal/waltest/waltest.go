// Package waltest starts a real Morax node in-process, a Broker and its
// WAL HTTP server on a loopback port, for tests of the WAL API, its client,
// the CLI and anything else that wants a node to talk to.
//
// Two backends are available, the deployments every end-to-end test should
// cover: "embedded" (SQLite metadata and objects in a temporary directory)
// and "pg+minio" (a fresh PostgreSQL database and MinIO bucket from
// internal/itest; skipped, or failed under MORAX_REQUIRE_INTEGRATION=1,
// when those servers are not configured).
package waltest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/litemeta"
	"github.com/morax-dev/morax/persistence/meta/pgmeta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/wire/wal"
	"github.com/morax-dev/morax/wire/wal/client"
)

// Backend names.
const (
	Embedded = "embedded"
	PGMinIO  = "pg+minio"
)

// Backends lists the backends ForEachBackend runs on.
func Backends() []string { return []string{Embedded, PGMinIO} }

// Options configure a node. The zero value is an embedded node with the
// broker's default options.
type Options struct {
	// Backend is Embedded (default) or PGMinIO.
	Backend string
	// Broker are the broker's options; zero fields take actors' defaults.
	// Metrics and Logger are set by Start unless given.
	Broker actors.Options
	// Server adjusts the WAL server's config before it starts (Broker,
	// ListenAddr and Metrics are filled in already).
	Server func(*wal.Config)
	// Logger receives the node's logs; discarded when nil. Tests can pass
	// slog.New(slog.NewTextHandler(t.Output(), nil)) to see them.
	Logger *slog.Logger
}

// Node is a running node.
type Node struct {
	// Backend is the backend it runs on.
	Backend string
	Broker  *actors.Broker
	Server  *wal.Server
	// URL is the WAL API's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Client is a client for URL.
	Client *client.Client
	// Registry holds the node's metrics, also served at URL/metrics.
	Registry *prometheus.Registry

	closers []func(context.Context) error
}

// Close stops the server, drains the broker and closes the stores.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	for i := len(n.closers) - 1; i >= 0; i-- {
		if err := n.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	n.closers = nil
	return errors.Join(errs...)
}

// Start starts a node for a test and stops it when the test ends.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	var stores stores
	var err error
	switch opts.Backend {
	case "", Embedded:
		opts.Backend = Embedded
		stores, err = openEmbedded(context.Background(), t.TempDir())
	case PGMinIO:
		pg, s3 := itest.PostgresURL(t), itest.S3(t)
		stores, err = openPGMinIO(context.Background(), pg, s3, "t-"+itest.RandomName(12))
	default:
		t.Fatalf("waltest: unknown backend %q", opts.Backend)
	}
	if err != nil {
		t.Fatalf("waltest: %v", err)
	}
	n, err := start(stores, opts)
	if err != nil {
		t.Fatalf("waltest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("waltest: stop node: %v", err)
		}
	})
	return n
}

// ForEachBackend runs fn as a subtest on a fresh node of every backend.
func ForEachBackend(t *testing.T, opts Options, fn func(t *testing.T, n *Node)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b, func(t *testing.T) {
			o := opts
			o.Backend = b
			fn(t, Start(t, o))
		})
	}
}

// StartEmbedded starts an embedded node with its data under dir, outside
// any test (for Example functions and tools). The caller must Close it.
func StartEmbedded(ctx context.Context, dir string, opts Options) (*Node, error) {
	s, err := openEmbedded(ctx, dir)
	if err != nil {
		return nil, err
	}
	opts.Backend = Embedded
	return start(s, opts)
}

// stores are a node's metadata and object stores and how its storage is
// described to create requests.
type stores struct {
	meta     meta.Store
	objects  objstore.Store
	identity wal.StorageIdentity
}

func openEmbedded(ctx context.Context, dir string) (stores, error) {
	m, err := litemeta.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		return stores{}, fmt.Errorf("open embedded metadata: %w", err)
	}
	o, err := objstore.NewFS(filepath.Join(dir, "objects"))
	if err != nil {
		m.Close()
		return stores{}, fmt.Errorf("open object directory: %w", err)
	}
	return stores{meta: m, objects: o, identity: wal.StorageIdentity{Scheme: "fs"}}, nil
}

func openPGMinIO(ctx context.Context, pgURL string, s3 itest.S3Config, bucket string) (stores, error) {
	m, err := pgmeta.Open(ctx, pgURL)
	if err != nil {
		return stores{}, fmt.Errorf("open PostgreSQL metadata: %w", err)
	}
	o, err := objstore.NewS3(ctx, objstore.S3Config{
		Bucket: bucket, Region: s3.Region, Endpoint: s3.Endpoint,
		AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey, PathStyle: true,
	})
	if err != nil {
		m.Close()
		return stores{}, fmt.Errorf("open S3: %w", err)
	}
	if err := o.EnsureBucket(ctx); err != nil {
		o.Close()
		m.Close()
		return stores{}, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	id := wal.StorageIdentity{Scheme: "s3", Bucket: bucket, Endpoint: s3.Endpoint, Region: s3.Region}
	return stores{meta: m, objects: o, identity: id}, nil
}

// start runs a broker and a WAL server on s; on failure it closes s.
func start(s stores, opts Options) (*Node, error) {
	n := &Node{Backend: opts.Backend, Registry: prometheus.NewRegistry()}
	n.closers = append(n.closers,
		func(context.Context) error { return s.meta.Close() },
		func(context.Context) error { return s.objects.Close() })
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bo := opts.Broker
	if bo.Metrics == nil {
		bo.Metrics = n.Registry
	}
	if bo.Logger == nil {
		bo.Logger = logger.With("component", "broker")
	}
	b, err := actors.New(bo, s.meta, s.objects)
	if err != nil {
		_ = n.Close(context.Background())
		return nil, fmt.Errorf("start broker: %w", err)
	}
	n.Broker = b
	n.closers = append(n.closers, b.Close)
	cfg := wal.Config{
		Broker:     b,
		ListenAddr: "127.0.0.1:0",
		Storage:    s.identity,
		Metrics:    promhttp.HandlerFor(n.Registry, promhttp.HandlerOpts{}),
		Registry:   n.Registry,
		Logger:     logger.With("component", "wal"),
	}
	if opts.Server != nil {
		opts.Server(&cfg)
	}
	srv, err := wal.NewServer(cfg)
	if err != nil {
		_ = n.Close(context.Background())
		return nil, fmt.Errorf("new WAL server: %w", err)
	}
	if err := srv.Start(); err != nil {
		_ = n.Close(context.Background())
		return nil, fmt.Errorf("start WAL server: %w", err)
	}
	n.Server = srv
	n.closers = append(n.closers, srv.Close)
	n.URL = "http://" + srv.Addr().String()
	if n.Client, err = client.New(n.URL); err != nil {
		_ = n.Close(context.Background())
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Client.WaitHealthy(ctx, client.Backoff{Initial: 5 * time.Millisecond}); err != nil {
		_ = n.Close(context.Background())
		return nil, fmt.Errorf("WAL server not healthy: %w", err)
	}
	return n, nil
}

// Post sends body to path on the node with a raw HTTP client (no Morax
// client in between) and returns the status and body: what compatibility
// and bad-input tests need to see exact bytes.
func (n *Node) Post(t testing.TB, path, body string) (int, string) {
	t.Helper()
	return n.Do(t, http.MethodPost, path, body)
}

// Do sends a request with a raw HTTP client and returns status and body.
func (n *Node) Do(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, n.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// TempDir makes a directory for StartEmbedded outside tests; the caller
// removes it.
func TempDir() (string, error) { return os.MkdirTemp("", "morax-waltest-") }
