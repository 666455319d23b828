package actors

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/morax-dev/morax/config"
)

// RemoteConfig configures a node's protoactor remote (StartRemote). Zero
// fields take the values of DefaultRemoteConfig.
type RemoteConfig struct {
	// ListenAddr is the host:port the remote listens on; required.
	ListenAddr string
	// MaxMessageBytes bounds one message between nodes, both ways: the
	// gRPC limits are set to it. It must hold the largest append a client
	// may send through any node (the WAL server's body limit) and the
	// largest fetch answer (a fetch asks for at most half of it, plus one
	// batch of up to the largest max.message.bytes). Larger appends are
	// refused with ErrMessageTooLarge before they are sent, and an answer
	// that would not fit is replaced by an error, rather than breaking the
	// connection it travels on (see RemoteMessageLimit).
	MaxMessageBytes int
	// MaxInflight and MaxInflightBytes bound the requests from other nodes
	// the gateway holds at once, by count and by append bytes; requests
	// beyond them are answered ErrBackpressure without being acted on.
	MaxInflight      int
	MaxInflightBytes int64
}

// DefaultRemoteConfig holds the values used for zero fields of
// RemoteConfig, read from config.Default(); ListenAddr has none.
func DefaultRemoteConfig() RemoteConfig {
	c := config.Default()
	return RemoteConfig{
		MaxMessageBytes:  RemoteMessageLimit(int(c.Server.WALBroker.MaxBodyBytes), int(c.Partition.MaxMessageBytes)),
		MaxInflight:      int(c.Cluster.RemoteMaxInflight),
		MaxInflightBytes: c.Cluster.RemoteMaxInflightBytes,
	}
}

// RemoteMessageLimit is the message limit between nodes that carries
// appends of up to maxRequestBytes of batches (a WAL body limit bounds
// them: base64-decoded batches are smaller than the body, though the
// records of many tiny entries may add a few MiB of framing) and fetch
// answers (at most half the limit, plus a first batch of up to
// maxBatchBytes, the largest max.message.bytes).
func RemoteMessageLimit(maxRequestBytes, maxBatchBytes int) int {
	return 2*max(maxRequestBytes, maxBatchBytes, 1<<20) + 8<<20
}

func (c RemoteConfig) withDefaults() RemoteConfig {
	d := DefaultRemoteConfig()
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = d.MaxInflight
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = d.MaxInflightBytes
	}
	return c
}

// Remote is a node's protoactor remote: the gRPC listener through which
// nodes send each other partition requests and their replies (route.go,
// gateway.go). It serves the broker's whole actor system, so PIDs on it
// are reachable from other nodes as actor.NewPID(Addr(), id).
type Remote struct {
	r    *remote.Remote
	addr string
	cfg  RemoteConfig
}

// StartRemote starts protoactor remote on b's actor system and the
// GatewayName actor that serves other nodes' requests for the partitions b
// owns; from then on b's call methods (Append, Fetch, ...) send requests
// for partitions another node owns to that node. Start it before
// Broker.StartCluster and before any protocol server listens: the actor
// system takes its address from it, and PIDs made before keep the
// placeholder address, which only the local node can resolve.
//
// protoactor's remote sets gRPC's process-wide logger each time one starts,
// so only one should run per process (a second one is a data race the race
// detector reports); a node has one.
//
// Port 0 picks a free port; Addr reports it, and it is what the node must
// register as meta.Node.RemoteAddr. An unspecified host (empty, 0.0.0.0,
// ::) listens on every interface and advertises the machine's host name,
// which other nodes must be able to resolve; with port 0 the port is then
// found by binding and releasing it first, leaving a moment in which
// another process could take it.
func StartRemote(b *Broker, cfg RemoteConfig) (*Remote, error) {
	cfg = cfg.withDefaults()
	listenAddr := cfg.ListenAddr
	host, portStr, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return nil, fmt.Errorf("remote listen address %q: %w", listenAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("remote listen address %q: port must be a number from 0 to 65535", listenAddr)
	}
	limit := cfg.MaxMessageBytes
	opts := []remote.ConfigOption{
		// One request or reply per gRPC message: batching would put several
		// messages of up to the limit into one message over it, and a
		// message over the limit breaks the connection for everything
		// queued on it.
		remote.WithEndpointWriterBatchSize(1),
		remote.WithServerOptions(grpc.MaxRecvMsgSize(limit), grpc.MaxSendMsgSize(limit)),
		remote.WithDialOptions(
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(limit), grpc.MaxCallSendMsgSize(limit)),
		),
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if port == 0 {
			if port, err = freePort(listenAddr); err != nil {
				return nil, err
			}
		}
		name, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("remote listens on %q, so it advertises the host name, which is unknown: %w", listenAddr, err)
		}
		opts = append(opts, remote.WithAdvertisedHost(net.JoinHostPort(name, strconv.Itoa(port))))
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // remote joins host and port with a bare colon
	}
	rcfg := remote.Configure(host, port, opts...)
	// Connect to a node once before giving up on it (the library's default
	// is five tries, two seconds apart). Messages queued for a node that
	// cannot be reached come back as dead letters, which routing retries
	// on the partition's next owner, so waiting longer only delays the
	// failover.
	rcfg.MaxRetryCount = 1
	r := remote.NewRemote(b.system, rcfg)
	if err := startRemote(r); err != nil {
		return nil, fmt.Errorf("start remote on %s: %w", listenAddr, err)
	}
	rem := &Remote{r: r, addr: b.system.Address(), cfg: cfg}
	if _, err := spawnGateway(b, cfg); err != nil {
		r.Shutdown(false)
		return nil, err
	}
	b.remote.Store(rem)
	return rem, nil
}

// startRemote runs r.Start, which panics instead of returning errors (a
// port in use, say).
func startRemote(r *remote.Remote) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	r.Start()
	return nil
}

// freePort binds listenAddr's host on any free port and releases it.
func freePort(listenAddr string) (int, error) {
	l, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return 0, fmt.Errorf("find a free port for remote on %s: %w", listenAddr, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("release probe port %d: %w", port, err)
	}
	return port, nil
}

// Addr is the address other nodes reach this one on (host:port), to be
// registered as meta.Node.RemoteAddr.
func (r *Remote) Addr() string { return r.addr }

// Close stops the remote's gRPC server, closing every connection other
// nodes made to it; they see their connection drop and forget this node's
// address, as they would on a graceful leave. Stop the protocol servers
// and the broker first, so no reply is left to send.
//
// The library's graceful shutdown is not used: it races with its own
// connection handling (endpointManager.stop against removeEndpoint, which
// the race detector reports whenever a peer left first) and can stall for
// ten seconds waiting for peers' streams, for no gain to a process that is
// about to exit.
func (r *Remote) Close() { r.r.Shutdown(false) }
