package faults

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// MinIO credentials of the private server (the dev defaults, so the same
// test configuration works against either).
const (
	MinIOAccessKey = "minioadmin"
	MinIOSecretKey = "minioadmin"
)

// MinIO is a private MinIO server: its own data folder and loopback port,
// so a test may kill and restart it.
type MinIO struct {
	bin  string
	dir  string
	port int
	log  string

	mu sync.Mutex
	p  *proc
}

// StartMinIO starts a MinIO server on a new temporary folder. Close
// removes it. The caller creates its buckets.
func StartMinIO() (*MinIO, error) {
	bin := os.Getenv(EnvMinIOBin)
	if bin == "" {
		return nil, fmt.Errorf("%s is not set (dev/up.sh writes it to dev/.env)", EnvMinIOBin)
	}
	dir, err := os.MkdirTemp("", "morax-faults-minio-")
	if err != nil {
		return nil, fmt.Errorf("minio temp dir: %w", err)
	}
	m := &MinIO{bin: bin, dir: dir, log: filepath.Join(dir, "minio.log")}
	if m.port, err = freeLoopbackPort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := m.Start(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Addr is the server's loopback address (host:port), the same across
// restarts.
func (m *MinIO) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }

// LogPath is the server's log file, for failure reports.
func (m *MinIO) LogPath() string { return m.log }

// Start starts the server on its data folder (after Kill) and waits until
// it reports itself live.
func (m *MinIO) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p != nil && m.p.running() {
		return errors.New("minio: start while running")
	}
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("minio log: %w", err)
	}
	defer logf.Close()
	console, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"),
		"--address", m.Addr(), "--console-address", "127.0.0.1:"+strconv.Itoa(console))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+MinIOAccessKey, "MINIO_ROOT_PASSWORD="+MinIOSecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := startProc(cmd)
	if err != nil {
		return fmt.Errorf("minio: %w", err)
	}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get("http://" + m.Addr() + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				m.p = p
				return nil
			}
			err = fmt.Errorf("health: %s", resp.Status)
		}
		if !p.running() || time.Now().After(deadline) {
			p.killGroup()
			return fmt.Errorf("minio: not live (log %s): %w", m.log, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill SIGKILLs the server and waits for it to be gone.
func (m *MinIO) Kill() error {
	m.mu.Lock()
	p := m.p
	m.mu.Unlock()
	if p == nil || !p.running() {
		return errors.New("minio is not running")
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("minio kill: %w", err)
	}
	if err := p.wait(10 * time.Second); err != nil {
		return fmt.Errorf("minio kill: %w", err)
	}
	return nil
}

// Close kills the server and removes its folder.
func (m *MinIO) Close() {
	m.mu.Lock()
	p := m.p
	m.mu.Unlock()
	if p != nil {
		p.killGroup()
	}
	os.RemoveAll(m.dir)
}
