package clustertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupConsumer is one member of a consumer group that commits explicitly
// after processing each poll, and checks that the group never hands it a
// record below an offset the group acknowledged committing.
type GroupConsumer struct {
	c      *Cluster
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	got        map[int32]map[int64]string
	committed  map[int32]int64 // per partition: the highest commit the coordinator acknowledged
	commitErrs int
	fetchErrs  int
	lastErr    error
	problems   []string
}

// StartGroupConsumer joins group. committed are offsets known to be
// committed already (a previous member's), below which nothing may be
// delivered.
func (c *Cluster) StartGroupConsumer(group, topic string, committed map[int32]int64) *GroupConsumer {
	c.t.Helper()
	g := &GroupConsumer{c: c, done: make(chan struct{}), got: map[int32]map[int64]string{}, committed: map[int32]int64{}}
	maps.Copy(g.committed, committed)
	g.cl = c.kafkaClient(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(10*time.Second),
	)
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	c.t.Cleanup(cancel) // a test that fails half-way never calls Stop
	go func() {
		defer close(g.done)
		for ctx.Err() == nil {
			fs := g.cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachError(func(topic string, p int32, err error) {
				g.mu.Lock()
				g.fetchErrs++
				g.lastErr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
				g.mu.Unlock()
			})
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			g.mu.Lock()
			for _, r := range recs {
				if c := g.committed[r.Partition]; r.Offset < c {
					g.problems = append(g.problems, fmt.Sprintf("partition %d: offset %d delivered after the group committed %d", r.Partition, r.Offset, c))
				}
				m := g.got[r.Partition]
				if m == nil {
					m = map[int64]string{}
					g.got[r.Partition] = m
				}
				if v, ok := m[r.Offset]; ok && v != string(r.Value) {
					g.problems = append(g.problems, fmt.Sprintf("partition %d offset %d: read %q, earlier %q", r.Partition, r.Offset, r.Value, v))
				}
				m[r.Offset] = string(r.Value)
			}
			g.mu.Unlock()
			// Processing done: commit what this poll returned.
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			err := g.cl.CommitRecords(cctx, recs...)
			ccancel()
			g.mu.Lock()
			if err != nil {
				g.commitErrs++
				g.lastErr = fmt.Errorf("commit: %w", err)
			} else {
				for _, r := range recs {
					g.committed[r.Partition] = max(g.committed[r.Partition], r.Offset+1)
				}
			}
			g.mu.Unlock()
		}
	}()
	return g
}

func (g *GroupConsumer) consumedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, m := range g.got {
		n += len(m)
	}
	return n
}

// WaitConsumed waits until n more records than now were consumed.
func (g *GroupConsumer) WaitConsumed(n int, timeout time.Duration) {
	g.c.t.Helper()
	target := g.consumedCount() + n
	g.c.WaitFor(fmt.Sprintf("group consumer at %d records", target), timeout, func() (bool, string) {
		g.mu.Lock()
		last := g.lastErr
		g.mu.Unlock()
		got := g.consumedCount()
		return got >= target, fmt.Sprintf("%d consumed (last error %v)", got, last)
	})
}

// WaitCommitted waits until the group has committed each partition up to
// ends, having read everything below.
func (g *GroupConsumer) WaitCommitted(ends map[int32]int64, timeout time.Duration) {
	g.c.t.Helper()
	g.c.WaitFor("group committed to the end of every partition", timeout, func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		for p, end := range ends {
			if g.committed[p] < end {
				return false, fmt.Sprintf("partition %d committed %d of %d (last error %v)", p, g.committed[p], end, g.lastErr)
			}
		}
		return true, ""
	})
}

// CommittedOffsets returns, per partition, the highest offset commit the
// coordinator acknowledged to this member (or the committed offsets it was
// started with).
func (g *GroupConsumer) CommittedOffsets() map[int32]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.committed)
}

// Offsets returns the offsets the member read from partition p, ascending.
func (g *GroupConsumer) Offsets(p int32) []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Sorted(maps.Keys(g.got[p]))
}

// Stop leaves the group (committing nothing more: auto-commit is off) and
// reports what the member saw.
func (g *GroupConsumer) Stop() {
	g.cancel()
	<-g.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.cl.LeaveGroupContext(ctx); err != nil {
		g.c.t.Logf("leave group: %v", err)
	}
	g.cl.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.c.t.Logf("group member: %d fetch errors, %d failed commits (last error: %v)", g.fetchErrs, g.commitErrs, g.lastErr)
	for i, p := range g.problems {
		if i == 20 {
			g.c.t.Errorf("... %d group problems in all", len(g.problems))
			break
		}
		g.c.t.Errorf("consumer group: %s", p)
	}
}

// CheckSaw checks the member read every acknowledged record, with its value.
func (g *GroupConsumer) CheckSaw(acked []AckedRecord) {
	g.c.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	missing := 0
	for _, a := range acked {
		if v, ok := g.got[a.Partition][a.Offset]; !ok || v != a.Value {
			missing++
			if missing <= 10 {
				g.c.t.Errorf("consumer group did not read acknowledged %q at %d/%d (read %q)", a.Value, a.Partition, a.Offset, v)
			}
		}
	}
	if missing > 10 {
		g.c.t.Errorf("... %d acknowledged records not read by the group", missing)
	}
}

// Coordinator asks the cluster (FindCoordinator) which node coordinates
// group, waiting while the answer is a retriable error (a slot moving).
func (c *Cluster) Coordinator(group string) string {
	c.t.Helper()
	cl := c.kafkaClient()
	defer cl.Close()
	node := ""
	c.WaitFor("coordinator of group "+group, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = group
		req.CoordinatorKeys = []string{group}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return false, err.Error()
		}
		code, host, port := resp.ErrorCode, resp.Host, resp.Port
		if len(resp.Coordinators) > 0 {
			k := resp.Coordinators[0]
			code, host, port = k.ErrorCode, k.Host, k.Port
		}
		if code != 0 {
			return false, kerr.ErrorForCode(code).Error()
		}
		addr := fmt.Sprintf("%s:%d", host, port)
		for _, n := range c.nodes {
			if n.kafkaAddr == addr {
				node = n.id
				return true, ""
			}
		}
		return false, "coordinator " + addr + " is no node of the cluster"
	})
	return node
}
