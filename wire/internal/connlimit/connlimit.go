// Package connlimit bounds the connections a listener keeps open, in total
// and per source address, for both client protocols.
//
// A connection over a bound is closed as soon as it is accepted, before
// anything is read from it or allocated for it: a flood of idle sockets
// then costs the node one accept and one close each, not a file descriptor
// and buffers for as long as the peer keeps them open. Refusals are counted
// by reason and logged at most once per LogEvery, since one log line per
// refused connection would turn a flood into a logging load.
package connlimit

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a connection is refused, the values of the metric's reason label.
const (
	// ReasonTotal means the listener already holds its maximum.
	ReasonTotal = "max_connections"
	// ReasonPerIP means the peer's address already holds its maximum.
	ReasonPerIP = "max_connections_per_ip"
)

// LogEvery is the least time between two log lines about refusals.
const LogEvery = 10 * time.Second

// Config sets a Listener's bounds.
type Config struct {
	// Name names the listener in logs ("kafka", "wal").
	Name string
	// MaxConnections bounds the connections open at once; required.
	MaxConnections int
	// MaxPerIP bounds the connections open at once from one IP address;
	// required.
	MaxPerIP int
	// Refused counts refusals by reason; it must have exactly one label,
	// "reason". Nil counts nothing.
	Refused *prometheus.CounterVec
	// Logger receives the rate-limited refusal summary.
	Logger *slog.Logger
}

// Listener wraps a net.Listener: Accept returns only connections within the
// bounds, and a returned connection gives its slot back when it is closed.
type Listener struct {
	net.Listener
	cfg Config
	log *slog.Logger

	// mu guards open and perIP. A map under a mutex suffices: it is taken
	// once per accept and once per close, far below accept rates that
	// would make it contend.
	mu    sync.Mutex
	open  int
	perIP map[string]int

	// refused counts refusals since the last log line, by reason; lastLog
	// is when that line was written (Unix nanoseconds).
	refusedTotal, refusedPerIP atomic.Uint64
	lastLog                    atomic.Int64
}

// New wraps ln with the bounds of cfg.
func New(ln net.Listener, cfg Config) *Listener {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: ln, cfg: cfg, log: log, perIP: map[string]int{}}
}

// Accept returns the next connection within the bounds; connections over
// them are closed and counted without being returned. Errors are the
// wrapped listener's.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(nc.RemoteAddr())
		if reason := l.admit(ip); reason != "" {
			// Closed before a byte is read: the peer sees a reset or EOF
			// and the descriptor is free at once.
			_ = nc.Close()
			l.refuse(reason, ip)
			continue
		}
		return &conn{Conn: nc, l: l, ip: ip}, nil
	}
}

// Open is the number of connections accepted and not yet closed.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// admit takes a slot for a connection from ip, or says why there is none.
func (l *Listener) admit(ip string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.cfg.MaxConnections {
		return ReasonTotal
	}
	if l.perIP[ip] >= l.cfg.MaxPerIP {
		return ReasonPerIP
	}
	l.open++
	l.perIP[ip]++
	return ""
}

// release gives back a slot taken by admit.
func (l *Listener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
}

// refuse counts a refusal and logs a summary of the refusals since the
// last summary, at most once per LogEvery.
func (l *Listener) refuse(reason, ip string) {
	if l.cfg.Refused != nil {
		l.cfg.Refused.WithLabelValues(reason).Inc()
	}
	if reason == ReasonTotal {
		l.refusedTotal.Add(1)
	} else {
		l.refusedPerIP.Add(1)
	}
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(LogEvery) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("refusing connections over the listener's limits",
		"listener", l.cfg.Name,
		"refused_max_connections", l.refusedTotal.Swap(0),
		"refused_max_connections_per_ip", l.refusedPerIP.Swap(0),
		"max_connections", l.cfg.MaxConnections,
		"max_connections_per_ip", l.cfg.MaxPerIP,
		"last_refused_ip", ip, "last_reason", reason)
}

// hostOf is the IP part of a TCP address; other addresses (pipes, unix
// sockets in tests) count as one source each by their string.
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// conn gives its slot back on the first Close.
type conn struct {
	net.Conn
	l      *Listener
	ip     string
	closed atomic.Bool
}

// Close closes the connection and, the first time, frees its slot.
func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.ip)
	}
	return err
}
