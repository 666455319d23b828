package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaReadyTimeout bounds the wait for a topic's partitions to have
// leaders after it is created (a broker may take a moment to place them).
const kafkaReadyTimeout = 30 * time.Second

// kafkaDriver runs a workload with franz-go: one client per producer and
// per consumer, so each has its own connections as separate applications
// would.
type kafkaDriver struct {
	cfg  Config
	st   *stats
	note []string

	partitions int32
	start      map[int32]int64 // end offsets before the run: where consumers begin
	producers  []*kgo.Client
	readers    []*kgo.Client
}

func newKafkaDriver(cfg Config, st *stats) *kafkaDriver {
	return &kafkaDriver{cfg: cfg, st: st}
}

func (k *kafkaDriver) notes() []string { return k.note }

func (k *kafkaDriver) setup(ctx context.Context) error {
	admin, err := kgo.NewClient(kgo.SeedBrokers(k.cfg.Brokers...))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	if k.cfg.CreateTopic {
		_, err := adm.CreateTopic(ctx, int32(k.cfg.Partitions), -1, nil, k.cfg.Topic)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", k.cfg.Topic, err)
		}
	}
	if err := k.waitReady(ctx, adm); err != nil {
		return err
	}
	if int(k.partitions) != k.cfg.Partitions {
		k.note = append(k.note, fmt.Sprintf("topic %s has %d partitions (asked for %d; an existing topic keeps its own)",
			k.cfg.Topic, k.partitions, k.cfg.Partitions))
	}

	acks := []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}
	switch k.cfg.Acks {
	case AcksLeader:
		// franz-go's idempotent producer requires acks=all.
		acks = []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}
	case AcksNone:
		acks = []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}
	}
	for range k.cfg.Producers {
		opts := append([]kgo.Opt{
			kgo.SeedBrokers(k.cfg.Brokers...),
			kgo.DefaultProduceTopic(k.cfg.Topic),
			kgo.ProducerLinger(k.cfg.Linger),
			kgo.ProducerBatchMaxBytes(int32(k.cfg.BatchBytes)),
			kgo.ProducerBatchCompression(codec(k.cfg.Compression)),
			kgo.MaxBufferedRecords(k.cfg.MaxBufferedRecords),
			// A record the broker never acknowledges fails instead of
			// holding the run forever.
			kgo.RecordDeliveryTimeout(k.cfg.DrainTimeout),
		}, acks...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return fmt.Errorf("kafka producer: %w", err)
		}
		k.producers = append(k.producers, cl)
	}

	n := min(k.cfg.Consumers, int(k.partitions))
	if n < k.cfg.Consumers {
		k.note = append(k.note, fmt.Sprintf("%d consumers for %d partitions: %d would be idle, so only %d run",
			k.cfg.Consumers, k.partitions, k.cfg.Consumers-n, n))
	}
	for c := range n {
		// Direct partition assignment rather than a consumer group: the
		// benchmark measures the fetch path, not rebalancing, and starts
		// at exactly the offsets recorded above.
		assign := map[int32]kgo.Offset{}
		for p := int32(c); p < k.partitions; p += int32(n) {
			assign[p] = kgo.NewOffset().At(k.start[p])
		}
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(k.cfg.Brokers...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{k.cfg.Topic: assign}),
			kgo.FetchMaxWait(500*time.Millisecond),
		)
		if err != nil {
			return fmt.Errorf("kafka consumer: %w", err)
		}
		k.readers = append(k.readers, cl)
	}
	return nil
}

// waitReady finds the partition count and every partition's end offset,
// retrying while partitions have no leader yet.
func (k *kafkaDriver) waitReady(ctx context.Context, adm *kadm.Client) error {
	ctx, cancel := context.WithTimeout(ctx, kafkaReadyTimeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		last = k.tryReady(ctx, adm)
		if last == nil {
			return nil
		}
		if errors.Is(last, kerr.UnknownTopicOrPartition) && !k.cfg.CreateTopic {
			return fmt.Errorf("topic %s does not exist (use --create-topic): %w", k.cfg.Topic, last)
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return fmt.Errorf("topic %s not ready within %s: %w", k.cfg.Topic, kafkaReadyTimeout, last)
}

func (k *kafkaDriver) tryReady(ctx context.Context, adm *kadm.Client) error {
	topics, err := adm.ListTopics(ctx, k.cfg.Topic)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	td, ok := topics[k.cfg.Topic]
	if !ok {
		return fmt.Errorf("metadata: %w", kerr.UnknownTopicOrPartition)
	}
	if td.Err != nil {
		return fmt.Errorf("metadata: %w", td.Err)
	}
	if len(td.Partitions) == 0 {
		return fmt.Errorf("metadata: topic has no partitions yet: %w", kerr.LeaderNotAvailable)
	}
	for _, p := range td.Partitions {
		if p.Err != nil {
			return fmt.Errorf("metadata: partition %d: %w", p.Partition, p.Err)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, k.cfg.Topic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	start := map[int32]int64{}
	for p := range int32(len(td.Partitions)) {
		o, ok := ends.Lookup(k.cfg.Topic, p)
		if !ok {
			return fmt.Errorf("list end offsets: partition %d missing: %w", p, kerr.LeaderNotAvailable)
		}
		if o.Err != nil {
			return fmt.Errorf("list end offsets: partition %d: %w", p, o.Err)
		}
		start[p] = o.Offset
	}
	k.partitions, k.start = int32(len(td.Partitions)), start
	return nil
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func (k *kafkaDriver) produce(ctx context.Context, id int, p plan) {
	cl := k.producers[id]
	st := k.st
	pace := newPacer(p.rate)
	for n := int64(0); p.more(n); n++ {
		if pace.wait(ctx, 1) != nil {
			break
		}
		v, ts := st.newValue()
		r := &kgo.Record{Value: v}
		if k.cfg.Keys {
			r.Key = st.keys[(int64(id)*7919+n)%keySpace]
		}
		st.sent.Add(1)
		// Produce blocks while MaxBufferedRecords are outstanding: that
		// backpressure is what bounds an unlimited-rate run.
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				st.produceErrs.add(err, 1)
			} else {
				st.acked(ts, 1, int64(len(r.Value)+len(r.Key)))
			}
			st.putValue(r.Value)
		})
	}
	fctx, cancel := context.WithTimeout(ctx, k.cfg.DrainTimeout)
	defer cancel()
	if err := cl.Flush(fctx); err != nil && ctx.Err() == nil {
		// The records still buffered fail with "client closed" when the
		// producer is closed; this says why.
		st.produceErrs.add(fmt.Errorf("flush: %w", err), 1)
	}
}

func (k *kafkaDriver) closeProducers() {
	for _, cl := range k.producers {
		cl.Close()
	}
	k.producers = nil
}

func (k *kafkaDriver) consumers() int { return len(k.readers) }

func (k *kafkaDriver) consume(ctx context.Context, id int) {
	cl := k.readers[id]
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				k.st.consumeErrs.add(err, 1)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { k.st.gotValue(r.Value, len(r.Key)) })
	}
}

func (k *kafkaDriver) close() {
	k.closeProducers()
	for _, cl := range k.readers {
		cl.Close()
	}
	k.readers = nil
}
