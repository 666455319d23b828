package clustertest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BulkLoad produces to a topic at a steady rate without recording each
// record: it carries a soak's volume where a recorded history of every
// record would not fit in memory. What it can still check is the count:
// with an idempotent producer, the committed records of its topic are at
// least the records it saw acknowledged.
type BulkLoad struct {
	cl       *kgo.Client
	stop     chan struct{}
	done     sync.WaitGroup
	acked    atomic.Int64
	failed   atomic.Int64
	firstErr atomic.Pointer[error]
}

// StartBulk produces rate records a second of size bytes to topic through
// an idempotent acks=all producer, in ticks of 10 ms. A full client buffer
// slows it down rather than growing memory.
func (c *Cluster) StartBulk(topic string, rate float64, size int) *BulkLoad {
	c.t.Helper()
	l := &BulkLoad{
		cl: c.kafkaClient(
			kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.MaxBufferedRecords(20000),
			kgo.ProducerLinger(5*time.Millisecond),
		),
		stop: make(chan struct{}),
	}
	value := make([]byte, size)
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		const tick = 10 * time.Millisecond
		t := time.NewTicker(tick)
		defer t.Stop()
		owed := 0.0
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
			owed += rate * tick.Seconds()
			for ; owed >= 1; owed-- {
				l.cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						l.failed.Add(1)
						l.firstErr.CompareAndSwap(nil, &err)
						return
					}
					l.acked.Add(1)
				})
			}
		}
	}()
	return l
}

// Stop stops producing, waits for every record in flight to be answered,
// and returns how many were acknowledged and how many failed (with the
// first failure).
func (l *BulkLoad) Stop() (acked, failed int64, firstErr error) {
	close(l.stop)
	l.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = l.cl.Flush(ctx)
	l.cl.Close()
	if e := l.firstErr.Load(); e != nil {
		firstErr = *e
	}
	return l.acked.Load(), l.failed.Load(), firstErr
}

// SetTopicConfig sets one config key of a topic through the Kafka admin
// API (IncrementalAlterConfigs).
func (c *Cluster) SetTopicConfig(topic, key, value string) {
	c.t.Helper()
	cl := c.kafkaClient()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err == nil {
		for _, r := range rs {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		c.t.Fatalf("set %s=%s on %s: %v", key, value, topic, err)
	}
}
