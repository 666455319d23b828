package wal_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/wal/client"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// kafkaRecord is a record as franz-go's decoder sees it.
type kafkaRecord struct {
	offset     int64
	key, value []byte
	headers    []kmsg.Header
}

// decodeWithKmsg decodes concatenated uncompressed v2 batches with
// franz-go's kmsg codec (independent of Morax's segment package).
func decodeWithKmsg(t *testing.T, batches []byte) []kafkaRecord {
	t.Helper()
	var out []kafkaRecord
	for len(batches) > 0 {
		size := 12 + int(int32(binary.BigEndian.Uint32(batches[8:12])))
		var b kmsg.RecordBatch
		if err := b.ReadFrom(batches[:size]); err != nil {
			t.Fatalf("kmsg: read batch: %v", err)
		}
		batches = batches[size:]
		if b.Magic != 2 || b.Attributes&0x07 != 0 {
			t.Fatalf("batch magic %d attributes %#x: want an uncompressed v2 batch", b.Magic, b.Attributes)
		}
		crc := crc32.Checksum(batchCRCBytes(b), crc32.MakeTable(crc32.Castagnoli))
		if int32(crc) != b.CRC {
			t.Fatalf("batch at %d: CRC %#x, computed %#x", b.FirstOffset, uint32(b.CRC), crc)
		}
		recs := b.Records
		for i := range int(b.NumRecords) {
			l, n := binary.Varint(recs)
			if n <= 0 {
				t.Fatalf("record %d: bad length", i)
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:n+int(l)]); err != nil {
				t.Fatalf("kmsg: record %d: %v", i, err)
			}
			recs = recs[n+int(l):]
			out = append(out, kafkaRecord{b.FirstOffset + int64(r.OffsetDelta), r.Key, r.Value, r.Headers})
		}
	}
	return out
}

// batchCRCBytes re-encodes the part of a batch its CRC covers.
func batchCRCBytes(b kmsg.RecordBatch) []byte {
	full := b.AppendTo(nil)
	return full[21:]
}

// kafkaBatch builds a record batch the way a Kafka producer does, with
// franz-go's kmsg types: keys, headers, timestamps, CRC-32C.
func kafkaBatch(records []kmsg.Record) []byte {
	now := time.Now().UnixMilli()
	var recs []byte
	for i := range records {
		r := &records[i]
		r.OffsetDelta = int32(i)
		r.TimestampDelta64 = int64(i)
		body := r.AppendTo(nil)
		// AppendTo writes Length as given; encode once to learn it.
		_, n := binary.Varint(body)
		r.Length = int32(len(body) - n)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: int32(len(records) - 1), FirstTimestamp: now, MaxTimestamp: now + int64(len(records)) - 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(records)), Records: recs,
	}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	b.CRC = int32(crc32.Checksum(batchCRCBytes(b), crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// TestWALAppendReadByKafkaCodec appends through the WAL API and decodes the
// stored batches with franz-go's codec: each entry is a record value at
// the offset the append returned.
func TestWALAppendReadByKafkaCodec(t *testing.T) {
	waltest.ForEachBackend(t, waltest.Options{}, func(t *testing.T, n *waltest.Node) {
		ctx := t.Context()
		if err := n.Client.Create(ctx, "wal2kafka", nil); err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for i := range 4 {
			es := [][]byte{fmt.Appendf(nil, "entry-%d-a", i), fmt.Appendf(nil, "entry-%d-b", i), {}}
			r, err := n.Client.Append(ctx, "wal2kafka", es)
			if err != nil {
				t.Fatal(err)
			}
			if r.Start != int64(len(want)) {
				t.Fatalf("append %d at %d, want %d", i, r.Start, len(want))
			}
			want = append(want, es...)
		}
		topic, err := n.Broker.Topic(ctx, "wal2kafka")
		if err != nil {
			t.Fatal(err)
		}
		if topic.Kind != meta.KindWAL || topic.Partitions != 1 {
			t.Fatalf("WAL log as a topic: %+v", topic)
		}
		fr, err := n.Broker.Fetch(ctx, topic, 0, actors.Fetch{Offset: 0, MaxBytes: 1 << 20})
		if err != nil || fr.Err != nil {
			t.Fatalf("fetch: %v %v", err, fr.Err)
		}
		got := decodeWithKmsg(t, fr.Batches)
		if len(got) != len(want) {
			t.Fatalf("kmsg decoded %d records, want %d", len(got), len(want))
		}
		for i, r := range got {
			if r.offset != int64(i) || string(r.value) != string(want[i]) || r.key != nil || len(r.headers) != 0 {
				t.Errorf("record %d: offset %d key %q value %q headers %v; want offset %d value %q",
					i, r.offset, r.key, r.value, r.headers, i, want[i])
			}
			if r.value == nil {
				t.Errorf("record %d: an empty entry must be an empty value, not null", i)
			}
		}
	})
}

// TestKafkaBatchReadThroughWAL appends a producer-built batch (keys and
// headers) to partition 1 of a Kafka topic and reads it through the WAL API.
func TestKafkaBatchReadThroughWAL(t *testing.T) {
	waltest.ForEachBackend(t, waltest.Options{}, func(t *testing.T, n *waltest.Node) {
		ctx := t.Context()
		topic, err := n.Broker.CreateTopic(ctx, meta.Topic{Name: "events", Kind: meta.KindKafka, Partitions: 3})
		if err != nil {
			t.Fatal(err)
		}
		recs := []kmsg.Record{
			{Key: []byte("k0"), Value: []byte("v0"), Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}}},
			{Key: nil, Value: []byte("v1")},
			{Key: []byte("k2"), Value: []byte("v2")},
		}
		for range 2 {
			res, err := n.Broker.Append(ctx, topic, 1, kafkaBatch(recs), -1)
			if err != nil || res.Err != nil {
				t.Fatalf("append: %v %v", err, res.Err)
			}
		}
		res, err := n.Client.Read(ctx, "events", 0, &client.ReadOptions{Partition: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) != 6 || res.EndOffset != 6 {
			t.Fatalf("read %d entries, end %d; want 6, 6", len(res.Entries), res.EndOffset)
		}
		for i, e := range res.Entries {
			r := recs[i%3]
			if e.Index != int64(i) || string(e.Data) != string(r.Value) || string(e.Key) != string(r.Key) || (e.Key == nil) != (r.Key == nil) {
				t.Errorf("entry %d: %+v, want key %q value %q", i, e, r.Key, r.Value)
			}
		}
		// Other partitions are untouched; a missing partition is NotFound.
		res, err = n.Client.Read(ctx, "events", 0, &client.ReadOptions{Partition: 2})
		if err != nil || len(res.Entries) != 0 {
			t.Fatalf("partition 2: %+v %v", res, err)
		}
		if _, err := n.Client.Read(ctx, "events", 0, &client.ReadOptions{Partition: 3}); client.CodeOf(err) != client.CodeNotFound {
			t.Fatalf("partition 3: %v", err)
		}
		// Kafka topics are listed on request only and cannot be deleted here.
		page, err := n.Client.List(ctx, client.ListOptions{})
		if err != nil || len(page.Logs) != 0 {
			t.Fatalf("default listing shows Kafka topics: %+v %v", page, err)
		}
		page, err = n.Client.List(ctx, client.ListOptions{IncludeKafka: true})
		if err != nil || len(page.Logs) != 1 || page.Logs[0].Kind != "kafka" || page.Logs[0].Partitions != 3 {
			t.Fatalf("listing with Kafka topics: %+v %v", page, err)
		}
		info, err := n.Client.DescribePartition(ctx, "events", 1)
		if err != nil || info.EndOffset != 6 || info.Partition != 1 {
			t.Fatalf("describe partition 1: %+v %v", info, err)
		}
		if err := n.Client.Delete(ctx, "events"); client.CodeOf(err) != client.CodeInvalidArgument {
			t.Fatalf("delete of a Kafka topic: %v", err)
		}
	})
}

// startKafka serves the Kafka protocol on the node's broker.
func startKafka(t *testing.T, n *waltest.Node) string {
	t.Helper()
	groups := actors.NewGroups(n.Broker, actors.GroupOptions{})
	srv, err := kafka.NewServer(kafka.Config{Broker: n.Broker, Groups: groups, ListenAddr: "127.0.0.1:0", DefaultPartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close kafka server: %v", err)
		}
		<-served
		if err := groups.Close(ctx); err != nil {
			t.Errorf("close groups: %v", err)
		}
	})
	return srv.Addr().String()
}

