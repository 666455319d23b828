package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/morax-dev/morax/internal/clustertest"
)

// TestStartEmbeddedAndStop runs `morax start` with no config file: it must
// answer health on the WAL port, accept TCP on the Kafka port, and exit 0
// within 10 s of SIGTERM.
func TestStartEmbeddedAndStop(t *testing.T) {
	bin := clustertest.Binary(t)
	kafkaAddr, walAddr := clustertest.FreePort(t), clustertest.FreePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "start", "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(),
		"MORAX_SERVER_KAFKA_BROKER_LISTEN_ADDR="+kafkaAddr,
		"MORAX_SERVER_WAL_BROKER_LISTEN_ADDR="+walAddr)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + walAddr + "/v1/health")
		if err == nil {
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || body.String() != "OK" {
				t.Fatalf("health: %d %q", resp.StatusCode, body.String())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node never answered health: %v\nlogs:\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The admin view lists this node.
	status, err := exec.Command(bin, "cluster", "status", "--endpoint", "http://"+walAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(status), "node-") || !strings.Contains(string(status), kafkaAddr) {
		t.Fatalf("cluster status: %v\n%s", err, status)
	}
	c, err := net.DialTimeout("tcp", kafkaAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("kafka port: %v", err)
	}
	c.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\nlogs:\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM\nlogs:\n%s", logs.String())
	}
	for _, want := range []string{"backends ready", "morax node started", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "meta.db")); err != nil {
		t.Errorf("embedded metadata not under the data dir: %v", err)
	}
}

// TestStartRejectsBadConfig gives a config with three mistakes: all three
// are printed with their key paths, and the node exits non-zero without
// binding its ports.
func TestStartRejectsBadConfig(t *testing.T) {
	bin := clustertest.Binary(t)
	kafkaAddr := clustertest.FreePort(t)
	file := filepath.Join(t.TempDir(), "bad.toml")
	conf := fmt.Sprintf(`
[server.kafka_broker]
listen_addr = %q
[storage]
scheme = "ftp"
[partition]
flush_bytes = -1
[telemetry.log]
level = "loud"
`, kafkaAddr)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "start", "--config-file", file, "--data-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v\n%s", err, out)
	}
	for _, path := range []string{"storage.scheme", "partition.flush_bytes", "telemetry.log.level"} {
		if !strings.Contains(string(out), path) {
			t.Errorf("output does not name %s:\n%s", path, out)
		}
	}
	// Nothing was bound: the Kafka port is still free.
	l, err := net.Listen("tcp", kafkaAddr)
	if err != nil {
		t.Fatalf("kafka port was bound by a node that should not have started: %v", err)
	}
	l.Close()
}

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, nil, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "morax ") {
		t.Fatalf("version: %d %q %q", code, out.String(), errOut.String())
	}
	if code := run([]string{"bogus"}, nil, &out, &errOut); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}

// TestEmbeddedRestartAfterCrash kills an embedded node with SIGKILL and
// restarts it on the same data directory: the new run holds the
// directory's lock, so it knows the old run is dead and serves its logs at
// once instead of waiting out the old run's leases (60 s here). A second
// process on a directory in use is refused with a clear error.
func TestEmbeddedRestartAfterCrash(t *testing.T) {
	bin := clustertest.Binary(t)
	data := filepath.Join(t.TempDir(), "data")
	walAddr := clustertest.FreePort(t)
	env := append(os.Environ(),
		"MORAX_SERVER_KAFKA_BROKER_LISTEN_ADDR="+clustertest.FreePort(t),
		"MORAX_SERVER_WAL_BROKER_LISTEN_ADDR="+walAddr,
		"MORAX_CLUSTER_LEASE_TTL=60s")
	start := func() (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command(bin, "start", "--data-dir", data)
		cmd.Env = env
		logs := new(lockedBuffer)
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, logs
	}
	wal := func(timeout string, args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"wal", "--endpoint", "http://" + walAddr, "--timeout", timeout}, args...)...).CombinedOutput()
		return string(out), err
	}
	waitHealthy := func(logs *lockedBuffer) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := wal("1s", "health"); err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node never became healthy\nlogs:\n%s", logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	first, logs := start()
	waitHealthy(logs)
	if out, err := wal("10s", "create", "journal"); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if out, err := wal("10s", "append", "journal", "before-crash"); err != nil {
		t.Fatalf("append: %v\n%s", err, out)
	}

	// A second process on the same directory is refused while the first lives.
	out, err := exec.Command(bin, "start", "--data-dir", data).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another morax process") {
		t.Fatalf("second process on a data dir in use: %v\n%s", err, out)
	}

	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	_, logs = start()
	waitHealthy(logs)
	// Well inside the old run's 60 s lease: the append is served.
	if out, err := wal("20s", "append", "journal", "after-crash"); err != nil {
		t.Fatalf("append after restart: %v\n%s\nlogs:\n%s", err, out, logs.String())
	}
	out2, err := wal("10s", "read", "journal")
	if err != nil || !strings.Contains(out2, "before-crash") || !strings.Contains(out2, "after-crash") {
		t.Fatalf("read after restart: %v\n%s", err, out2)
	}
	if !strings.Contains(logs.String(), "took back the leases of a previous run") {
		t.Errorf("restart did not report taking back leases:\n%s", logs.String())
	}
}
