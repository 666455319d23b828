package kafka_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"

	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// TestClientKafkaGo drives a node with segmentio/kafka-go, on both
// deployments. kafka-go's Writer has no idempotent producer, so that
// scenario is left out.
func TestClientKafkaGo(t *testing.T) {
	for _, b := range kafkatest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			n := cliNode(t, b)
			t.Run("CodecsGroupCommitResume", func(t *testing.T) { testKafkaGoCodecs(t, n) })
			t.Run("SplitAndRebalance", func(t *testing.T) { testKafkaGoSplit(t, n) })
			t.Run("Acks", func(t *testing.T) { testKafkaGoAcks(t, n) })
		})
	}
}

var kafkaGoCodecs = map[string]segkafka.Compression{
	"none": 0, "gzip": segkafka.Gzip, "snappy": segkafka.Snappy, "lz4": segkafka.Lz4, "zstd": segkafka.Zstd,
}

// kafkaGoLogger sends kafka-go's error log to the test log.
func kafkaGoLogger(t *testing.T) segkafka.LoggerFunc {
	return func(format string, args ...any) { t.Logf("kafka-go: "+format, args...) }
}

func kafkaGoCreateTopic(t *testing.T, n *kafkatest.Node, topic string, partitions int) {
	t.Helper()
	cl := &segkafka.Client{Addr: segkafka.TCP(n.Addr), Timeout: 10 * time.Second}
	resp, err := cl.CreateTopics(ctxT(t), &segkafka.CreateTopicsRequest{Topics: []segkafka.TopicConfig{
		{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// kafkaGoProduce writes values (keyed by cliKey, hashed to partitions) with
// a synchronous Writer.
func kafkaGoProduce(t *testing.T, n *kafkatest.Node, topic string, codec segkafka.Compression, acks segkafka.RequiredAcks, header string, values []string) {
	t.Helper()
	w := &segkafka.Writer{
		Addr: segkafka.TCP(n.Addr), Topic: topic, Balancer: &segkafka.Hash{},
		Compression: codec, RequiredAcks: acks, BatchTimeout: 5 * time.Millisecond,
		ErrorLogger: kafkaGoLogger(t),
	}
	msgs := make([]segkafka.Message, len(values))
	for i, v := range values {
		msgs[i] = segkafka.Message{Key: []byte(cliKeyOf(v)), Value: []byte(v)}
		if header != "" {
			msgs[i].Headers = []segkafka.Header{{Key: "codec", Value: []byte(header)}}
		}
	}
	if err := w.WriteMessages(ctxT(t), msgs...); err != nil {
		t.Fatalf("write to %s: %v", topic, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
}

// kafkaGoConsume reads want records with a group Reader, commits them and
// leaves the group.
func kafkaGoConsume(t *testing.T, n *kafkatest.Node, group, topic string, want int) []cliRecord {
	t.Helper()
	// kafka-go's socket deadline for a fetch is MaxWait, and it asks the
	// broker to wait MaxWait less an allowance for the round trip (1 s,
	// or a quarter of MaxWait below 1 s): 2 s leaves a slow -race run a
	// 1 s margin before the reader times out and reconnects.
	r := segkafka.NewReader(segkafka.ReaderConfig{
		Brokers: []string{n.Addr}, GroupID: group, Topic: topic,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 2 * time.Second,
		HeartbeatInterval: 300 * time.Millisecond, SessionTimeout: 6 * time.Second,
		RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: 200 * time.Millisecond,
		StartOffset: segkafka.FirstOffset, CommitInterval: 0,
		ErrorLogger: kafkaGoLogger(t),
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var msgs []segkafka.Message
	var got []cliRecord
	for len(got) < want {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("group %s: fetched %d of %d records: %v", group, len(got), want, err)
		}
		msgs = append(msgs, m)
		rec := cliRecord{Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)}
		for _, h := range m.Headers {
			if h.Key == "codec" {
				rec.Header = string(h.Value)
			}
		}
		got = append(got, rec)
	}
	if err := r.CommitMessages(ctx, msgs...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close reader: %v", err)
	}
	return got
}

func testKafkaGoCodecs(t *testing.T, n *kafkatest.Node) {
	const topic, group = "kafkago-codecs", "kafkago-codecs-g"
	kafkaGoCreateTopic(t, n, topic, cliPartitions)
	for _, c := range cliCodecs {
		kafkaGoProduce(t, n, topic, kafkaGoCodecs[c], segkafka.RequireAll, c, cliBatch(c, cliPerCodec))
	}
	produced := cliCodecBatches()
	got := kafkaGoConsume(t, n, group, topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, nil)
	cliCheckHeaders(t, got, cliCodecOf)
	cliCheckStoredCodecs(t, n, topic, cliPartitions, cliCodecs)
	committed := cliCheckCommitted(t, n, group, topic, cliPartitions)

	// A new reader in the group resumes at the committed offsets.
	second := cliBatch("resume", cliResume)
	kafkaGoProduce(t, n, topic, 0, segkafka.RequireAll, "", second)
	got = kafkaGoConsume(t, n, group, topic, len(second))
	cliCheckConsumed(t, second, got, committed, nil)
	cliCheckCommitted(t, n, group, topic, cliPartitions)
}

// kafkaGoMember is a kafka-go ConsumerGroup member that records the
// partitions of its current generation.
type kafkaGoMember struct {
	cg   *segkafka.ConsumerGroup
	done chan struct{}

	mu       sync.Mutex
	assigned []int32
}

func kafkaGoStartMember(t *testing.T, n *kafkatest.Node, group, topic string) *kafkaGoMember {
	t.Helper()
	cg, err := segkafka.NewConsumerGroup(segkafka.ConsumerGroupConfig{
		ID: group, Brokers: []string{n.Addr}, Topics: []string{topic},
		HeartbeatInterval: 300 * time.Millisecond, SessionTimeout: 6 * time.Second,
		RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
		StartOffset: segkafka.FirstOffset, Timeout: 10 * time.Second,
		ErrorLogger: kafkaGoLogger(t),
	})
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	m := &kafkaGoMember{cg: cg, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			gen, err := cg.Next(context.Background())
			if err != nil {
				if !errors.Is(err, segkafka.ErrGroupClosed) {
					t.Errorf("next generation: %v", err)
				}
				return
			}
			var ps []int32
			for _, a := range gen.Assignments[topic] {
				ps = append(ps, int32(a.ID))
			}
			slices.Sort(ps)
			m.mu.Lock()
			m.assigned = ps
			m.mu.Unlock()
			gen.Start(func(ctx context.Context) {
				<-ctx.Done()
				m.mu.Lock()
				m.assigned = nil
				m.mu.Unlock()
			})
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *kafkaGoMember) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.assigned)
}

// stop leaves the group.
func (m *kafkaGoMember) stop() {
	_ = m.cg.Close()
	<-m.done
}

func testKafkaGoSplit(t *testing.T, n *kafkatest.Node) {
	const topic, group = "kafkago-split", "kafkago-split-g"
	kafkaGoCreateTopic(t, n, topic, cliPartitions)
	a := kafkaGoStartMember(t, n, group, topic)
	b := kafkaGoStartMember(t, n, group, topic)
	cliCheckSplit(t, cliPartitions, a.partitions, b.partitions, b.stop)
}

func testKafkaGoAcks(t *testing.T, n *kafkatest.Node) {
	const topic = "kafkago-acks"
	kafkaGoCreateTopic(t, n, topic, 2)
	var produced []string
	for _, m := range []struct {
		name string
		acks segkafka.RequiredAcks
	}{{"acks0", segkafka.RequireNone}, {"acks1", segkafka.RequireOne}, {"acksall", segkafka.RequireAll}} {
		values := cliBatch(m.name, cliPerAcks)
		kafkaGoProduce(t, n, topic, 0, m.acks, "", values)
		produced = append(produced, values...)
		cliWaitRecords(t, n, topic, 2, int64(len(produced)))
	}
	got := kafkaGoConsume(t, n, "kafkago-acks-g", topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, nil)
}
