package clustertest

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Node is one `morax start` process, restartable with the same config
// (same node id, ports and data dir).
type Node struct {
	c                              *Cluster
	id                             string
	kafkaAddr, walAddr, remoteAddr string
	confPath, logPath              string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error
	paused  bool
	starts  int
}

// ID is the node's id, the same across restarts.
func (n *Node) ID() string { return n.id }

// WALAddr is the address the node's WAL HTTP API listens on.
func (n *Node) WALAddr() string { return n.walAddr }

// KafkaAddr is the address the node's Kafka listener listens on.
func (n *Node) KafkaAddr() string { return n.kafkaAddr }

// AddNode configures a node with fresh loopback ports and starts it; it
// returns once the node answers health.
func (c *Cluster) AddNode(id string) *Node {
	c.t.Helper()
	dir := filepath.Join(c.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	n := &Node{
		c: c, id: id,
		kafkaAddr: c.listenPort(), walAddr: c.listenPort(), remoteAddr: c.listenPort(),
		confPath: filepath.Join(dir, "node.toml"), logPath: filepath.Join(dir, "node.log"),
	}
	conf := fmt.Sprintf(`# Written by the cluster test harness.
data_dir = %q

[server.meta]
service_url = %q

[server.kafka_broker]
listen_addr = %q
auto_create_topics = false

[server.wal_broker]
listen_addr = %q
max_wait = "5s"

[storage]
scheme = "s3"
bucket = %q
region = %q
endpoint = %q
access_key_id = %q
secret_access_key = %q
path_style = true
prefix = %q
request_timeout = "10s"

[partition]
# Longer than the default so each partition's flushes carry several
# records: fewer objects and commits for two cores to serve.
linger = "10ms"

[cluster]
node_id = %q
lease_ttl = %q
heartbeat_interval = %q
remote_listen_addr = %q

[telemetry.log]
level = "info"
`, filepath.Join(dir, "data"), c.nodePG, n.kafkaAddr, n.walAddr,
		devBucket, c.s3.Region, c.nodeS3, c.s3.AccessKey, c.s3.SecretKey, c.prefix,
		id, leaseTTL.String(), heartbeat.String(), n.remoteAddr)
	if err := os.WriteFile(n.confPath, []byte(conf), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.nodes = append(c.nodes, n)
	n.Start()
	return n
}

// listenPort returns a free loopback address for a node to listen on for
// the whole test, across restarts. The port is below the kernel's
// ephemeral range: a port from that range (what FreePort gets) can be
// taken, while the node is down, as the local end of some outgoing
// connection, and the restarted node would then fail to bind it.
// Ports already given to a node of this cluster are not handed out again:
// the check that a port is free says nothing about one not yet bound.
func (c *Cluster) listenPort() string {
	t := c.t
	t.Helper()
	if c.ports == nil {
		c.ports = map[string]bool{}
	}
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const first = 10000
	if low-first < 1000 {
		return FreePort(t)
	}
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", first+rand.IntN(low-first))
		if c.ports[addr] {
			continue
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			c.ports[addr] = true
			return addr
		}
	}
	return FreePort(t)
}

// FreePort returns a loopback address with a port nobody listens on now.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// nodeEnv is the test's environment without MORAX_ variables: the config
// file alone configures a node, whatever the shell running the tests has
// set (dev/.env, overrides meant for another node).
func nodeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MORAX_") {
			env = append(env, kv)
		}
	}
	return env
}

// PID is the process id of the node's running process, 0 when it is not
// running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether the node's process runs (paused or not).
func (n *Node) Running() bool { return n.running() }

// Paused reports whether the node was paused and not resumed.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

// Start runs the node's process and waits until it answers health.
func (n *Node) Start() {
	t := n.c.t
	t.Helper()
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		t.Fatalf("%s: start while running", n.id)
	}
	n.starts++
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.mu.Unlock()
		t.Fatal(err)
	}
	fmt.Fprintf(f, "==== harness: start #%d of %s at %s\n", n.starts, n.id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.c.bin, "start", "--config-file", n.confPath)
	cmd.Env = nodeEnv()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	f.Close() // the child has its own descriptor
	if err != nil {
		n.mu.Unlock()
		t.Fatalf("%s: start: %v", n.id, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.waitErr, n.paused = cmd, exited, nil, false
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.waitErr = err
		n.mu.Unlock()
		close(exited)
	}()
	if err := n.waitHealthy(30 * time.Second); err != nil {
		t.Fatalf("%s: %v", n.id, err)
	}
}

func (n *Node) waitHealthy(timeout time.Duration) error {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get("http://" + n.walAddr + "/v1/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health: %s %q", resp.Status, body)
		}
		select {
		case <-exited:
			return fmt.Errorf("exited during start (%v)", n.exitErr())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no healthy answer within %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *Node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.waitErr
}

func (n *Node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

func (n *Node) signal(sig syscall.Signal) {
	n.c.t.Helper()
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil {
		n.c.t.Fatalf("%s: %v sent to a node that is not running", n.id, sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		n.c.t.Fatalf("%s: send %v: %v", n.id, sig, err)
	}
}

// Kill SIGKILLs the node and waits for the process to be gone.
func (n *Node) Kill() {
	n.c.t.Helper()
	n.signal(syscall.SIGKILL)
	if _, err := n.waitExit(10 * time.Second); err != nil {
		n.c.t.Fatalf("%s: %v", n.id, err)
	}
}

// Stop sends SIGTERM and waits for the graceful exit, which must be clean.
func (n *Node) Stop() {
	t := n.c.t
	t.Helper()
	n.signal(syscall.SIGTERM)
	exitErr, err := n.waitExit(n.c.stopWait)
	if err != nil {
		t.Fatalf("%s: %v", n.id, err)
	}
	if exitErr != nil {
		t.Fatalf("%s: exit after SIGTERM: %v (want status 0)", n.id, exitErr)
	}
}

// Pause SIGSTOPs the node: it keeps its sockets and its in-memory state and
// believes it still holds its leases when it wakes.
func (n *Node) Pause() {
	n.signal(syscall.SIGSTOP)
	n.mu.Lock()
	n.paused = true
	n.mu.Unlock()
}

// Resume SIGCONTs a paused node.
func (n *Node) Resume() {
	n.signal(syscall.SIGCONT)
	n.mu.Lock()
	n.paused = false
	n.mu.Unlock()
}

// waitExit waits for the process to end and forgets it, so the node can be
// started again. exitErr is the process's exit status as cmd.Wait gave it.
func (n *Node) waitExit(timeout time.Duration) (exitErr, err error) {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return nil, errors.New("not running")
	}
	select {
	case <-exited:
	case <-time.After(timeout):
		return nil, fmt.Errorf("still running %s after the signal", timeout)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cmd, n.exited = nil, nil
	return n.waitErr, nil
}

// forceStop kills the process if it runs (waking it first if paused, so
// the kill is not queued behind the stop).
func (n *Node) forceStop() {
	n.mu.Lock()
	cmd, exited, paused := n.cmd, n.exited, n.paused
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	if paused {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
	n.mu.Lock()
	n.cmd, n.exited = nil, nil
	n.mu.Unlock()
}
