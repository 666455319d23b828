package clustertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaClient is a franz-go client tuned for a cluster whose leaders move:
// metadata refreshed as soon as an error asks for it, and requests to a
// silent (paused) broker given up after seconds instead of the default
// tens of seconds.
func (c *Cluster) kafkaClient(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(c.seeds()...),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(2 * time.Second),
		kgo.RequestTimeoutOverhead(3 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// CreateTopic creates a Kafka topic through the cluster and waits until
// every partition has an owner.
func (c *Cluster) CreateTopic(name string, partitions int32) {
	c.t.Helper()
	cl := c.kafkaClient()
	defer cl.Close()
	c.WaitFor("create topic "+name, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 5000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return false, err.Error()
		}
		if len(resp.Topics) != 1 {
			return false, fmt.Sprintf("%d topics in the answer", len(resp.Topics))
		}
		code := resp.Topics[0].ErrorCode
		// Already exists: an earlier attempt succeeded but its answer was
		// lost.
		if code == 0 || code == kerr.TopicAlreadyExists.Code {
			return true, ""
		}
		return false, kerr.ErrorForCode(code).Error()
	})
	c.WaitFor("owners for every partition of "+name, 30*time.Second, func() (bool, string) {
		s, err := c.Status()
		if err != nil {
			return false, err.Error()
		}
		got := s.PartitionLeases(name)
		for p := range partitions {
			if got[p].Node == "" {
				return false, fmt.Sprintf("partition %d has no owner", p)
			}
		}
		return true, ""
	})
}

// AckedRecord is a record the cluster acknowledged.
type AckedRecord struct {
	Partition int32
	Offset    int64
	Value     string
	At        time.Time // when the acknowledgement reached the producer
}

// ProduceLoad is idempotent producers (acks=all, franz-go's defaults)
// writing to every partition of a topic at a steady pace, recording every
// acknowledged record. Each producer numbers its values (p<i>-<seq>) and
// sends seq to partition seq % partitions, so every partition gets an
// increasing sequence from every producer.
type ProduceLoad struct {
	c      *Cluster
	topic  string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	acked   []AckedRecord
	sent    int
	refused int // not buffered: the client's buffer was full
	failed  int
	lastErr error
}

// StartProducers starts a ProduceLoad of the given number of producers on
// topic's partitions, each sending one record every every, until Stop.
func (c *Cluster) StartProducers(topic string, partitions int32, producers int, every time.Duration) *ProduceLoad {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &ProduceLoad{c: c, topic: topic, cancel: cancel}
	// A test that fails half-way never calls Stop: end the producers with
	// it (their clients close, abandoning what is buffered), or they would
	// go on retrying against a cluster that is gone.
	abort := make(chan struct{})
	c.t.Cleanup(func() { close(abort); cancel() })
	for i := range producers {
		cl := c.kafkaClient(
			kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(5*time.Millisecond),
			kgo.ProduceRequestTimeout(5*time.Second),
			// Bounded: while a partition has no leader the producer stops
			// at this many buffered records instead of growing.
			kgo.MaxBufferedRecords(2000),
		)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer cl.Close()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-ctx.Done():
					// Wait for every record in flight: its outcome (acked
					// or failed) is part of what the test checks.
					fctx, fcancel := context.WithTimeout(context.Background(), 45*time.Second)
					go func() {
						select {
						case <-abort:
							fcancel()
						case <-fctx.Done():
						}
					}()
					if err := cl.Flush(fctx); err != nil {
						l.mu.Lock()
						l.lastErr = fmt.Errorf("producer %d: flush: %w", i, err)
						l.mu.Unlock()
					}
					fcancel()
					return
				case <-tick.C:
				}
				r := &kgo.Record{Partition: int32(seq % int(partitions)), Value: fmt.Appendf(nil, "p%d-%09d", i, seq)}
				l.mu.Lock()
				l.sent++
				l.mu.Unlock()
				// TryProduce, not Produce: when the buffer is full (no
				// leader for a while) the record is refused at once rather
				// than blocking this loop, which must always notice stop.
				cl.TryProduce(context.Background(), r, func(r *kgo.Record, err error) {
					l.mu.Lock()
					defer l.mu.Unlock()
					if errors.Is(err, kgo.ErrMaxBuffered) {
						l.refused++
						return
					}
					if err != nil {
						l.failed++
						l.lastErr = err
						return
					}
					l.acked = append(l.acked, AckedRecord{Partition: r.Partition, Offset: r.Offset, Value: string(r.Value), At: time.Now()})
				})
			}
		}()
	}
	return l
}

