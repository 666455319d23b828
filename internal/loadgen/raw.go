package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// RawOptions shape a raw backend measurement.
type RawOptions struct {
	// Duration is how long to measure.
	Duration time.Duration `json:"duration"`
	// Concurrency is how many uploads or connections run at once.
	Concurrency int `json:"concurrency"`
	// ObjectSize is the bytes of each PUT (RawPut only).
	ObjectSize int `json:"object_size,omitempty"`
}

// RawResult is the outcome of a raw backend measurement: operations are
// object PUTs (RawPut) or committed single-row transactions (RawCommit).
type RawResult struct {
	// Kind is KindRawS3 or KindRawPG.
	Kind string `json:"kind"`
	// Label names the run in saved results.
	Label string `json:"label,omitempty"`
	// Target says what was measured (endpoint and bucket, or postgresql).
	Target  string     `json:"target"`
	Options RawOptions `json:"options"`
	// Started is when the measurement began, UTC.
	Started time.Time `json:"started"`
	// Ops is successful PUTs or commits; Bytes the bytes PUT.
	Ops   int64 `json:"ops"`
	Bytes int64 `json:"bytes"`
	// Seconds is the measured time.
	Seconds float64 `json:"seconds"`
	// OpsPerSec is PUTs or commits per second.
	OpsPerSec float64 `json:"ops_per_sec"`
	// MiBPerSec is PUT bandwidth (RawPut only).
	MiBPerSec float64 `json:"mib_per_sec,omitempty"`
	// Latency is per PUT or commit.
	Latency Latency `json:"latency"`
	// Errors are failed PUTs or commits by kind.
	Errors []ErrorCount `json:"errors"`
}

// Putter is the part of an object store RawPut needs (objstore.Store has
// it), so tests can measure a filesystem store.
type Putter interface {
	Put(ctx context.Context, key string, data []byte) error
	Delete(ctx context.Context, key string) error
}

// rawKeyPrefix is where RawPut writes; it deletes what it wrote after.
const rawKeyPrefix = "morax-bench-raw"

// RawPut measures object PUT throughput: Concurrency workers upload
// distinct ObjectSize objects back to back for Duration, then every object
// written is deleted (the delete is not timed).
func RawPut(ctx context.Context, store Putter, target string, o RawOptions) (*RawResult, error) {
	if o.Duration <= 0 || o.Concurrency < 1 || o.ObjectSize < 1 {
		return nil, fmt.Errorf("%w: raw PUT needs a positive duration, concurrency and object size", ErrInvalidConfig)
	}
	data := make([]byte, o.ObjectSize)
	r := rand.New(rand.NewPCG(rand.Uint64(), 1))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	run := fmt.Sprintf("%s/%016x", rawKeyPrefix, rand.Uint64())
	res := &RawResult{Kind: KindRawS3, Target: target, Options: o, Started: time.Now().UTC()}
	h := NewHistogram()
	var errs errorCounter
	var ops atomic.Int64
	var keysMu sync.Mutex
	var keys []string // guarded by keysMu
	start := time.Now()
	deadline := start.Add(o.Duration)
	var wg sync.WaitGroup
	for w := range o.Concurrency {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				key := fmt.Sprintf("%s/%d-%d", run, w, n)
				t0 := time.Now()
				err := store.Put(ctx, key, data)
				if err != nil {
					if ctx.Err() == nil {
						errs.add(err, 1)
						sleepCtx(ctx, errorPause)
					}
					continue
				}
				h.Record(time.Since(t0))
				ops.Add(1)
				keysMu.Lock()
				keys = append(keys, key)
				keysMu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.Ops, res.Bytes, res.Seconds = ops.Load(), ops.Load()*int64(o.ObjectSize), elapsed.Seconds()
	res.OpsPerSec = float64(res.Ops) / res.Seconds
	res.MiBPerSec = float64(res.Bytes) / res.Seconds / (1 << 20)
	res.Latency = LatencyOf(h)
	res.Errors = errs.list("put")

	// Clean up, bounded: a store that stopped answering must not hang.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var derr error
	for _, k := range keys {
		if err := store.Delete(cctx, k); err != nil {
			derr = fmt.Errorf("delete benchmark object %s: %w", k, err)
			break
		}
	}
	return res, derr
}

// rawTable is the table RawCommit inserts into and drops.
const rawTable = "morax_bench_commits"

// RawCommit measures the PostgreSQL single-row commit rate: Concurrency
// connections each insert one row per transaction (autocommit, so every
// insert waits for its WAL flush) for Duration. It creates an ordinary
// (logged) table, since a temporary or unlogged one would skip the fsync
// being measured, and drops it after.
func RawCommit(ctx context.Context, url string, o RawOptions) (res *RawResult, err error) {
	if o.Duration <= 0 || o.Concurrency < 1 {
		return nil, fmt.Errorf("%w: raw commit needs a positive duration and concurrency", ErrInvalidConfig)
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	table := fmt.Sprintf("%s_%08x", rawTable, rand.Uint32())
	if _, err := admin.Exec(ctx, "CREATE TABLE "+table+" (id bigserial PRIMARY KEY, worker int NOT NULL, at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return nil, fmt.Errorf("create %s: %w", table, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, derr := admin.Exec(dctx, "DROP TABLE IF EXISTS "+table); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop %s: %w", table, derr))
		}
	}()
	conns := make([]*pgx.Conn, o.Concurrency)
	for i := range conns {
		if conns[i], err = pgx.Connect(ctx, url); err != nil {
			for _, c := range conns[:i] {
				c.Close(ctx)
			}
			return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close(context.WithoutCancel(ctx))
		}
	}()

	res = &RawResult{Kind: KindRawPG, Target: "postgresql", Options: o, Started: time.Now().UTC()}
	h := NewHistogram()
	var errs errorCounter
	var ops atomic.Int64
	insert := "INSERT INTO " + table + " (worker) VALUES ($1)"
	start := time.Now()
	deadline := start.Add(o.Duration)
	var wg sync.WaitGroup
	for w, c := range conns {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if _, err := c.Exec(ctx, insert, w); err != nil {
					if ctx.Err() == nil {
						errs.add(err, 1)
						sleepCtx(ctx, errorPause)
					}
					continue
				}
				h.Record(time.Since(t0))
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Ops = ops.Load()
	res.OpsPerSec = float64(res.Ops) / res.Seconds
	res.Latency = LatencyOf(h)
	res.Errors = errs.list("commit")
	return res, nil
}
