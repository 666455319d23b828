package wal

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Remote is a node's protoactor remote: the gRPC listener through which
// nodes pass forwarded WAL requests and their answers (forward.go). It
// serves the broker's whole actor system, so PIDs on it are reachable from
// other nodes as actor.NewPID(Addr(), id).
type Remote struct {
	r    *remote.Remote
	addr string
}

// StartRemote starts protoactor remote on a node's actor system (the
// broker's, Broker.ActorSystem), listening on listenAddr (host:port). Start
// it before Broker.StartCluster and before the WAL server listens: the
// actor system takes its address from it, and PIDs made before keep the
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
//
// maxBodyBytes is the WAL server's Config.MaxBodyBytes: the gRPC message
// limits are ForwardMessageLimit of it, and each message carries a single
// envelope, so one large answer never shares a message with others.
func StartRemote(system *actor.ActorSystem, listenAddr string, maxBodyBytes int) (*Remote, error) {
	host, portStr, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return nil, fmt.Errorf("wal: remote listen address %q: %w", listenAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("wal: remote listen address %q: port must be a number from 0 to 65535", listenAddr)
	}
	limit := ForwardMessageLimit(maxBodyBytes)
	opts := []remote.ConfigOption{
		// One envelope per gRPC message: batching would put several bodies
		// of up to the limit into one message over it, and a message over
		// the limit breaks the connection for everything queued on it.
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
			return nil, fmt.Errorf("wal: remote listens on %q, so it advertises the host name, which is unknown: %w", listenAddr, err)
		}
		opts = append(opts, remote.WithAdvertisedHost(net.JoinHostPort(name, strconv.Itoa(port))))
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // remote joins host and port with a bare colon
	}
	cfg := remote.Configure(host, port, opts...)
	// Connect to a node once before giving up on it (the library's default
	// is five tries, two seconds apart). Messages queued for a node that
	// cannot be reached come back as dead letters, which forwarding
	// retries on the partition's next owner, so waiting longer only delays
	// the failover.
	cfg.MaxRetryCount = 1
	r := remote.NewRemote(system, cfg)
	if err := startRemote(r); err != nil {
		return nil, fmt.Errorf("wal: start remote on %s: %w", listenAddr, err)
	}
	return &Remote{r: r, addr: system.Address()}, nil
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
		return 0, fmt.Errorf("wal: find a free port for remote on %s: %w", listenAddr, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("wal: release probe port %d: %w", port, err)
	}
	return port, nil
}

// Addr is the address other nodes reach this one on (host:port), to be
// registered as meta.Node.RemoteAddr.
func (r *Remote) Addr() string { return r.addr }

// Close stops the remote's gRPC server, closing every connection other
// nodes made to it; they see their connection drop and forget this node's
// address, as they would on a graceful leave. Stop the WAL server and the
// broker first, so no answer is left to send.
//
// The library's graceful shutdown is not used: it races with its own
// connection handling (endpointManager.stop against removeEndpoint, which
// the race detector reports whenever a peer left first) and can stall for
// ten seconds waiting for peers' streams, for no gain to a process that is
// about to exit.
func (r *Remote) Close() { r.r.Shutdown(false) }
