// Package kafka serves the Kafka wire protocol on top of the broker core
// (package actors).
//
// Each accepted socket gets one connection actor plus a read loop and a write
// loop (see conn.go). The read loop frames and decodes requests with kmsg and
// hands each to its API handler, in request order; handlers answer whenever
// the partitions they asked answer, and the connection actor puts the
// responses back in request order before the write loop sends them.
//
// Every API key lives in its own file named after its key number, with a
// header comment listing the versions it serves; the ApiVersions answer is
// built from that table, so it never advertises what is not served.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/wire/internal/connlimit"
)

// DefaultClusterID names the cluster in Metadata and DescribeCluster when
// Config.ClusterID is empty. It is a name every node must agree on, not a
// tunable, so it is not a config key.
const DefaultClusterID = "morax"

// DefaultConfig holds the values used for zero fields of Config, read from
// the server.kafka_broker section of config.Default() (Kafka's own
// defaults: socket.request.max.bytes, connections.max.idle.ms,
// num.partitions). The fields it leaves zero have no default: their zero
// value means something (AutoCreateTopics off) or they belong to the caller.
func DefaultConfig() Config {
	k := config.Default().Server.KafkaBroker
	return Config{
		ClusterID:         DefaultClusterID,
		MaxFrameBytes:     int32(k.MaxFrameBytes),
		IdleTimeout:       k.IdleTimeout.Duration(),
		MaxInflight:       int(k.MaxInflightRequests),
		DefaultPartitions: k.DefaultPartitions,

		MaxConnections:           int(k.MaxConnections),
		MaxConnectionsPerIP:      int(k.MaxConnectionsPerIP),
		MaxInflightResponseBytes: k.MaxInflightResponseBytes,
	}
}

// Config configures a Server. Zero fields take the values of DefaultConfig.
type Config struct {
	// Broker is the node's core; required.
	Broker *actors.Broker
	// Groups is the consumer-group coordinator the group APIs talk to.
	Groups *actors.Groups
	// ListenAddr is the host:port to listen on ("127.0.0.1:0" picks a port).
	ListenAddr string
	// AdvertisedAddr is the host:port clients are told to connect to. Empty
	// means the listener's address, with the machine's host name in place
	// of an unspecified IP.
	AdvertisedAddr string
	// ClusterID is reported to clients; all nodes of a cluster must agree.
	ClusterID string
	// MaxFrameBytes bounds one request; a larger frame closes the
	// connection, as Kafka does.
	MaxFrameBytes int32
	// IdleTimeout closes a connection that sent nothing and awaits nothing
	// for this long.
	IdleTimeout time.Duration
	// MaxInflight bounds the requests one connection may have awaiting
	// responses; the read loop stops reading while it is reached.
	MaxInflight int
	// MaxConnections bounds the connections open at once, and
	// MaxConnectionsPerIP those from one source address; connections over
	// either are closed as soon as they are accepted.
	MaxConnections int
	// MaxConnectionsPerIP: see MaxConnections.
	MaxConnectionsPerIP int
	// MaxInflightResponseBytes bounds the encoded responses of one
	// connection not yet written: past it the read loop reads no further
	// request until the client reads.
	MaxInflightResponseBytes int64
	// AutoCreateTopics lets Metadata create the topics it is asked about,
	// as Kafka's auto.create.topics.enable does.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of topics created with partitions -1.
	DefaultPartitions int32
	// Logger receives connection and protocol logs.
	Logger *slog.Logger
	// Metrics is where the server registers its metrics; nil registers none.
	Metrics prometheus.Registerer
}

