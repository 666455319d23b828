package kafka_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// brokerID is the broker id Morax reports for the test node.
var brokerID = kafka.BrokerID("test-node")

// TestFranzGo drives a node with franz-go's client, on both deployments.
func TestFranzGo(t *testing.T) {
	for _, b := range kafkatest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			n := kafkatest.Start(t, kafkatest.Options{Backend: b})
			admin := newClient(t, n)
			t.Run("ApiVersions", func(t *testing.T) { testApiVersions(t, admin) })
			t.Run("ProduceConsumeCodecs", func(t *testing.T) { testCodecs(t, n, admin) })
			t.Run("Acks", func(t *testing.T) { testAcks(t, n, admin) })
			t.Run("Idempotent", func(t *testing.T) { testIdempotent(t, n, admin) })
			t.Run("ListOffsets", func(t *testing.T) { testListOffsets(t, n, admin) })
			t.Run("DeleteRecords", func(t *testing.T) { testDeleteRecords(t, admin) })
			t.Run("Configs", func(t *testing.T) { testConfigs(t, admin) })
			t.Run("LogAppendTime", func(t *testing.T) { testLogAppendTime(t, n, admin) })
			t.Run("TopicAdmin", func(t *testing.T) { testTopicAdmin(t, n, admin) })
			t.Run("AutoCreate", func(t *testing.T) { testAutoCreate(t, n, admin) })
			t.Run("LongPoll", func(t *testing.T) { testLongPoll(t, n, admin) })
			t.Run("Cluster", func(t *testing.T) { testCluster(t, n, admin) })
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, n *kafkatest.Node, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.Addr)}, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic and fails the test on any error.
func createTopic(t *testing.T, cl *kgo.Client, name string, partitions int32, configs map[string]string) kmsg.CreateTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, -1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	st := resp.Topics[0]
	if err := kerr.ErrorForCode(st.ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v (%v)", name, err, deref(st.ErrorMessage))
	}
	return st
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// consume reads want records of topic from the start of every partition.
func consume(t *testing.T, n *kafkatest.Node, topic string, partitions int32, want int) []*kgo.Record {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	for p := range partitions {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl := newClient(t, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchMaxWait(500*time.Millisecond))
	ctx := ctxT(t)
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: got %d of %d records before timeout", topic, len(out), want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	if len(out) != want {
		t.Fatalf("consume %s: got %d records, want %d", topic, len(out), want)
	}
	return out
}

func testApiVersions(t *testing.T, cl *kgo.Client) {
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("error code %d", resp.ErrorCode)
	}
	keys := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range resp.ApiKeys {
		keys[k.ApiKey] = k
	}
	for _, k := range []int16{0, 1, 2, 3, 18, 19, 20, 21, 22, 23, 32, 33, 35, 37, 44, 60, 61} {
		if _, ok := keys[k]; !ok {
			t.Errorf("ApiVersions lacks %s", kmsg.NameForKey(k))
		}
	}
	// Produce is listed from v0, as Kafka 4 lists it, for older librdkafka.
	if k := keys[0]; k.MinVersion != 0 || k.MaxVersion < 9 {
		t.Errorf("Produce advertised as v%d-%d", k.MinVersion, k.MaxVersion)
	}
	// Transactions and KIP-848 are not served, so must not be advertised.
	for _, k := range []int16{24, 25, 26, 27, 28, 65, 66, 68, 69} {
		if _, ok := keys[k]; ok {
			t.Errorf("ApiVersions advertises %s", kmsg.NameForKey(k))
		}
	}
}

// codecs are every compression codec kgo can produce with.
var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