// TestFranzGoEndToEnd runs franz-go against the node's Kafka listener: it
// consumes what the WAL API appended, at the same offsets, and produces
// (compressed, keyed) records that the WAL API then reads.
func TestFranzGoEndToEnd(t *testing.T) {
	waltest.ForEachBackend(t, waltest.Options{}, func(t *testing.T, n *waltest.Node) {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		addr := startKafka(t, n)
		if err := n.Client.Create(ctx, "shared", nil); err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := range 3 {
			es := [][]byte{fmt.Appendf(nil, "wal-%d-0", i), fmt.Appendf(nil, "wal-%d-1", i)}
			if _, err := n.Client.Append(ctx, "shared", es); err != nil {
				t.Fatal(err)
			}
			want = append(want, string(es[0]), string(es[1]))
		}

		// WAL -> Kafka consumer.
		consumer, err := kgo.NewClient(kgo.SeedBrokers(addr),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"shared": {0: kgo.NewOffset().At(0)}}))
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		var got []*kgo.Record
		for len(got) < len(want) {
			fs := consumer.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %d of %d: %v", len(got), len(want), err)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
			got = append(got, fs.Records()...)
		}
		for i, r := range got {
			if r.Offset != int64(i) || string(r.Value) != want[i] || r.Key != nil {
				t.Errorf("kafka record %d: offset %d key %q value %q, want offset %d value %q", i, r.Offset, r.Key, r.Value, i, want[i])
			}
		}

		// Kafka producer (default compression, keys) -> WAL read and tail.
		producer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("shared"),
			kgo.ProducerBatchCompression(kgo.ZstdCompression()))
		if err != nil {
			t.Fatal(err)
		}
		defer producer.Close()
		var produced []*kgo.Record
		for i := range 5 {
			produced = append(produced, &kgo.Record{Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, "kafka-%d", i)})
		}
		if err := producer.ProduceSync(ctx, produced...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		res, err := n.Client.Read(ctx, "shared", int64(len(want)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) != len(produced) {
			t.Fatalf("WAL read %d entries after the produce, want %d", len(res.Entries), len(produced))
		}
		for i, e := range res.Entries {
			p := produced[i]
			if e.Index != p.Offset || string(e.Data) != string(p.Value) || string(e.Key) != string(p.Key) {
				t.Errorf("entry %d: %+v, produced offset %d key %q value %q", i, e, p.Offset, p.Key, p.Value)
			}
		}
		var tailed []client.Entry
		for e, err := range n.Client.Tail(ctx, "shared", int64(len(want)), nil) {
			if err != nil {
				t.Fatal(err)
			}
			tailed = append(tailed, e)
			if len(tailed) == len(produced) {
				break
			}
		}
		if string(tailed[4].Data) != "kafka-4" {
			t.Errorf("tail of produced records: %+v", tailed)
		}
	})
}