// abortGrace bounds the wait for aborted connections to finish in Close.
const abortGrace = 5 * time.Second

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = d.MaxInflight
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.MaxConnectionsPerIP <= 0 {
		c.MaxConnectionsPerIP = d.MaxConnectionsPerIP
	}
	if c.MaxInflightResponseBytes <= 0 {
		c.MaxInflightResponseBytes = d.MaxInflightResponseBytes
	}
	if c.DefaultPartitions <= 0 {
		c.DefaultPartitions = d.DefaultPartitions
	}
	if c.ClusterID == "" {
		c.ClusterID = d.ClusterID
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server serves Kafka clients on one listener.
type Server struct {
	cfg     Config
	broker  *actors.Broker
	log     *slog.Logger
	metrics *metrics
	// connKind is the owner kind of connection actors, for their
	// mailboxes' metrics.
	connKind *actors.OwnerKind
	handlers map[int16]*apiHandler
	// selfID is this node's Kafka broker id (BrokerID of its node id).
	selfID int32
	// dupIDWarned is set once a broker id collision has been logged.
	dupIDWarned atomic.Bool
	// versions is the ApiVersions table, sorted by key; built once from
	// handlers and never mutated (responses get a copy).
	versions []kmsg.ApiVersionsResponseApiKey

	// ctx is cancelled when Close gives up waiting, to abort handlers'
	// metadata calls; every requestContext derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards the fields below.
	mu       sync.Mutex
	ln       net.Listener
	advHost  string
	advPort  int32
	conns    map[*conn]struct{}
	closing  bool
	serving  bool
	connSeq  uint64
	connsWG  sync.WaitGroup // one per live connection
	acceptWG sync.WaitGroup // the accept loop
}

// NewServer checks cfg and builds a server; Listen binds it.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Broker == nil {
		return nil, errors.New("kafka server: Config.Broker is required")
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		broker:   cfg.Broker,
		log:      cfg.Logger,
		ctx:      ctx,
		cancel:   cancel,
		conns:    map[*conn]struct{}{},
		metrics:  newMetrics(cfg.Metrics),
		connKind: cfg.Broker.NewOwnerKind("kafka-conn"),
		selfID:   BrokerID(cfg.Broker.NodeID()),
	}
	if err := s.buildHandlers(slices.Concat(ownHandlers(), groupHandlers())); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// ownHandlers are the API keys served outside the consumer-group files.
func ownHandlers() []apiHandler {
	return []apiHandler{
		produceHandler,
		fetchHandler,
		listOffsetsHandler,
		metadataHandler,
		apiVersionsHandler,
		createTopicsHandler,
		deleteTopicsHandler,
		deleteRecordsHandler,
		initProducerIDHandler,
		offsetForLeaderEpochHandler,
		describeConfigsHandler,
		alterConfigsHandler,
		describeLogDirsHandler,
		createPartitionsHandler,
		incrementalAlterConfigsHandler,
		describeClusterHandler,
		describeProducersHandler,
	}
}

// buildHandlers indexes hs by key and derives the ApiVersions table. A
// duplicate key or a range kmsg cannot decode is a programming error caught
// at startup rather than at the first request.
func (s *Server) buildHandlers(hs []apiHandler) error {
	s.handlers = make(map[int16]*apiHandler, len(hs))
	for i := range hs {
		h := &hs[i]
		req := kmsg.RequestForKey(h.key)
		switch {
		case req == nil:
			return fmt.Errorf("kafka server: handler for key %d: kmsg does not know the key", h.key)
		case h.handle == nil:
			return fmt.Errorf("kafka server: handler for %s has no handle func", kmsg.NameForKey(h.key))
		case h.minVersion < 0 || h.maxVersion < h.minVersion || h.maxVersion > req.MaxVersion():
			return fmt.Errorf("kafka server: handler for %s: versions %d-%d outside kmsg's 0-%d",
				kmsg.NameForKey(h.key), h.minVersion, h.maxVersion, req.MaxVersion())
		}
		if _, dup := s.handlers[h.key]; dup {
			return fmt.Errorf("kafka server: two handlers for %s", kmsg.NameForKey(h.key))
		}
		s.handlers[h.key] = h
		v := kmsg.NewApiVersionsResponseApiKey()
		v.ApiKey, v.MinVersion, v.MaxVersion = h.key, h.minVersion, h.maxVersion
		if h.key == int16(kmsg.Produce) {
			// The one deliberate untruth, copied from Kafka 4
			// (KAFKA-18659): librdkafka before 2.10 turns compression
			// off unless Produce v0 is advertised. Clients pick their
			// highest common version, so none sends v0-2; one that
			// does is refused like any unserved version.
			v.MinVersion = 0
		}
		s.versions = append(s.versions, v)
	}
	slices.SortFunc(s.versions, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
	return nil
}

// Listen binds the listener; bind errors are returned here, before Serve.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errors.New("kafka server: closed")
	}
	if s.ln != nil {
		return errors.New("kafka server: already listening")
	}
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("kafka server: listen on %q: %w", s.cfg.ListenAddr, err)
	}
	host, port, err := advertisedHostPort(s.cfg.AdvertisedAddr, ln.Addr())
	if err != nil {
		ln.Close()
		return err
	}
	// Connections over the limits are closed by the listener itself, so
	// they never get an actor, goroutines or buffers.
	s.ln = connlimit.New(ln, connlimit.Config{
		Name:           "kafka",
		MaxConnections: s.cfg.MaxConnections,
		MaxPerIP:       s.cfg.MaxConnectionsPerIP,
		Refused:        s.metrics.refused,
		Logger:         s.log,
	})
	s.advHost, s.advPort = host, port
	s.log.Info("kafka listener bound", "addr", ln.Addr().String(), "advertised", net.JoinHostPort(host, strconv.Itoa(int(port))))
	return nil
}

