package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/wire/internal/connlimit"
)

// DefaultReadBytes is a read's max_bytes when the request sets none. It is
// part of the API's contract with clients, not a node tunable.
const DefaultReadBytes = 1 << 20

// DefaultConfig holds the values used for zero fields of Config, read from
// the server.wal_broker section of config.Default(). The fields it leaves
// zero have no default: their zero value means something or they belong to
// the caller.
func DefaultConfig() Config {
	w := config.Default().Server.WALBroker
	return Config{
		ListenAddr:     w.ListenAddr,
		MaxBodyBytes:   int(w.MaxBodyBytes),
		MaxWait:        w.MaxWait.Duration(),
		RequestTimeout: w.RequestTimeout.Duration(),
		TailHeartbeat:  w.TailHeartbeat.Duration(),

		MaxConnections:      int(w.MaxConnections),
		MaxConnectionsPerIP: int(w.MaxConnectionsPerIP),
		ReadTimeout:         w.ReadTimeout.Duration(),
		IdleTimeout:         w.IdleTimeout.Duration(),
		ReadBufferBytes:     int(w.ReadBufferBytes),
	}
}

// Config configures a Server. Zero fields take the values of DefaultConfig.
type Config struct {
	// Broker serves the logs; required.
	Broker *actors.Broker
	// ListenAddr is the host:port to listen on.
	ListenAddr string
	// MaxBodyBytes bounds a request body; larger ones are refused with 413
	// PayloadTooLarge before they are read. It also caps one read's
	// max_bytes.
	MaxBodyBytes int
	// MaxWait caps a read's wait_ms, so a long poll cannot hold a connection
	// for ever.
	MaxWait time.Duration
	// AllowPerLogStorage lets create requests name storage other than the
	// node's own (see checkStorage).
	AllowPerLogStorage bool
	// Storage is the node's own storage, which create requests' storage is
	// compared with.
	Storage StorageIdentity
	// Metrics, when non-nil, is served at GET /metrics.
	Metrics http.Handler
	// Logger receives the server's logs; discarded if nil.
	Logger *slog.Logger
	// RequestTimeout bounds the broker work of one request, on top of any
	// wait it asked for.
	RequestTimeout time.Duration
	// TailHeartbeat is how often an idle tail stream sends a keep-alive
	// comment, which is also how a tail notices that its client went away.
	TailHeartbeat time.Duration
	// MaxConnections bounds the connections open at once, and
	// MaxConnectionsPerIP those from one source address; connections over
	// either are closed as soon as they are accepted.
	MaxConnections int
	// MaxConnectionsPerIP: see MaxConnections.
	MaxConnectionsPerIP int
	// ReadTimeout bounds reading one request, headers and body.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
	// ReadBufferBytes is a connection's read buffer, which also bounds a
	// request's headers.
	ReadBufferBytes int
	// Registry is where the server registers its metrics; nil registers
	// none.
	Registry prometheus.Registerer
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ListenAddr == "" {
		c.ListenAddr = d.ListenAddr
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxWait <= 0 {
		c.MaxWait = d.MaxWait
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.TailHeartbeat <= 0 {
		c.TailHeartbeat = d.TailHeartbeat
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.MaxConnectionsPerIP <= 0 {
		c.MaxConnectionsPerIP = d.MaxConnectionsPerIP
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ReadBufferBytes <= 0 {
		c.ReadBufferBytes = d.ReadBufferBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server is the WAL HTTP API of one node.
type Server struct {
	cfg     Config
	b       *actors.Broker
	log     *slog.Logger
	srv     *fasthttp.Server
	json    fasthttp.RequestHandler // routes whose answers may be gzipped
	metrics fasthttp.RequestHandler // nil without Config.Metrics
	// refused counts connections closed on accept, by reason.
	refused *prometheus.CounterVec

	// baseCtx ends when Close starts: long polls and tail streams derive
	// from it so they finish instead of holding shutdown up.
	baseCtx context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex // guards the fields below
	ln        net.Listener
	serving   bool
	closed    bool
	serveDone chan struct{} // closed when Serve returns
	// streams counts tail stream writers. Add is called only under mu
	// while !closed, so Close's Wait never races an Add from zero.
	streams sync.WaitGroup
}

// NewServer builds a server; Listen and Serve (or Start) run it.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Broker == nil {
		return nil, errors.New("wal: NewServer: Config.Broker is nil")
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, b: cfg.Broker, log: cfg.Logger, serveDone: make(chan struct{})}
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_wal_connections_refused_total",
		Help: "WAL API connections closed on accept for exceeding a limit, by reason (max_connections, max_connections_per_ip)."}, []string{"reason"})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(s.refused); err != nil {
			return nil, fmt.Errorf("wal: register metrics: %w", err)
		}
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	// Answers of at least 200 bytes are gzipped (or deflated, zstd'd) when
	// the request's Accept-Encoding asks; tail streams are not, since a
	// compressor would hold back events until its block fills.
	s.json = fasthttp.CompressHandlerLevel(s.routeJSON, fasthttp.CompressBestSpeed)
	if cfg.Metrics != nil {
		s.metrics = fasthttpadaptor.NewFastHTTPHandler(cfg.Metrics)
	}
	s.srv = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       s.errorHandler,
		Name:               "morax",
		MaxRequestBodySize: cfg.MaxBodyBytes,
		// ReadTimeout bounds reading one request, so a client trickling
		// one (slowloris) holds its connection no longer; IdleTimeout how
		// long a keep-alive connection may sit idle. No WriteTimeout: it
		// would cut tail streams. Connection counts are bounded by the
		// listener (connlimit), which closes connections over the limits
		// before fasthttp sees them; Concurrency is the same bound, so
		// fasthttp never refuses on its own.
		ReadTimeout:                   cfg.ReadTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		ReadBufferSize:                cfg.ReadBufferBytes,
		Concurrency:                   cfg.MaxConnections,
		CloseOnShutdown:               true,
		DisablePreParseMultipartForm:  true,
		NoDefaultDate:                 false,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{s.log},
	}
	return s, nil
}

// Listen binds Config.ListenAddr. Serve then accepts on it.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosing
	}
	if s.ln != nil {
		return errors.New("wal: Listen called twice")
	}
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("wal: listen on %s: %w", s.cfg.ListenAddr, err)
	}
	s.ln = connlimit.New(ln, connlimit.Config{
		Name:           "wal",
		MaxConnections: s.cfg.MaxConnections,
		MaxPerIP:       s.cfg.MaxConnectionsPerIP,
		Refused:        s.refused,
		Logger:         s.log,
	})
	return nil
}

