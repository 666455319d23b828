package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a private PostgreSQL server: its own data folder and
// loopback port, so a test may stop, kill and restart it. It runs as the
// user postgres when the test runs as root (PostgreSQL refuses root).
type Postgres struct {
	bin  string // folder of initdb and postgres
	dir  string // owns data/ and the socket
	port int
	cred *syscall.Credential
	log  string

	mu sync.Mutex
	p  *proc
}

// Database is the database StartPostgres creates for the nodes.
const Database = "morax"

// StartPostgres initialises a fresh cluster in a new temporary folder,
// starts it and creates Database. Close removes everything.
func StartPostgres(ctx context.Context) (*Postgres, error) {
	bin := os.Getenv(EnvPostgresBin)
	if bin == "" {
		return nil, fmt.Errorf("%s is not set (dev/up.sh writes it to dev/.env)", EnvPostgresBin)
	}
	dir, err := os.MkdirTemp("", "morax-faults-pg-")
	if err != nil {
		return nil, fmt.Errorf("postgres temp dir: %w", err)
	}
	pg := &Postgres{bin: bin, dir: dir, log: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		// PostgreSQL will not run as root: the folder goes to postgres and
		// the processes run as postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the user postgres: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres temp dir: %w", err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres temp dir: %w", err)
		}
	}
	if pg.port, err = freeLoopbackPort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	initdb := pg.command(filepath.Join(bin, "initdb"), "-D", pg.dataDir(), "-U", "postgres", "-A", "trust", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := pg.Start(); err != nil {
		pg.Close()
		return nil, err
	}
	conn, err := pgx.Connect(ctx, pg.url("postgres"))
	if err != nil {
		pg.Close()
		return nil, fmt.Errorf("connect to the private postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+Database); err != nil {
		pg.Close()
		return nil, fmt.Errorf("create database %s: %w", Database, err)
	}
	return pg, nil
}

func (pg *Postgres) dataDir() string { return filepath.Join(pg.dir, "data") }

func (pg *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = pg.dir
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

func (pg *Postgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pg.Addr(), db)
}

// Addr is the server's loopback address (host:port), the same across
// restarts.
func (pg *Postgres) Addr() string { return fmt.Sprintf("127.0.0.1:%d", pg.port) }

// URL is a connection URL of Database through addr (the server's own
// address or a proxy's).
func (pg *Postgres) URL(addr string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", addr, Database)
}

// LogPath is the server's log file, for failure reports.
func (pg *Postgres) LogPath() string { return pg.log }

// Start starts the postmaster on the existing data folder (after Stop or
// Kill) and waits until it accepts connections. After a kill it retries
// while the dead postmaster's backends, which notice its death on their
// own, still hold the shared memory.
func (pg *Postgres) Start() error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.p != nil && pg.p.running() {
		return errors.New("postgres: start while running")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		logf, err := os.OpenFile(pg.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("postgres log: %w", err)
		}
		// fsync off: the faults kill processes, never the machine, so the
		// page cache survives them; and fsync on a shared 2-core machine
		// slows every other test. max_connections: three nodes' pools
		// plus the harness.
		cmd := pg.command(filepath.Join(pg.bin, "postgres"), "-D", pg.dataDir(),
			"-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-k", pg.dir,
			"-c", "fsync=off", "-c", "max_connections=200", "-c", "shared_buffers=64MB")
		cmd.Stdout, cmd.Stderr = logf, logf
		p, err := startProc(cmd)
		logf.Close()
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if err = pg.waitReady(p, deadline); err == nil {
			pg.p = p
			return nil
		}
		p.killGroup()
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres: start: %w (log %s)", err, pg.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitReady waits until the server answers a query (listening is not
// enough: after a crash it listens while it replays its WAL, refusing
// connections).
func (pg *Postgres) waitReady(p *proc, deadline time.Time) error {
	for {
		if !p.running() {
			return errors.New("exited during start")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, pg.url("postgres"))
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT 1")
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (pg *Postgres) current() (*proc, error) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.p == nil || !pg.p.running() {
		return nil, errors.New("postgres is not running")
	}
	return pg.p, nil
}

// Stop shuts the server down the "fast" way (SIGINT: clients are
// disconnected, work in flight rolled back, a clean checkpoint) and waits
// for it to exit.
func (pg *Postgres) Stop() error {
	p, err := pg.current()
	if err != nil {
		return err
	}
	if err := p.signal(syscall.SIGINT); err != nil {
		return fmt.Errorf("postgres stop: %w", err)
	}
	if err := p.wait(30 * time.Second); err != nil {
		return fmt.Errorf("postgres stop: %w", err)
	}
	return nil
}

// Kill SIGKILLs the postmaster alone, as a crash would; its backends
// notice and exit by themselves, and the next Start runs crash recovery.
func (pg *Postgres) Kill() error {
	p, err := pg.current()
	if err != nil {
		return err
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("postgres kill: %w", err)
	}
	if err := p.wait(10 * time.Second); err != nil {
		return fmt.Errorf("postgres kill: %w", err)
	}
	return nil
}

// Restart is Stop then Start.
func (pg *Postgres) Restart() error {
	if err := pg.Stop(); err != nil {
		return err
	}
	return pg.Start()
}

// Close kills the server and every process it started, and removes its
// folder.
func (pg *Postgres) Close() {
	pg.mu.Lock()
	p := pg.p
	pg.mu.Unlock()
	if p != nil {
		p.killGroup()
	}
	// Backends of a killed postmaster are in its process group too.
	os.RemoveAll(pg.dir)
}