func testCodecs(t *testing.T, n *kafkatest.Node, admin *kgo.Client) {
	const topic, partitions, perCodec = "codecs", 4, 200
	createTopic(t, admin, topic, partitions, nil)
	produced := map[int32][]*kgo.Record{}
	keyPartition := map[string]int32{}
	for _, c := range codecs {
		cl := newClient(t, n, kgo.ProducerBatchCompression(c.codec), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
		var recs []*kgo.Record
		for i := range perCodec {
			recs = append(recs, &kgo.Record{
				Key:     []byte("key-" + strconv.Itoa(i%20)),
				Value:   []byte(fmt.Sprintf("%s-%d-%s", c.name, i, slices.Repeat([]byte("x"), i%50))),
				Headers: []kgo.RecordHeader{{Key: "codec", Value: []byte(c.name)}},
			})
		}
		results := cl.ProduceSync(ctxT(t), recs...)
		if err := results.FirstErr(); err != nil {
			t.Fatalf("produce with %s: %v", c.name, err)
		}
		for _, r := range results {
			produced[r.Record.Partition] = append(produced[r.Record.Partition], r.Record)
			if p, ok := keyPartition[string(r.Record.Key)]; ok && p != r.Record.Partition {
				t.Fatalf("key %s went to partitions %d and %d", r.Record.Key, p, r.Record.Partition)
			}
			keyPartition[string(r.Record.Key)] = r.Record.Partition
		}
	}
	got := consume(t, n, topic, partitions, len(codecs)*perCodec)
	consumed := map[int32][]*kgo.Record{}
	for _, r := range got {
		consumed[r.Partition] = append(consumed[r.Partition], r)
	}
	for p := range int32(partitions) {
		want := produced[p]
		sort.Slice(want, func(i, j int) bool { return want[i].Offset < want[j].Offset })
		have := consumed[p]
		if len(have) != len(want) {
			t.Fatalf("partition %d: consumed %d records, produced %d", p, len(have), len(want))
		}
		for i := range want {
			w, h := want[i], have[i]
			if h.Offset != int64(i) || w.Offset != int64(i) {
				t.Fatalf("partition %d record %d: offsets produced %d consumed %d, want dense from 0", p, i, w.Offset, h.Offset)
			}
			if string(h.Key) != string(w.Key) || string(h.Value) != string(w.Value) {
				t.Fatalf("partition %d offset %d: got %s=%s, want %s=%s", p, i, h.Key, h.Value, w.Key, w.Value)
			}
			if len(h.Headers) != 1 || string(h.Headers[0].Value) != string(w.Headers[0].Value) {
				t.Fatalf("partition %d offset %d: headers %v, want %v", p, i, h.Headers, w.Headers)
			}
		}
	}
}

func testAcks(t *testing.T, n *kafkatest.Node, admin *kgo.Client) {
	const topic, each = "acks", 50
	createTopic(t, admin, topic, 2, nil)
	modes := []struct {
		name string
		opts []kgo.Opt
	}{
		{"acks=0", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
		{"acks=1", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
		{"acks=all", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
	}
	for _, m := range modes {
		cl := newClient(t, n, append(m.opts, kgo.DefaultProduceTopic(topic))...)
		var recs []*kgo.Record
		for i := range each {
			recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(m.name)})
		}
		if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		// acks=0 returns once written to the socket; flush the client so
		// the requests reached the broker before the next mode starts.
		if err := cl.Flush(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	got := consume(t, n, topic, 2, 3*each)
	counts := map[string]int{}
	for _, r := range got {
		counts[string(r.Value)]++
	}
	for _, m := range modes {
		if counts[m.name] != each {
			t.Errorf("%s: consumed %d records, want %d", m.name, counts[m.name], each)
		}
	}
}

func testIdempotent(t *testing.T, n *kafkatest.Node, admin *kgo.Client) {
	const topic = "idempotent"
	createTopic(t, admin, topic, 1, nil)
	// kgo is idempotent by default with acks=all; many small batches in
	// flight at once exercise the sequence checks.
	cl := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(10))
	var recs []*kgo.Record
	for i := range 300 {
		recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consume(t, n, topic, 1, 300)
	for i, r := range got {
		if string(r.Value) != strconv.Itoa(i) || r.Offset != int64(i) {
			t.Fatalf("record %d: offset %d value %s", i, r.Offset, r.Value)
		}
		if r.ProducerID < 0 {
			t.Fatalf("record %d has no producer id", i)
		}
	}
	// DescribeProducers shows the producer's last sequence.
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), admin)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.ActiveProducers) != 1 {
		t.Fatalf("describe producers: code %d, producers %+v", p.ErrorCode, p.ActiveProducers)
	}
	if ap := p.ActiveProducers[0]; ap.ProducerID != got[0].ProducerID || ap.LastSequence != 299 {
		t.Fatalf("active producer %+v, want id %d last sequence 299", ap, got[0].ProducerID)
	}
	// Every InitProducerID hands out a new id.
	ids := map[int64]bool{}
	for range 3 {
		resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctxT(t), admin)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("init producer id: %v, code %d", err, resp.ErrorCode)
		}
		ids[resp.ProducerID] = true
	}
	if len(ids) != 3 {
		t.Fatalf("InitProducerID returned repeated ids: %v", ids)
	}
	// A transactional id is refused: transactions are not served.
	txn := kmsg.NewPtrInitProducerIDRequest()
	txn.TransactionalID = kmsg.StringPtr("txn")
	// Straight to the broker: kgo would first look for a transaction
	// coordinator.
	if resp, err := txn.RequestWith(ctxT(t), admin.Broker(int(brokerID))); err != nil || resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("transactional InitProducerID: %v, %+v", err, resp)
	}
}

