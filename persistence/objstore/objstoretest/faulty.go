package objstoretest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/morax-dev/morax/persistence/objstore"
)

// ErrInjected is the error a Faulty store returns for an injected failure.
// It stands for a transient outage (a 503, a reset connection), so code
// under test should treat it as retriable, as it would a real one.
var ErrInjected = errors.New("objstoretest: injected fault")

// Op names objstore.Store operations for fault injection; values combine
// as a set.
type Op uint8

// The operations a Faulty store can slow down or fail.
const (
	OpPut Op = 1 << iota
	OpGet
	OpDelete
	OpList

	// OpAll selects every operation.
	OpAll = OpPut | OpGet | OpDelete | OpList
)

var opNames = [...]string{"put", "get", "delete", "list"}

// String names the operations in the set, e.g. "put|get".
func (o Op) String() string {
	var names []string
	for i, n := range opNames {
		if o&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

func opIndex(o Op) int {
	for i := range opNames {
		if o == 1<<i {
			return i
		}
	}
	panic(fmt.Sprintf("objstoretest: opIndex of %v, which is not a single operation", o))
}

// faultConfig is replaced whole on every change, so an operation always
// sees one consistent setting (never the new failure set with the old
// probability).
type faultConfig struct {
	delay       [len(opNames)]time.Duration
	failOps     Op
	probability float64
	putLands    bool
}

// Faulty wraps an objstore.Store to inject delays and failures, so that
// tests of other packages, such as the partition actor's, can simulate a
// slow or failing object store around a real one. Settings can be changed
// at any time, from any goroutine, while operations run.
type Faulty struct {
	inner    objstore.Store
	cfg      atomic.Pointer[faultConfig]
	calls    [len(opNames)]atomic.Int64
	injected [len(opNames)]atomic.Int64
}

var _ objstore.Store = (*Faulty)(nil)

// NewFaulty wraps inner with no faults set: it behaves as inner until told
// otherwise.
func NewFaulty(inner objstore.Store) *Faulty {
	f := &Faulty{inner: inner}
	f.cfg.Store(&faultConfig{})
	return f
}

func (f *Faulty) update(change func(*faultConfig)) {
	for {
		old := f.cfg.Load()
		next := *old
		change(&next)
		if f.cfg.CompareAndSwap(old, &next) {
			return
		}
	}
}

// SetDelay makes every operation in ops wait d before it runs (or until its
// context ends); zero removes the delay.
func (f *Faulty) SetDelay(ops Op, d time.Duration) {
	f.update(func(c *faultConfig) {
		for i := range opNames {
			if ops&(1<<i) != 0 {
				c.delay[i] = d
			}
		}
	})
}

// SetFailures makes each call of an operation in ops fail with ErrInjected
// with the given probability (clamped to [0, 1]; 1 fails every call). It
// replaces the previous failure setting: SetFailures(0, 0) turns failures
// off.
func (f *Faulty) SetFailures(ops Op, probability float64) {
	probability = min(max(probability, 0), 1)
	f.update(func(c *faultConfig) {
		c.failOps = ops
		c.probability = probability
	})
}

// SetPutLands chooses when an injected Put failure happens. false (the
// default): before the inner Put, so nothing is stored. true: after the
// inner Put succeeded, so the object exists but the caller sees an error, as
// when a response is lost; a retry of the same key then meets ErrExists.
func (f *Faulty) SetPutLands(lands bool) {
	f.update(func(c *faultConfig) { c.putLands = lands })
}

// Heal removes every delay and failure setting; counters are kept.
func (f *Faulty) Heal() { f.cfg.Store(&faultConfig{}) }

// Calls returns how many calls of the operations in ops were made,
// including those that failed by injection.
func (f *Faulty) Calls(ops Op) int64 { return f.sum(&f.calls, ops) }

// Injected returns how many calls of the operations in ops failed by
// injection.
func (f *Faulty) Injected(ops Op) int64 { return f.sum(&f.injected, ops) }

func (f *Faulty) sum(counters *[len(opNames)]atomic.Int64, ops Op) int64 {
	var n int64
	for i := range counters {
		if ops&(1<<i) != 0 {
			n += counters[i].Load()
		}
	}
	return n
}

// before counts the call, applies the delay and decides whether this call
// fails; it returns the context's error if the context ends during the delay.
func (f *Faulty) before(ctx context.Context, op Op) (fail, putLands bool, err error) {
	i := opIndex(op)
	f.calls[i].Add(1)
	c := f.cfg.Load()
	if d := c.delay[i]; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, false, fmt.Errorf("objstoretest: faulty %v: %w", op, ctx.Err())
		}
	}
	if c.failOps&op != 0 && c.probability > 0 && rand.Float64() < c.probability {
		f.injected[i].Add(1)
		return true, c.putLands, nil
	}
	return false, false, nil
}

func injected(op Op, key string) error {
	return fmt.Errorf("objstoretest: faulty %v %q: %w", op, key, ErrInjected)
}

// Put implements objstore.Store.
func (f *Faulty) Put(ctx context.Context, key string, data []byte) error {
	fail, lands, err := f.before(ctx, OpPut)
	if err != nil {
		return err
	}
	if !fail {
		return f.inner.Put(ctx, key, data)
	}
	if lands {
		if err := f.inner.Put(ctx, key, data); err != nil {
			return err
		}
	}
	return injected(OpPut, key)
}

// Get implements objstore.Store.
func (f *Faulty) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	fail, _, err := f.before(ctx, OpGet)
	if err != nil {
		return nil, err
	}
	if fail {
		return nil, injected(OpGet, key)
	}
	return f.inner.Get(ctx, key, off, length)
}

// Delete implements objstore.Store.
func (f *Faulty) Delete(ctx context.Context, key string) error {
	fail, _, err := f.before(ctx, OpDelete)
	if err != nil {
		return err
	}
	if fail {
		return injected(OpDelete, key)
	}
	return f.inner.Delete(ctx, key)
}

// List implements objstore.Store. An injected failure happens before the
// first object is listed.
func (f *Faulty) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	fail, _, err := f.before(ctx, OpList)
	if err != nil {
		return err
	}
	if fail {
		return injected(OpList, prefix)
	}
	return f.inner.List(ctx, prefix, fn)
}

// Close implements objstore.Store by closing the wrapped store.
func (f *Faulty) Close() error { return f.inner.Close() }