// advertisedHostPort resolves what Metadata tells clients: the configured
// address, else the bound one with an unspecified IP replaced by the host
// name (clients elsewhere cannot dial 0.0.0.0).
func advertisedHostPort(configured string, bound net.Addr) (string, int32, error) {
	addr := configured
	if addr == "" {
		addr = bound.String()
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("kafka server: advertised address %q: %w", addr, err)
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("kafka server: advertised address %q: bad port", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return host, int32(port), nil
}

// Addr is the bound listener address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts connections until Close is called; it calls Listen first
// if that was not done. It returns nil after Close, or the accept error
// that stopped it (connections stay open until Close).
func (s *Server) Serve() error {
	s.mu.Lock()
	needListen := s.ln == nil
	s.mu.Unlock()
	if needListen {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("kafka server: Serve called twice")
	}
	s.serving = true
	ln := s.ln
	s.acceptWG.Add(1)
	s.mu.Unlock()
	defer s.acceptWG.Done()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors or a transient failure: wait
				// and retry rather than spin or stop serving.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("kafka accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("kafka server: accept: %w", err)
		}
		backoff = 0
		s.startConn(nc)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// startConn registers and starts a connection, unless the server is closing.
func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.connSeq++
	c := newConn(s, nc, s.connSeq)
	s.conns[c] = struct{}{}
	s.connsWG.Add(1)
	s.mu.Unlock()
	s.metrics.connections.Inc()
	s.metrics.accepted.Inc()
	if err := c.start(); err != nil {
		s.log.Error("kafka connection not started", "err", err)
		_ = nc.Close()
		s.connDone(c)
	}
}

// connDone unregisters a finished connection.
func (s *Server) connDone(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.metrics.connections.Dec()
	s.connsWG.Done()
}

// Close stops accepting, stops reading requests on every connection, writes
// the responses owed for requests already read, and closes the
// connections. When ctx ends first, the rest are closed at once and ctx's
// error is returned.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	if s.ln != nil {
		s.ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.acceptWG.Wait()
	for _, c := range conns {
		c.drain()
	}
	done := make(chan struct{})
	go func() { s.connsWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("kafka server: close connections: %w", ctx.Err())
		s.cancel()
		for _, c := range conns {
			c.abort()
		}
		select {
		case <-done:
		case <-time.After(abortGrace):
			// Only a stopped actor system (the broker closed first) leaves
			// aborted connections unfinished; their sockets are closed.
			s.log.Warn("kafka connections did not finish after abort", "grace", abortGrace)
		}
	}
	s.cancel()
	return err
}

// advertised is the host and port clients are told to connect to.
func (s *Server) advertised() (host string, port int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advHost, s.advPort
}