// listOffset asks for one partition's offset at ts.
func listOffset(t *testing.T, cl *kgo.Client, topic string, p int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = p, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl.Broker(int(brokerID)))
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	return resp.Topics[0].Partitions[0]
}

func testListOffsets(t *testing.T, n *kafkatest.Node, admin *kgo.Client) {
	const topic = "list-offsets"
	createTopic(t, admin, topic, 1, nil)
	cl := newClient(t, n, kgo.DefaultProduceTopic(topic))
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 5 {
		r := &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if i == 3 {
			r.Timestamp = base.Add(time.Minute) // the largest timestamp
		}
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		ts     int64
		offset int64
	}{
		{"earliest", -2, 0},
		{"latest", -1, 5},
		{"by timestamp", base.Add(1500 * time.Millisecond).UnixMilli(), 2},
		{"exact timestamp", base.Add(2 * time.Second).UnixMilli(), 2},
		{"max timestamp", -3, 3},
		{"after everything", base.Add(time.Hour).UnixMilli(), -1},
	}
	for _, c := range cases {
		p := listOffset(t, admin, topic, 0, c.ts)
		if p.ErrorCode != 0 || p.Offset != c.offset {
			t.Errorf("%s: offset %d code %d, want %d", c.name, p.Offset, p.ErrorCode, c.offset)
		}
		if c.offset >= 0 && p.LeaderEpoch < 0 {
			t.Errorf("%s: no leader epoch", c.name)
		}
	}
	if p := listOffset(t, admin, "no-such-topic", 0, -1); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: code %d", p.ErrorCode)
	}
	if p := listOffset(t, admin, topic, 7, -1); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown partition: code %d", p.ErrorCode)
	}
}