// Addr returns the address the server listens on, or nil if Listen has
// not run. With port 0 in ListenAddr, this is the port chosen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts connections until Close, listening first if Listen has not
// run. It returns nil after Close.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("wal: Serve called twice")
	}
	if s.ln == nil {
		s.mu.Unlock()
		if err := s.Listen(); err != nil {
			return err
		}
		s.mu.Lock()
	}
	s.serving = true
	ln := s.ln
	s.mu.Unlock()
	defer close(s.serveDone)
	s.log.Info("WAL API listening", "addr", ln.Addr().String())
	err := s.srv.Serve(ln)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	return fmt.Errorf("wal: serve: %w", err)
}

// Start listens (unless Listen already ran) and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	needListen := s.ln == nil
	s.mu.Unlock()
	if needListen {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	go func() {
		if err := s.Serve(); err != nil {
			s.log.Error("WAL API stopped", "err", err)
		}
	}()
	return nil
}

// Close stops accepting, ends long polls and tail streams (a tail gets a
// final "end" event), and waits for every request in progress to finish or
// for ctx to end. It does not close the Broker.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln, serving := s.ln, s.serving
	s.mu.Unlock()

	s.cancel()
	var errs []error
	if serving {
		if err := s.srv.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("wal: shut down HTTP server: %w", err))
		}
	}
	if ln != nil {
		// Shutdown closes the listener only if Serve got to use it.
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("wal: close listener: %w", err))
		}
	}
	streams := make(chan struct{})
	go func() { s.streams.Wait(); close(streams) }()
	select {
	case <-streams:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wal: wait for tail streams: %w", ctx.Err()))
	}
	if serving {
		select {
		case <-s.serveDone:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("wal: wait for Serve to return: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// requestContext is the context of one request's broker work: it ends when
// the server closes or at the request's deadline (see deadline).
func (s *Server) requestContext(ctx *fasthttp.RequestCtx, wait time.Duration) (context.Context, context.CancelFunc) {
	return context.WithDeadline(s.baseCtx, s.deadline(ctx, wait))
}

// deadline is when the request's work must end: the request timeout plus
// the wait it asked for, counted from when the request arrived. The broker
// retries a request refused while its partition changes hands until then.
func (s *Server) deadline(ctx *fasthttp.RequestCtx, wait time.Duration) time.Time {
	return requestStart(ctx).Add(s.cfg.RequestTimeout + wait)
}

// requestStart is when the client's request arrived, or now for a
// RequestCtx that does not know (one built by hand, as some tests do).
func requestStart(ctx *fasthttp.RequestCtx) time.Time {
	if t := ctx.Time(); !t.IsZero() {
		return t
	}
	return time.Now()
}

// handle is the server's entry point: it keeps a handler panic from taking
// the node down, and keeps streams and metrics out of compression.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("WAL handler panic", "path", string(ctx.Path()), "panic", r, "stack", string(debug.Stack()))
			writeError(ctx, newAPIError(fasthttp.StatusInternalServerError, CodeUnexpected, "unexpected error; the node's log has details"))
		}
	}()
	path := string(ctx.Path())
	if path == "/metrics" && s.metrics != nil {
		if allow(ctx, fasthttp.MethodGet) {
			s.metrics(ctx)
		}
		return
	}
	if name, ok := tailName(path); ok {
		if allow(ctx, fasthttp.MethodGet) {
			s.handleTail(ctx, name)
		}
		return
	}
	s.json(ctx)
}

