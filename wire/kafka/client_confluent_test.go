package kafka_test

import (
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// TestClientConfluent drives a node with confluent-kafka-go, that is
// librdkafka (bundled, statically linked: this file needs cgo), on both
// deployments.
func TestClientConfluent(t *testing.T) {
	_, version := ckafka.LibraryVersion()
	t.Logf("librdkafka %s", version)
	for _, b := range kafkatest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			n := cliNode(t, b)
			t.Run("CodecsGroupCommitResume", func(t *testing.T) { testConfluentCodecs(t, n) })
			t.Run("SplitAndRebalance", func(t *testing.T) { testConfluentSplit(t, n) })
			t.Run("Idempotent", func(t *testing.T) { testConfluentIdempotent(t, n) })
			t.Run("Acks", func(t *testing.T) { testConfluentAcks(t, n) })
		})
	}
}

// confluentConfig is librdkafka's configuration for the test node, plus
// extra key=value pairs.
func confluentConfig(n *kafkatest.Node, extra ...any) *ckafka.ConfigMap {
	c := ckafka.ConfigMap{
		"bootstrap.servers":     n.Addr,
		"broker.address.family": "v4",
		"log.connection.close":  false,
		"client.id":             "morax-confluent-test",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	return &c
}

func confluentCreateTopic(t *testing.T, n *kafkatest.Node, topic string, partitions int) {
	t.Helper()
	admin, err := ckafka.NewAdminClient(confluentConfig(n))
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	defer admin.Close()
	res, err := admin.CreateTopics(ctxT(t), []ckafka.TopicSpecification{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if len(res) != 1 || res[0].Error.Code() != ckafka.ErrNoError {
		t.Fatalf("create topic %s: %v", topic, res)
	}
}

// confluentProduce produces values (keyed by cliKey) with a producer made
// of extra config pairs, waits for every delivery report, and returns where
// each record landed (offset -1 when acks=0 reports none).
func confluentProduce(t *testing.T, n *kafkatest.Node, topic, header string, values []string, extra ...any) map[string]cliRecord {
	t.Helper()
	p, err := ckafka.NewProducer(confluentConfig(n, append([]any{"linger.ms", 5}, extra...)...))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	reports := make(chan ckafka.Event, len(values))
	for _, v := range values {
		m := &ckafka.Message{
			TopicPartition: ckafka.TopicPartition{Topic: &topic, Partition: ckafka.PartitionAny},
			Key:            []byte(cliKeyOf(v)), Value: []byte(v),
		}
		if header != "" {
			m.Headers = []ckafka.Header{{Key: "codec", Value: []byte(header)}}
		}
		if err := p.Produce(m, reports); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	at := map[string]cliRecord{}
	deadline := time.After(60 * time.Second)
	for range values {
		select {
		case ev := <-reports:
			m := ev.(*ckafka.Message)
			if m.TopicPartition.Error != nil {
				t.Fatalf("delivery of %s: %v", m.Value, m.TopicPartition.Error)
			}
			off := int64(m.TopicPartition.Offset)
			if m.TopicPartition.Offset < 0 {
				off = -1
			}
			at[string(m.Value)] = cliRecord{Partition: m.TopicPartition.Partition, Offset: off}
		case <-deadline:
			t.Fatalf("%d of %d delivery reports before the deadline", len(at), len(values))
		}
	}
	if left := p.Flush(10000); left != 0 {
		t.Fatalf("flush: %d messages left", left)
	}
	return at
}

func confluentRecord(m *ckafka.Message) cliRecord {
	r := cliRecord{Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset), Key: string(m.Key), Value: string(m.Value)}
	for _, h := range m.Headers {
		if h.Key == "codec" {
			r.Header = string(h.Value)
		}
	}
	return r
}

func confluentConsumerConfig(n *kafkatest.Node, group string) *ckafka.ConfigMap {
	return confluentConfig(n,
		"group.id", group,
		"auto.offset.reset", "earliest",
		"enable.auto.commit", false,
		"session.timeout.ms", 6000,
		"heartbeat.interval.ms", 300,
		"fetch.wait.max.ms", 200,
	)
}

// confluentConsume reads want records in group, commits them, and leaves.
func confluentConsume(t *testing.T, n *kafkatest.Node, group, topic string, want int) []cliRecord {
	t.Helper()
	c, err := ckafka.NewConsumer(confluentConsumerConfig(n, group))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer c.Close()
	if err := c.SubscribeTopics([]string{topic}, nil); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	var got []cliRecord
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < want {
		if time.Now().After(deadline) {
			t.Fatalf("group %s: consumed %d of %d records before the deadline", group, len(got), want)
		}
		m, err := c.ReadMessage(200 * time.Millisecond)
		if err != nil {
			// librdkafka reports transient errors too (a closed idle
			// connection, say) and recovers by itself.
			if e, ok := err.(ckafka.Error); ok && !e.IsFatal() {
				if !e.IsTimeout() {
					t.Logf("read: %v", err)
				}
				continue
			}
			t.Fatalf("read: %v", err)
		}
		got = append(got, confluentRecord(m))
	}
	if _, err := c.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close consumer: %v", err)
	}
	return got
}

func testConfluentCodecs(t *testing.T, n *kafkatest.Node) {
	const topic, group = "confluent-codecs", "confluent-codecs-g"
	confluentCreateTopic(t, n, topic, cliPartitions)
	at := map[string]cliRecord{}
	for _, c := range cliCodecs {
		maps.Copy(at, confluentProduce(t, n, topic, c, cliBatch(c, cliPerCodec), "compression.type", c))
	}
	produced := cliCodecBatches()
	got := confluentConsume(t, n, group, topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, at)
	cliCheckHeaders(t, got, cliCodecOf)
	cliCheckStoredCodecs(t, n, topic, cliPartitions, cliCodecs)
	committed := cliCheckCommitted(t, n, group, topic, cliPartitions)

	// A new consumer in the group resumes at the committed offsets.
	second := cliBatch("resume", cliResume)
	at = confluentProduce(t, n, topic, "", second)
	got = confluentConsume(t, n, group, topic, len(second))
	cliCheckConsumed(t, second, got, committed, at)
	cliCheckCommitted(t, n, group, topic, cliPartitions)
}

// confluentMember is a group consumer polled by its own goroutine, which
// records its assignment (from the rebalance callback) and its records.
type confluentMember struct {
	stopc chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	assigned []int32
	records  []cliRecord
}

func confluentStartMember(t *testing.T, n *kafkatest.Node, group, topic string) *confluentMember {
	t.Helper()
	c, err := ckafka.NewConsumer(confluentConsumerConfig(n, group))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	m := &confluentMember{stopc: make(chan struct{}), done: make(chan struct{})}
	rebalanced := func(_ *ckafka.Consumer, ev ckafka.Event) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		switch e := ev.(type) {
		case ckafka.AssignedPartitions:
			m.assigned = nil
			for _, tp := range e.Partitions {
				m.assigned = append(m.assigned, tp.Partition)
			}
			slices.Sort(m.assigned)
		case ckafka.RevokedPartitions:
			m.assigned = nil
		}
		return nil // the library then assigns or unassigns itself
	}
	if err := c.SubscribeTopics([]string{topic}, rebalanced); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.stopc:
				if err := c.Close(); err != nil {
					t.Errorf("close consumer: %v", err)
				}
				return
			default:
			}
			switch e := c.Poll(100).(type) {
			case *ckafka.Message:
				m.mu.Lock()
				m.records = append(m.records, confluentRecord(e))
				m.mu.Unlock()
			case ckafka.Error:
				t.Logf("consumer: %v", e)
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop leaves the group.
func (m *confluentMember) stop() {
	select {
	case <-m.done:
		return
	default:
	}
	close(m.stopc)
	<-m.done
}

func (m *confluentMember) snapshot() ([]int32, []cliRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.assigned), slices.Clone(m.records)
}

func testConfluentSplit(t *testing.T, n *kafkatest.Node) {
	const topic, group = "confluent-split", "confluent-split-g"
	confluentCreateTopic(t, n, topic, cliPartitions)
	a := confluentStartMember(t, n, group, topic)
	b := confluentStartMember(t, n, group, topic)
	assigned := func(m *confluentMember) func() []int32 {
		return func() []int32 { p, _ := m.snapshot(); return p }
	}
	cliCheckSplit(t, cliPartitions, assigned(a), assigned(b), b.stop)
	// The remaining member consumes from every partition.
	values := cliBatch("after", cliResume)
	at := confluentProduce(t, n, topic, "", values)
	cliEventually(t, "the remaining member to consume every record", func() bool {
		_, got := a.snapshot()
		return len(got) >= len(values)
	})
	_, got := a.snapshot()
	cliCheckConsumed(t, values, got, nil, at)
}

func testConfluentIdempotent(t *testing.T, n *kafkatest.Node) {
	const topic = "confluent-idempotent"
	confluentCreateTopic(t, n, topic, 2)
	values := cliBatch("idem", cliIdempotent)
	// Small batches, so sequence numbers advance across several.
	at := confluentProduce(t, n, topic, "", values, "enable.idempotence", true, "batch.num.messages", 5)
	got := confluentConsume(t, n, "confluent-idempotent-g", topic, len(values))
	cliCheckConsumed(t, values, got, nil, at)
	cliCheckIdempotent(t, n, topic, 2)
}

func testConfluentAcks(t *testing.T, n *kafkatest.Node) {
	const topic = "confluent-acks"
	confluentCreateTopic(t, n, topic, 2)
	var produced []string
	at := map[string]cliRecord{}
	for _, acks := range []string{"0", "1", "all"} {
		values := cliBatch("acks"+acks, cliPerAcks)
		maps.Copy(at, confluentProduce(t, n, topic, "", values, "acks", acks))
		produced = append(produced, values...)
		cliWaitRecords(t, n, topic, 2, int64(len(produced)))
	}
	got := confluentConsume(t, n, "confluent-acks-g", topic, len(produced))
	cliCheckConsumed(t, produced, got, nil, at)
}