func testDeleteRecords(t *testing.T, admin *kgo.Client) {
	const topic = "delete-records"
	createTopic(t, admin, topic, 1, nil)
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))})
	}
	if err := admin.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	del := func(offset int64) kmsg.DeleteRecordsResponseTopicPartition {
		req := kmsg.NewPtrDeleteRecordsRequest()
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 10000
		resp, err := req.RequestWith(ctxT(t), admin)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	if p := del(4); p.ErrorCode != 0 || p.LowWatermark != 4 {
		t.Fatalf("delete records to 4: code %d low watermark %d", p.ErrorCode, p.LowWatermark)
	}
	if p := listOffset(t, admin, topic, 0, -2); p.Offset != 4 {
		t.Fatalf("earliest after delete: %d", p.Offset)
	}
	if p := del(11); p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("delete past the end: code %d", p.ErrorCode)
	}
	// A fetch below the new log start is out of range.
	f := fetchRaw(t, admin, topic, 0, 1, 0)
	if f.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below log start: code %d", f.ErrorCode)
	}
	f = fetchRaw(t, admin, topic, 0, 4, 0)
	if f.ErrorCode != 0 || f.LogStartOffset != 4 || f.HighWatermark != 10 || len(f.RecordBatches) == 0 {
		t.Fatalf("fetch at log start: code %d start %d hw %d bytes %d", f.ErrorCode, f.LogStartOffset, f.HighWatermark, len(f.RecordBatches))
	}
	if p := del(-1); p.ErrorCode != 0 || p.LowWatermark != 10 {
		t.Fatalf("delete to the high watermark: code %d low watermark %d", p.ErrorCode, p.LowWatermark)
	}
}

// fetchRaw sends one Fetch for one partition straight to the broker.
func fetchRaw(t *testing.T, cl *kgo.Client, topic string, p int32, offset int64, wait time.Duration) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = int32(wait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	// Fetch v13+ addresses topics by id.
	rt.TopicID = metadata(t, cl, topic).Topics[0].TopicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl.Broker(int(brokerID)))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("fetch: top-level code %d", resp.ErrorCode)
	}
	return resp.Topics[0].Partitions[0]
}

// describeTopicConfigs returns a topic's configs by name.
func describeTopicConfigs(t *testing.T, cl *kgo.Client, topic string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	req.Resources = append(req.Resources, r)
	req.IncludeSynonyms = true
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	rr := resp.Resources[0]
	if rr.ErrorCode != 0 {
		t.Fatalf("describe configs of %s: code %d %s", topic, rr.ErrorCode, deref(rr.ErrorMessage))
	}
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range rr.Configs {
		out[c.Name] = c
	}
	return out
}

func incrementalAlter(t *testing.T, cl *kgo.Client, topic string, op kmsg.IncrementalAlterConfigOp, name, value string) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = name, op, kmsg.StringPtr(value)
	r.Configs = append(r.Configs, c)
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Resources[0].ErrorCode, deref(resp.Resources[0].ErrorMessage)
}

