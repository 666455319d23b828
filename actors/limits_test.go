package actors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
)

// logBuffer is a log destination a test can search.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func counterValue(t *testing.T, reg prometheus.Gatherer, name, reason string) float64 {
	t.Helper()
	return labelledCounter(t, reg, name, "reason", reason)
}

// labelledCounter reads the counter name{label=value} from reg, 0 if it
// has no such series.
func labelledCounter(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// sendAppend sends one append to partition p through Send, once: unlike
// Broker.Append it does not retry a refusal.
func sendAppend(t *testing.T, b *actors.Broker, tp meta.Topic, p int32, batch []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := actors.Call(ctx, "append", func(reply func(actors.AppendResult)) {
		b.Send(tp, p, &actors.Append{Batches: batch, ExpectedOffset: -1, Reply: reply})
	})
	return err
}

// The creation caps, checked by the broker itself: each refusal is the
// right error and is counted under its reason, and nothing refused is
// created.
func TestCreateLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		o := testOptions("n1")
		o.Limits = actors.Limits{MaxPartitionsPerTopic: 10, MaxClusterPartitions: 15, CreateRate: 1, CreateBurst: 6}
		// A clock that stands still: the bucket never refills, so what it
		// admits does not depend on how fast the store is.
		stopped := time.Now()
		o.Now = func() time.Time { return stopped }
		reg := prometheus.NewRegistry()
		o.Metrics = reg
		b := startBroker(t, be, o)
		ctx := t.Context()
		for _, tc := range []struct {
			name       string
			partitions int32
			want       error
			reason     string
		}{
			{"over the per-topic cap", 11, actors.ErrTooManyPartitions, actors.LimitTopicPartitions},
			{"at the per-topic cap", 10, nil, ""},
			{"past the cluster cap", 6, actors.ErrLimitReached, actors.LimitClusterPartitions},
			{"up to the cluster cap", 5, nil, ""},
			{"a full cluster", 1, actors.ErrLimitReached, actors.LimitClusterPartitions},
		} {
			_, err := b.CreateTopic(ctx, meta.Topic{Name: strings.ReplaceAll(tc.name, " ", "-"), Partitions: tc.partitions})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		if err := b.AddPartitions(ctx, "at-the-per-topic-cap", 11); !errors.Is(err, actors.ErrTooManyPartitions) {
			t.Errorf("grow past the per-topic cap: %v", err)
		}
		if n, err := be.meta.PartitionCount(ctx); err != nil || n != 15 {
			t.Errorf("partition count %d (%v), want 15", n, err)
		}
		// Four creations took tokens (the refusal by the per-topic cap
		// comes before the bucket); two are left of the burst.
		if err := b.DeleteTopic(ctx, "up-to-the-cluster-cap"); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			_, err := b.CreateTopic(ctx, meta.Topic{Name: fmt.Sprintf("r%d", i), Partitions: 1})
			switch {
			case i < 2 && err != nil:
				t.Errorf("creation %d within the burst: %v", i, err)
			case i == 2 && (!errors.Is(err, actors.ErrThrottled) || actors.ThrottleWait(err) != time.Second):
				t.Errorf("past the burst: %v (wait %s), want ErrThrottled with a wait of 1s", err, actors.ThrottleWait(err))
			}
		}
		for reason, want := range map[string]float64{actors.LimitTopicPartitions: 2, actors.LimitClusterPartitions: 2, actors.LimitCreateRate: 1} {
			if got := counterValue(t, reg, "morax_limit_refusals_total", reason); got != want {
				t.Errorf("refusals for %s = %v, want %v", reason, got, want)
			}
		}
	})
}

// Without a cluster, partitions start on the first request for them: past
// MaxNodePartitions the node starts no more and refuses the request as not
// led here, counted under node_partitions.
func TestNodePartitionLimitOnDemand(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		o := testOptions("n1")
		o.Limits.MaxNodePartitions = 3
		reg := prometheus.NewRegistry()
		o.Metrics = reg
		b := startBroker(t, be, o)
		tp := createTopic(t, b, "t", 5, nil)
		for p := range int32(3) {
			appendOK(t, b, tp, p, batchOf(t, "x"))
		}
		for p := int32(3); p < 5; p++ {
			if err := sendAppend(t, b, tp, p, batchOf(t, "x")); !errors.Is(err, actors.ErrNotOwner) {
				t.Errorf("append to partition %d past the node's limit: %v, want ErrNotOwner", p, err)
			}
		}
		if got := counterValue(t, reg, "morax_limit_refusals_total", actors.LimitNodePartitions); got != 2 {
			t.Errorf("refusals for node_partitions = %v, want 2", got)
		}
		if h := b.Health(); !h.OK() || h.Partitions != 3 || h.PartitionLimit != 3 {
			t.Errorf("health %+v, want OK with 3 of 3 partitions", h)
		}
	})
}

