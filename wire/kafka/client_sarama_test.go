package kafka_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// TestClientSarama drives a node with IBM/sarama at its default protocol
// version, on both deployments.
func TestClientSarama(t *testing.T) {
	for _, b := range kafkatest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			n := cliNode(t, b)
			t.Run("CodecsGroupCommitResume", func(t *testing.T) { testSaramaCodecs(t, n) })
			t.Run("SplitAndRebalance", func(t *testing.T) { testSaramaSplit(t, n) })
			t.Run("Idempotent", func(t *testing.T) { testSaramaIdempotent(t, n) })
			t.Run("Acks", func(t *testing.T) { testSaramaAcks(t, n) })
		})
	}
}

var saramaCodecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "morax-sarama-test"
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	c.Producer.Return.Successes = true
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.MaxWaitTime = 200 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 6 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	c.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	c.Consumer.Group.Rebalance.Retry.Backoff = 200 * time.Millisecond
	return c
}

func saramaCreateTopic(t *testing.T, n *kafkatest.Node, topic string, partitions int32) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{n.Addr}, saramaConfig())
	if err != nil {
		t.Fatalf("sarama admin: %v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// saramaProduce sends values (keyed by cliKey) with a sync producer and
// returns where each landed (offset -1 when acks=0 reports none).
func saramaProduce(t *testing.T, n *kafkatest.Node, cfg *sarama.Config, topic, header string, values []string) map[string]cliRecord {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{n.Addr}, cfg)
	if err != nil {
		t.Fatalf("sarama producer: %v", err)
	}
	msgs := make([]*sarama.ProducerMessage, len(values))
	for i, v := range values {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(cliKeyOf(v)), Value: sarama.StringEncoder(v)}
		if header != "" {
			msgs[i].Headers = []sarama.RecordHeader{{Key: []byte("codec"), Value: []byte(header)}}
		}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("close producer: %v", err)
	}
	at := map[string]cliRecord{}
	for _, m := range msgs {
		off := m.Offset
		if cfg.Producer.RequiredAcks == sarama.NoResponse {
			off = -1
		}
		at[string(m.Value.(sarama.StringEncoder))] = cliRecord{Partition: m.Partition, Offset: off}
	}
	return at
}

// saramaMember is a consumer group member that records its claims and the
// records it receives, marking each one.
type saramaMember struct {
	cg     sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	// commitAt, if above 0, is the record count at which the member
	// commits its marks synchronously and closes committed.
	commitAt  int
	committed chan error

	mu      sync.Mutex
	claims  map[int32]bool
	records []cliRecord
	errs    []error
}

func saramaStartMember(t *testing.T, n *kafkatest.Node, group, topic string, commitAt int) *saramaMember {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{n.Addr}, group, saramaConfig())
	if err != nil {
		t.Fatalf("sarama consumer group: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{cg: cg, cancel: cancel, done: make(chan struct{}), commitAt: commitAt, committed: make(chan error, 1), claims: map[int32]bool{}}
	go func() {
		for err := range cg.Errors() {
			m.mu.Lock()
			m.errs = append(m.errs, err)
			m.mu.Unlock()
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, m); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				m.mu.Lock()
				m.errs = append(m.errs, err)
				m.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ps := range s.Claims() {
		for _, p := range ps {
			m.claims[p] = true
		}
	}
	return nil
}

func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.claims)
	return nil
}

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		r := cliRecord{Partition: msg.Partition, Offset: msg.Offset, Key: string(msg.Key), Value: string(msg.Value)}
		for _, h := range msg.Headers {
			if string(h.Key) == "codec" {
				r.Header = string(h.Value)
			}
		}
		s.MarkMessage(msg, "")
		m.mu.Lock()
		m.records = append(m.records, r)
		commit := m.commitAt > 0 && len(m.records) == m.commitAt
		m.mu.Unlock()
		if commit {
			// Every record counted so far was marked before it was
			// counted, so this commits them all.
			s.Commit()
			m.committed <- nil
		}
	}
	return nil
}

// stop leaves the group.
func (m *saramaMember) stop() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cancel()
	<-m.done
	_ = m.cg.Close()
}

func (m *saramaMember) snapshot() ([]int32, []cliRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.claims)), slices.Clone(m.records)
}