func testConfigs(t *testing.T, admin *kgo.Client) {
	const topic = "configs"
	st := createTopic(t, admin, topic, 1, map[string]string{"retention.ms": "3600000"})
	if st.NumPartitions != 1 || len(st.Configs) == 0 {
		t.Fatalf("create topic response: %+v", st)
	}
	cs := describeTopicConfigs(t, admin, topic)
	if c := cs["retention.ms"]; deref(c.Value) != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig || len(c.ConfigSynonyms) != 2 {
		t.Fatalf("retention.ms: %+v", c)
	}
	if c := cs["cleanup.policy"]; deref(c.Value) != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("cleanup.policy: %+v", c)
	}
	if code, msg := incrementalAlter(t, admin, topic, kmsg.IncrementalAlterConfigOpSet, "max.message.bytes", "2048"); code != 0 {
		t.Fatalf("set max.message.bytes: %d %s", code, msg)
	}
	if code, _ := incrementalAlter(t, admin, topic, kmsg.IncrementalAlterConfigOpDelete, "retention.ms", ""); code != 0 {
		t.Fatalf("delete retention.ms: %d", code)
	}
	cs = describeTopicConfigs(t, admin, topic)
	if deref(cs["max.message.bytes"].Value) != "2048" || cs["retention.ms"].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after incremental alter: max.message.bytes %+v retention.ms %+v", cs["max.message.bytes"], cs["retention.ms"])
	}
	// max.message.bytes applies to produce at once.
	big := &kgo.Record{Topic: topic, Value: make([]byte, 4096)}
	_, _ = rand.Read(big.Value) // incompressible
	cl := admin
	if err := cl.ProduceSync(ctxT(t), big).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("produce over max.message.bytes: %v", err)
	}
	if code, msg := incrementalAlter(t, admin, topic, kmsg.IncrementalAlterConfigOpAppend, "cleanup.policy", "compact"); code != kerr.InvalidConfig.Code {
		t.Fatalf("append compact: code %d %s", code, msg)
	}
	if code, _ := incrementalAlter(t, admin, topic, kmsg.IncrementalAlterConfigOpSet, "no.such.config", "1"); code != kerr.InvalidConfig.Code {
		t.Fatalf("unknown config: code %d", code)
	}
	if code, _ := incrementalAlter(t, admin, topic, kmsg.IncrementalAlterConfigOpSet, "retention.ms", "soon"); code != kerr.InvalidConfig.Code {
		t.Fatalf("bad retention.ms: code %d", code)
	}
	// AlterConfigs replaces every override.
	req := kmsg.NewPtrAlterConfigsRequest()
	r := kmsg.NewAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	c := kmsg.NewAlterConfigsRequestResourceConfig()
	c.Name, c.Value = "retention.bytes", kmsg.StringPtr("1000000")
	r.Configs = append(r.Configs, c)
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctxT(t), admin)
	if err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter configs: %v %+v", err, resp)
	}
	cs = describeTopicConfigs(t, admin, topic)
	if deref(cs["retention.bytes"].Value) != "1000000" || cs["max.message.bytes"].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after alter configs: %+v / %+v", cs["retention.bytes"], cs["max.message.bytes"])
	}
	// A topic created with compaction is refused with a clear message.
	creq := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "compacted", 1, 1
	cc := kmsg.NewCreateTopicsRequestTopicConfig()
	cc.Name, cc.Value = "cleanup.policy", kmsg.StringPtr("compact")
	rt.Configs = append(rt.Configs, cc)
	creq.Topics = append(creq.Topics, rt)
	cresp, err := creq.RequestWith(ctxT(t), admin)
	if err != nil || cresp.Topics[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("create compacted topic: %v %+v", err, cresp)
	}
	// Broker configs are described, read-only.
	breq := kmsg.NewPtrDescribeConfigsRequest()
	br := kmsg.NewDescribeConfigsRequestResource()
	br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(brokerID))
	breq.Resources = append(breq.Resources, br)
	bresp, err := breq.RequestWith(ctxT(t), admin)
	if err != nil || bresp.Resources[0].ErrorCode != 0 || len(bresp.Resources[0].Configs) == 0 {
		t.Fatalf("describe broker configs: %v %+v", err, bresp)
	}
}

