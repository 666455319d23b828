package clustertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/morax-dev/morax/wire/wal/client"
)

// WALLoad appends to one WAL log through one node, conditionally at the end
// it expects, so the log holds nothing but the batches it sent: a batch
// acknowledged, or one whose attempt failed (it may or may not have
// committed). It records both.
type WALLoad struct {
	c      *Cluster
	name   string
	via    *Node
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	acked    []walBatch
	attempts map[string]bool // data of every attempted entry
	failures int
	lastErr  error
	// The slowest append, and the first errors, for diagnosis.
	slowest    time.Duration
	slowestAt  time.Time
	slowestErr error
	errLog     []string
	// firstAckAfter is when the first append succeeded after mark, set by
	// MarkFailover: the WAL side of the failover time.
	mark          time.Time
	firstAckAfter time.Time
}

// walBatch is one acknowledged append: its range and its entries' data.
type walBatch struct {
	r       client.Range
	entries []string
}

// StartWAL starts a WALLoad appending three entries to the WAL log name
// through node via every every (after a failed attempt, sooner), until
// Stop.
func (c *Cluster) StartWAL(name string, via *Node, every time.Duration) *WALLoad {
	c.t.Helper()
	cl, err := client.New("http://" + via.walAddr)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &WALLoad{c: c, name: name, via: via, cancel: cancel, done: make(chan struct{}), attempts: map[string]bool{}}
	c.t.Cleanup(cancel) // a test that fails half-way never calls Stop
	go func() {
		defer close(w.done)
		end := int64(0)
		for seq := 0; ctx.Err() == nil; seq++ {
			entries := make([][]byte, 3)
			strs := make([]string, 3)
			for i := range entries {
				strs[i] = fmt.Sprintf("w-%07d-%d", seq, i)
				entries[i] = []byte(strs[i])
			}
			w.mu.Lock()
			for _, s := range strs {
				w.attempts[s] = true
			}
			w.mu.Unlock()
			began := time.Now()
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			r, err := cl.AppendIf(actx, name, entries, end)
			acancel()
			took := time.Since(began)
			w.mu.Lock()
			if took > w.slowest {
				w.slowest, w.slowestAt, w.slowestErr = took, began, err
			}
			if err != nil && len(w.errLog) < 10 {
				w.errLog = append(w.errLog, fmt.Sprintf("%s +%s: %v", began.Format("15:04:05.000"), took.Round(time.Millisecond), err))
			}
			switch {
			case err == nil:
				if r.Start != end || r.Len() != 3 {
					w.lastErr = fmt.Errorf("append at %d answered range %v", end, r)
					w.failures++
				}
				w.acked = append(w.acked, walBatch{r: r, entries: strs})
				end = r.End
				if !w.mark.IsZero() && w.firstAckAfter.IsZero() {
					w.firstAckAfter = time.Now()
				}
			case client.CodeOf(err) == client.CodeConflict:
				// An earlier attempt that failed for us did commit: the
				// log is further than we thought.
				var ae *client.APIError
				if errors.As(err, &ae) && ae.EndOffset >= end {
					end = ae.EndOffset
				}
				w.failures++
				w.lastErr = err
			default:
				w.failures++
				w.lastErr = err
			}
			w.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
	return w
}

// MarkFailover starts timing the WAL side of a failover.
func (w *WALLoad) MarkFailover(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mark, w.firstAckAfter = at, time.Time{}
}

// WaitAcked waits until n more batches than now are acknowledged.
func (w *WALLoad) WaitAcked(n int, timeout time.Duration) {
	w.c.t.Helper()
	target := w.ackedCount() + n
	w.c.WaitFor(fmt.Sprintf("%d acknowledged WAL batches", target), timeout, func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.acked) >= target, fmt.Sprintf("%d acknowledged (last error %v)", len(w.acked), w.lastErr)
	})
}

// ackedCount is how many batches were acknowledged so far.
func (w *WALLoad) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// Stop ends the appends, waits for the one in flight and logs what
// happened, failing the test if a failover was marked and no append
// succeeded after it.
func (w *WALLoad) Stop() {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c.t.Logf("WAL appends to %s through %s: %d batches acknowledged, %d failed attempts (last error: %v)",
		w.name, w.via.id, len(w.acked), w.failures, w.lastErr)
	w.c.t.Logf("WAL: slowest append took %s, sent at %s (error: %v); first errors: %s",
		w.slowest.Round(time.Millisecond), w.slowestAt.Format("15:04:05.000"), w.slowestErr, strings.Join(w.errLog, "; "))
	if !w.mark.IsZero() {
		if w.firstAckAfter.IsZero() {
			w.c.t.Errorf("WAL: no append succeeded after the failure")
		} else {
			w.c.t.Logf("WAL: first append acknowledged %s after the failure", w.firstAckAfter.Sub(w.mark).Round(time.Millisecond))
		}
	}
}

// Check reads the whole log back through a live node and checks it holds
// exactly the acknowledged entries at their acknowledged offsets, densely,
// and nothing but entries that were attempted.
func (w *WALLoad) Check() {
	t := w.c.t
	t.Helper()
	live := w.c.live()
	if len(live) == 0 {
		t.Fatal("no live node to read the WAL through")
	}
	cl, err := client.New("http://" + live[len(live)-1].walAddr)
	if err != nil {
		t.Fatal(err)
	}
	// The cluster has settled before the check, so a read that keeps
	// failing for this long is a failure, not a move in progress.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []client.Entry
	for {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := cl.Read(rctx, w.name, int64(len(all)), &client.ReadOptions{MaxEntries: 2000})
		rcancel()
		if err != nil {
			if client.CodeOf(err) == client.CodeUnavailable && ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			t.Errorf("WAL read %s at %d through %s: %v", w.name, len(all), cl.Endpoint(), err)
			return
		}
		all = append(all, res.Entries...)
		if len(res.Entries) == 0 || int64(len(all)) >= res.EndOffset {
			break
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	bad := 0
	seen := map[string]bool{}
	for i, e := range all {
		if e.Index != int64(i) {
			t.Errorf("WAL %s: entry %d has index %d: offsets not dense", w.name, i, e.Index)
			return
		}
		s := string(e.Data)
		if !w.attempts[s] {
			bad++
			t.Errorf("WAL %s@%d: %q was never appended", w.name, i, s)
		}
		if seen[s] {
			bad++
			t.Errorf("WAL %s@%d: %q appears twice", w.name, i, s)
		}
		seen[s] = true
	}
	for _, b := range w.acked {
		for i, want := range b.entries {
			off := b.r.Start + int64(i)
			if off >= int64(len(all)) {
				bad++
				t.Errorf("WAL %s: acknowledged %q at %d is missing (log has %d entries)", w.name, want, off, len(all))
				continue
			}
			if got := string(all[off].Data); got != want {
				bad++
				t.Errorf("WAL %s: acknowledged %q at %d, log has %q", w.name, want, off, got)
			}
		}
	}
	if bad == 0 {
		t.Logf("WAL %s: %d entries read back, all %d acknowledged batches at their offsets", w.name, len(all), len(w.acked))
	}
}