// tailName returns the log name of a /v1/logs/{name}/tail path.
func tailName(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, logsPrefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, tailSuffix)
	return name, ok && name != "" && !strings.Contains(name, "/")
}

const (
	logsPrefix = "/v1/logs/"
	tailSuffix = "/tail"
)

// routeJSON serves the JSON endpoints.
func (s *Server) routeJSON(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch string(path) {
	case "/v1/health":
		if allow(ctx, fasthttp.MethodGet, fasthttp.MethodHead) {
			s.handleHealth(ctx)
		}
	case "/v1/status":
		if allow(ctx, fasthttp.MethodGet) {
			s.handleStatus(ctx)
		}
	case "/v1/create":
		if allow(ctx, fasthttp.MethodPost) {
			s.handleCreate(ctx)
		}
	case "/v1/append":
		if allow(ctx, fasthttp.MethodPost) {
			s.handleAppend(ctx)
		}
	case "/v1/read":
		if allow(ctx, fasthttp.MethodPost) {
			s.handleRead(ctx)
		}
	case "/v1/trim":
		if allow(ctx, fasthttp.MethodPost) {
			s.handleTrim(ctx)
		}
	case "/v1/logs", "/v1/logs/":
		if allow(ctx, fasthttp.MethodGet) {
			s.handleList(ctx)
		}
	case "/v1/cluster":
		if allow(ctx, fasthttp.MethodGet) {
			s.handleCluster(ctx)
		}
	default:
		p := string(path)
		if name, ok := strings.CutPrefix(p, logsPrefix); ok && name != "" && !strings.Contains(name, "/") {
			if allow(ctx, fasthttp.MethodGet, fasthttp.MethodDelete) {
				if ctx.IsDelete() {
					s.handleDelete(ctx, name)
				} else {
					s.handleDescribe(ctx, name)
				}
			}
			return
		}
		writeError(ctx, newAPIError(fasthttp.StatusNotFound, CodeNotFound, "no such endpoint: "+p))
	}
}

// allow answers 405 MethodNotAllowed (with an Allow header) unless the
// request uses one of methods.
func allow(ctx *fasthttp.RequestCtx, methods ...string) bool {
	m := ctx.Method()
	for _, want := range methods {
		if string(m) == want {
			return true
		}
	}
	writeError(ctx, newAPIError(fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed,
		fmt.Sprintf("%s is not allowed on %s; use %s", m, ctx.Path(), strings.Join(methods, " or "))))
	ctx.Response.Header.Set("Allow", strings.Join(methods, ", "))
	return false
}

// topic looks a log up by name, mapping a missing one to a NotFound that
// speaks of logs rather than topics.
func (s *Server) topic(ctx context.Context, name string) (actors.Topic, error) {
	t, err := s.b.Topic(ctx, name)
	return t, notFound(name, err)
}

// notFound rewords an unknown-topic error in terms of logs.
func notFound(name string, err error) error {
	if errors.Is(err, actors.ErrUnknownTopic) {
		return fmt.Errorf("log %q does not exist: %w", name, actors.ErrUnknownTopic)
	}
	return err
}

// fasthttpLogger sends fasthttp's own messages (accept errors and the like)
// to the server's logger.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}

// pause waits d, or less if the server closes; it reports whether the
// server is still open.
func (s *Server) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.baseCtx.Done():
		return false
	}
}