func testLogAppendTime(t *testing.T, n *kafkatest.Node, admin *kgo.Client) {
	const topic = "log-append-time"
	createTopic(t, admin, topic, 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	old := time.Now().Add(-24 * time.Hour)
	before := time.Now().Add(-time.Second)
	cl := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("a"), Timestamp: old}, &kgo.Record{Value: []byte("b"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, r := range consume(t, n, topic, 1, 2) {
		if r.Timestamp.Before(before) || r.Attrs.TimestampType() != 1 {
			t.Fatalf("record %s: timestamp %v type %d, want log append time after %v", r.Value, r.Timestamp, r.Attrs.TimestampType(), before)
		}
	}
}

// metadata asks for the named topics (nil: all).
func metadata(t *testing.T, cl *kgo.Client, topics ...string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func testTopicAdmin(t *testing.T, n *kafkatest.Node, admin *kgo.Client) {
	const topic = "admin"
	st := createTopic(t, admin, topic, 2, nil)
	if st.TopicID == [16]byte{} {
		t.Fatal("CreateTopics returned no topic id")
	}
	// Creating it again fails; validate-only creates nothing.
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{topic, "validate-only", "bad/name", "zero"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, -1
		if name == "zero" {
			rt.NumPartitions = 0
		}
		req.Topics = append(req.Topics, rt)
	}
	req.ValidateOnly = true
	resp, err := req.RequestWith(ctxT(t), admin)
	if err != nil {
		t.Fatal(err)
	}
	wantCodes := []int16{kerr.TopicAlreadyExists.Code, 0, kerr.InvalidTopicException.Code, kerr.InvalidPartitions.Code}
	for i, rt := range resp.Topics {
		if rt.ErrorCode != wantCodes[i] {
			t.Errorf("create %s (validate only): code %d, want %d", rt.Topic, rt.ErrorCode, wantCodes[i])
		}
	}
	if m := metadata(t, admin, "validate-only"); m.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		// The admin client does not allow auto-creation.
		t.Fatalf("validate-only created the topic: code %d", m.Topics[0].ErrorCode)
	}

	m := metadata(t, admin, topic)
	mt := m.Topics[0]
	if mt.ErrorCode != 0 || mt.TopicID != st.TopicID || len(mt.Partitions) != 2 {
		t.Fatalf("metadata: %+v", mt)
	}
	for _, p := range mt.Partitions {
		if p.Leader != brokerID || len(p.Replicas) != 1 {
			t.Fatalf("partition metadata: %+v", p)
		}
	}
	if len(m.Brokers) != 1 || m.Brokers[0].NodeID != brokerID || m.ControllerID != brokerID || deref(m.ClusterID) == "" {
		t.Fatalf("brokers %+v controller %d cluster %v", m.Brokers, m.ControllerID, deref(m.ClusterID))
	}

	// Grow to 5 partitions; shrinking is refused.
	grow := func(count int32) int16 {
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topic, count
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 10000
		resp, err := req.RequestWith(ctxT(t), admin)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode
	}
	if code := grow(5); code != 0 {
		t.Fatalf("create partitions: code %d", code)
	}
	if code := grow(3); code != kerr.InvalidPartitions.Code {
		t.Fatalf("shrink: code %d", code)
	}
	if got := len(metadata(t, admin, topic).Topics[0].Partitions); got != 5 {
		t.Fatalf("after growing: %d partitions", got)
	}
	manual := newClient(t, n, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := manual.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Partition: 4, Value: []byte("p4")}).FirstErr(); err != nil {
		t.Fatalf("produce to a new partition: %v", err)
	}

	// Metadata by topic id (v12+).
	idReq := kmsg.NewPtrMetadataRequest()
	idt := kmsg.NewMetadataRequestTopic()
	idt.TopicID = st.TopicID
	idReq.Topics = append(idReq.Topics, idt)
	idResp, err := idReq.RequestWith(ctxT(t), admin)
	if err != nil || idResp.Topics[0].ErrorCode != 0 || deref(idResp.Topics[0].Topic) != topic {
		t.Fatalf("metadata by id: %v %+v", err, idResp)
	}

	// DescribeLogDirs reports the partitions and their sizes.
	ldReq := kmsg.NewPtrDescribeLogDirsRequest()
	ldt := kmsg.NewDescribeLogDirsRequestTopic()
	ldt.Topic, ldt.Partitions = topic, []int32{4}
	ldReq.Topics = append(ldReq.Topics, ldt)
	ldResp, err := ldReq.RequestWith(ctxT(t), admin.Broker(int(brokerID)))
	if err != nil || len(ldResp.Dirs) != 1 || len(ldResp.Dirs[0].Topics) != 1 {
		t.Fatalf("describe log dirs: %v %+v", err, ldResp)
	}
	if p := ldResp.Dirs[0].Topics[0].Partitions; len(p) != 1 || p[0].Size <= 0 {
		t.Fatalf("log dir partitions: %+v", p)
	}

	// Delete by name, then the name is unknown.
	del := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(topic)
	del.Topics = append(del.Topics, dt)
	dt2 := kmsg.NewDeleteTopicsRequestTopic()
	dt2.Topic = kmsg.StringPtr("never-existed")
	del.Topics = append(del.Topics, dt2)
	del.TimeoutMillis = 10000
	dresp, err := del.RequestWith(ctxT(t), admin)
	if err != nil {
		t.Fatal(err)
	}
	if dresp.Topics[0].ErrorCode != 0 || dresp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete topics: %+v", dresp.Topics)
	}
	if m := metadata(t, admin, topic); m.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("deleted topic still in metadata: code %d", m.Topics[0].ErrorCode)
	}
}