// saramaConsume runs one member until it received want records, commits
// them, and leaves.
func saramaConsume(t *testing.T, n *kafkatest.Node, group, topic string, want int) []cliRecord {
	t.Helper()
	m := saramaStartMember(t, n, group, topic, want)
	select {
	case <-m.committed:
	case <-time.After(60 * time.Second):
		_, got := m.snapshot()
		m.mu.Lock()
		errs := m.errs
		m.mu.Unlock()
		t.Fatalf("group %s: consumed %d of %d records before the deadline (errors %v)", group, len(got), want, errs)
	}
	m.stop()
	_, got := m.snapshot()
	return got
}

func testSaramaCodecs(t *testing.T, n *kafkatest.Node) {
	const topic, group = "sarama-codecs", "sarama-codecs-g"
	saramaCreateTopic(t, n, topic, cliPartitions)
	at := map[string]cliRecord{}
	for _, c := range cliCodecs {
		cfg := saramaConfig()
		cfg.Producer.Compression = saramaCodecs[c]
		cfg.Producer.Flush.Frequency = 5 * time.Millisecond
		maps.Copy(at, saramaProduce(t, n, cfg, topic, c, cliBatch(c, cliPerCodec)))
	}
	produced := cliCodecBatches()
	got := saramaConsume(t, n, group, topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, at)
	cliCheckHeaders(t, got, cliCodecOf)
	cliCheckStoredCodecs(t, n, topic, cliPartitions, cliCodecs)
	committed := cliCheckCommitted(t, n, group, topic, cliPartitions)

	// A new member of the group resumes at the committed offsets.
	second := cliBatch("resume", cliResume)
	at = saramaProduce(t, n, saramaConfig(), topic, "", second)
	got = saramaConsume(t, n, group, topic, len(second))
	cliCheckConsumed(t, second, got, committed, at)
	cliCheckCommitted(t, n, group, topic, cliPartitions)
}

func testSaramaSplit(t *testing.T, n *kafkatest.Node) {
	const topic, group = "sarama-split", "sarama-split-g"
	saramaCreateTopic(t, n, topic, cliPartitions)
	a := saramaStartMember(t, n, group, topic, 0)
	b := saramaStartMember(t, n, group, topic, 0)
	claims := func(m *saramaMember) func() []int32 {
		return func() []int32 { c, _ := m.snapshot(); return c }
	}
	cliCheckSplit(t, cliPartitions, claims(a), claims(b), b.stop)
	// The remaining member consumes from every partition.
	values := cliBatch("after", cliResume)
	saramaProduce(t, n, saramaConfig(), topic, "", values)
	cliEventually(t, "the remaining member to consume every record", func() bool {
		_, got := a.snapshot()
		return len(got) >= len(values)
	})
	_, got := a.snapshot()
	cliCheckConsumed(t, values, got, nil, nil)
}

func testSaramaIdempotent(t *testing.T, n *kafkatest.Node) {
	const topic = "sarama-idempotent"
	saramaCreateTopic(t, n, topic, 2)
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Flush.Messages = 5 // several batches, so sequences advance
	values := cliBatch("idem", cliIdempotent)
	at := saramaProduce(t, n, cfg, topic, "", values)
	got := saramaConsume(t, n, "sarama-idempotent-g", topic, len(values))
	cliCheckConsumed(t, values, got, nil, at)
	cliCheckIdempotent(t, n, topic, 2)
}

func testSaramaAcks(t *testing.T, n *kafkatest.Node) {
	const topic = "sarama-acks"
	saramaCreateTopic(t, n, topic, 2)
	var produced []string
	at := map[string]cliRecord{}
	for _, m := range []struct {
		name string
		acks sarama.RequiredAcks
	}{{"acks0", sarama.NoResponse}, {"acks1", sarama.WaitForLocal}, {"acksall", sarama.WaitForAll}} {
		cfg := saramaConfig()
		cfg.Producer.RequiredAcks = m.acks
		values := cliBatch(m.name, cliPerAcks)
		maps.Copy(at, saramaProduce(t, n, cfg, topic, "", values))
		produced = append(produced, values...)
		cliWaitRecords(t, n, topic, 2, int64(len(produced)))
	}
	// acks=0 is not answered: the consumer waits until it has arrived.
	got := saramaConsume(t, n, "sarama-acks-g", topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, at)
}