// A storm of partitions failing to start (the store refusing every lease)
// is logged as the first failure and a count, not a line per partition,
// and every failure is counted.
func TestStartFailuresLoggedInAggregate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		failing := &failingLeases{Store: be.meta}
		be.meta = failing
		o := testOptions("n1")
		reg := prometheus.NewRegistry()
		o.Metrics = reg
		logs := &logBuffer{}
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
		b := startBroker(t, be, o)
		const parts = 200
		tp := createTopic(t, b, "t", parts, nil)
		failing.armed.Store(true)
		for p := range int32(parts) {
			if err := sendAppend(t, b, tp, p, batchOf(t, "x")); err == nil {
				t.Fatalf("append to partition %d succeeded with leases failing", p)
			}
		}
		// The failures reach the registry through its mailbox; wait until
		// it counted them all.
		waitFor(t, 30*time.Second, "every start failure counted", func() bool {
			return counterValue(t, reg, "morax_partition_start_failures_total", "other") >= parts
		})
		if n := strings.Count(logs.String(), "partition failed to start"); n != 1 {
			t.Errorf("%d lines say a partition failed to start, want 1:\n%s", n, logs)
		}
	})
}

// Health turns unhealthy while the lease owner's renewals fail, from what
// it published, and healthy again once one succeeds.
func TestHealthFollowsLeaseRenewals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		failing := &failingLeases{Store: be.meta}
		be.meta = failing
		o := testOptions("n1")
		o.LeaseTTL = 900 * time.Millisecond
		b := startBroker(t, be, o)
		tp := createTopic(t, b, "t", 1, nil)
		appendOK(t, b, tp, 0, batchOf(t, "x")) // holds a lease: renewals run
		if h := b.Health(); !h.OK() {
			t.Fatalf("health before: %+v", h)
		}
		failing.armed.Store(true)
		waitFor(t, 30*time.Second, "health failing with the renewals", func() bool { return !b.Health().OK() })
		if h := b.Health(); len(h.Problems) != 1 || !strings.Contains(h.Problems[0], "lease renewals failing") {
			t.Errorf("health while renewals fail: %+v", h)
		}
		failing.armed.Store(false)
		appendOK(t, b, tp, 0, batchOf(t, "y")) // the partition restarts and holds a lease again
		// Healthy again at the next renewal that succeeds, or at once if
		// the partition lost its lease meanwhile and nothing is held.
		waitFor(t, 30*time.Second, "health back", func() bool { return b.Health().OK() })
	})
}

// The ownership loop starts at most StartsPerPoll partitions per poll: a
// topic of ten partitions gets two started by the poll its creation asks
// for, and two more by the next (the poll interval is an hour, so only
// creations cause polls).
func TestPartitionStartsPaced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		o := testOptions("n1")
		o.Limits.StartsPerPoll = 2
		reg := prometheus.NewRegistry()
		o.Metrics = reg
		b := startBroker(t, be, o)
		self := meta.Node{ID: "n1", KafkaAddr: "127.0.0.1:1", WALAddr: "127.0.0.1:2", RemoteAddr: "127.0.0.1:3"}
		m, err := actors.StartMembership(context.Background(), be.meta, self, time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = m.Close(ctx)
		})
		if err := b.StartCluster(actors.ClusterOptions{Self: self, Poll: time.Hour}); err != nil {
			t.Fatal(err)
		}
		createTopic(t, b, "ten", 10, nil)
		itest.WaitForGauge(t, reg, "morax_partition_actors", 2)
		createTopic(t, b, "one", 1, nil)
		itest.WaitForGauge(t, reg, "morax_partition_actors", 4)
		if h := b.Health(); h.Partitions != 4 {
			t.Errorf("%d partitions started after two polls, want 4", h.Partitions)
		}
	})
}