func testAutoCreate(t *testing.T, n *kafkatest.Node, admin *kgo.Client) {
	cl := newClient(t, n, kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "auto-created", Value: []byte("hi")}).FirstErr(); err != nil {
		t.Fatalf("produce to a new topic: %v", err)
	}
	m := metadata(t, admin, "auto-created")
	if m.Topics[0].ErrorCode != 0 || len(m.Topics[0].Partitions) != 3 {
		t.Fatalf("auto-created topic: %+v", m.Topics[0])
	}
	// An illegal name is refused rather than created.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("bad name!")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctxT(t), admin)
	if err != nil || resp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("auto-create an illegal name: %v %+v", err, resp)
	}
}

func testLongPoll(t *testing.T, n *kafkatest.Node, admin *kgo.Client) {
	const topic = "long-poll"
	createTopic(t, admin, topic, 3, nil)
	cl := newClient(t, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {
		0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart(),
	}}), kgo.FetchMaxWait(10*time.Second))
	got := make(chan time.Time, 1)
	go func() {
		for {
			fs := cl.PollFetches(ctxT(t))
			if fs.NumRecords() > 0 || fs.IsClientClosed() || len(fs.Errors()) > 0 {
				got <- time.Now()
				return
			}
		}
	}()
	// Let the consumer park at the end of all three partitions.
	time.Sleep(500 * time.Millisecond)
	manual := newClient(t, n, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := manual.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Partition: 2, Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produced := time.Now()
	select {
	case at := <-got:
		if d := at.Sub(produced); d > 3*time.Second {
			t.Fatalf("parked fetch answered %v after the produce", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("parked fetch never answered")
	}
	// An empty partition honours MaxWait before answering empty.
	start := time.Now()
	f := fetchRaw(t, admin, topic, 0, 0, 300*time.Millisecond)
	if d := time.Since(start); f.ErrorCode != 0 || len(f.RecordBatches) != 0 || d < 250*time.Millisecond {
		t.Fatalf("empty fetch: code %d, %d bytes, after %v", f.ErrorCode, len(f.RecordBatches), d)
	}
}

func testCluster(t *testing.T, n *kafkatest.Node, admin *kgo.Client) {
	resp, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctxT(t), admin)
	if err != nil || resp.ErrorCode != 0 || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != brokerID || resp.ClusterID == "" {
		t.Fatalf("describe cluster: %v %+v", err, resp)
	}
	if resp.Brokers[0].Host+":"+strconv.Itoa(int(resp.Brokers[0].Port)) != n.Addr {
		t.Fatalf("broker address %s:%d, want %s", resp.Brokers[0].Host, resp.Brokers[0].Port, n.Addr)
	}
	// OffsetForLeaderEpoch answers the current epoch with the high watermark.
	const topic = "epochs"
	createTopic(t, admin, topic, 1, nil)
	if err := admin.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Value: []byte("e")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	epoch := metadata(t, admin, topic).Topics[0].Partitions[0].LeaderEpoch
	if epoch < 0 {
		t.Fatalf("no leader epoch in metadata after a produce")
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, epoch, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	oresp, err := req.RequestWith(ctxT(t), admin)
	if err != nil {
		t.Fatal(err)
	}
	if p := oresp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LeaderEpoch != epoch || p.EndOffset != 1 {
		t.Fatalf("offset for leader epoch: %+v", p)
	}
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = epoch + 1
	oresp, err = req.RequestWith(ctxT(t), admin)
	if err != nil || oresp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("newer current epoch: %v %+v", err, oresp)
	}
}