// ackedCount is how many records were acknowledged so far.
func (l *ProduceLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// WaitAcked waits until n more records than now are acknowledged: the
// cluster makes progress.
func (l *ProduceLoad) WaitAcked(n int, timeout time.Duration) {
	l.c.t.Helper()
	target := l.ackedCount() + n
	l.c.WaitFor(fmt.Sprintf("%d acknowledged records", target), timeout, func() (bool, string) {
		got := l.ackedCount()
		l.mu.Lock()
		last := l.lastErr
		l.mu.Unlock()
		return got >= target, fmt.Sprintf("%d acknowledged (last error %v)", got, last)
	})
}

// Stop ends the load and waits for every record's outcome.
func (l *ProduceLoad) Stop() []AckedRecord {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.c.t.Logf("producers on %s: %d produced, %d acknowledged, %d failed, %d refused by the full client buffer (last error: %v)",
		l.topic, l.sent, len(l.acked), l.failed, l.refused, l.lastErr)
	if len(l.acked) == 0 {
		l.c.t.Errorf("no record acknowledged on %s", l.topic)
	}
	return slices.Clone(l.acked)
}

// ProduceSync writes perPartition records to every partition, one
// acknowledged batch at a time, and returns them.
func (c *Cluster) ProduceSync(topic string, partitions int32, perPartition int) []AckedRecord {
	c.t.Helper()
	cl := c.kafkaClient(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	var recs []*kgo.Record
	seq := 0
	for range perPartition {
		for p := range partitions {
			recs = append(recs, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "p9-%09d", seq)})
			seq++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		c.t.Fatalf("produce %d records: %v", len(recs), err)
	}
	var out []AckedRecord
	for _, r := range res {
		out = append(out, AckedRecord{Partition: r.Record.Partition, Offset: r.Record.Offset, Value: string(r.Record.Value), At: time.Now()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value < out[j].Value })
	return out
}

// ConsumedPartition is a partition's records as read back: values by offset.
type ConsumedPartition struct {
	offsets []int64
	values  []string
}

// ReadAll reads every partition of topic from offset 0 up to its committed
// end (partitions.next_offset) with a plain (group-less) consumer.
func (c *Cluster) ReadAll(topic string, partitions int32) map[int32]*ConsumedPartition {
	c.t.Helper()
	ends := c.PartitionEnds(topic)
	assign := map[int32]kgo.Offset{}
	for p := range partitions {
		assign[p] = kgo.NewOffset().At(0)
	}
	cl := c.kafkaClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	defer cl.Close()
	out := map[int32]*ConsumedPartition{}
	for p := range partitions {
		out[p] = &ConsumedPartition{}
	}
	done := func() bool {
		for p := range partitions {
			if int64(len(out[p].offsets)) < ends[p] {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var have []string
			for p := range partitions {
				have = append(have, fmt.Sprintf("%d:%d/%d", p, len(out[p].offsets), ends[p]))
			}
			c.t.Fatalf("reading %s back: timed out with partition:read/end %s", topic, strings.Join(have, " "))
		}
		fs.EachError(func(t string, p int32, err error) {
			c.t.Logf("read %s/%d: %v (retrying)", t, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			cp := out[r.Partition]
			cp.offsets = append(cp.offsets, r.Offset)
			cp.values = append(cp.values, string(r.Value))
		})
	}
	return out
}

// CheckRecords checks what was read back against what was acknowledged:
// offsets dense from 0, no value written twice, every acknowledged record
// exactly at its acknowledged offset, and each producer's values in
// increasing order within a partition.
func CheckRecords(t testing.TB, topic string, got map[int32]*ConsumedPartition, acked []AckedRecord) {
	t.Helper()
	where := map[string]string{} // value -> partition/offset
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for p, cp := range got {
		lastSeq := map[string]int{}
		for i, off := range cp.offsets {
			if off != int64(i) {
				report("%s/%d: record %d has offset %d: offsets are not dense from 0", topic, p, i, off)
				break
			}
			v := cp.values[i]
			if prev, dup := where[v]; dup {
				report("%s: value %q at %d/%d was already at %s: written twice", topic, v, p, off, prev)
			}
			where[v] = fmt.Sprintf("%d/%d", p, off)
			prod, seqStr, ok := strings.Cut(v, "-")
			seq, err := strconv.Atoi(seqStr)
			if !ok || err != nil {
				report("%s/%d@%d: value %q is not one the producers wrote", topic, p, off, v)
				continue
			}
			if last, seen := lastSeq[prod]; seen && seq <= last {
				report("%s/%d@%d: %q after %s-%09d: producer order broken", topic, p, off, v, prod, last)
			}
			lastSeq[prod] = seq
		}
	}
	for _, a := range acked {
		cp := got[a.Partition]
		if cp == nil || a.Offset < 0 || a.Offset >= int64(len(cp.values)) {
			report("%s: acknowledged %q at %d/%d is missing (partition read has %d records)", topic, a.Value, a.Partition, a.Offset, lenOf(cp))
			continue
		}
		if v := cp.values[a.Offset]; v != a.Value {
			report("%s: acknowledged %q at %d/%d, but the log has %q there", topic, a.Value, a.Partition, a.Offset, v)
		}
	}
	if bad > 20 {
		t.Errorf("... %d problems in all", bad)
	}
	if bad == 0 {
		total := 0
		for _, cp := range got {
			total += len(cp.offsets)
		}
		t.Logf("%s: %d records read back, all %d acknowledged ones present exactly once at their offsets, per-producer order kept", topic, total, len(acked))
	}
}

func lenOf(cp *ConsumedPartition) int {
	if cp == nil {
		return 0
	}
	return len(cp.values)
}
