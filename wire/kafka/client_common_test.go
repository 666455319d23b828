package kafka_test

// Shared by the client suites client_<name>_test.go: each drives a node
// started by kafkatest with one real Kafka client (sarama, kafka-go,
// confluent-kafka-go, kcat, kafkajs), on both deployments, through the same
// scenarios: a topic with several partitions, keyed records in every codec
// the client has, consumed in a group with content and per-partition order
// checked, a commit and a resume at the committed offsets, two members
// splitting the partitions and rebalancing when one leaves, an idempotent
// producer and acks=0/1/all.

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/wire/kafka"
	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// Sizes of the client scenarios: small, as every suite runs under -race on
// both deployments.
const (
	cliPartitions = 4  // partitions of the codec and rebalance topics
	cliPerCodec   = 24 // records per codec
	cliKeys       = 8  // distinct keys per batch
	cliResume     = 12 // records produced while no consumer runs
	cliPerAcks    = 16 // records per acks mode
	cliIdempotent = 60 // records from the idempotent producer
)

// cliCodecs are the compression codec names, as librdkafka spells them,
// indexed by their code in a batch's attributes.
var cliCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// cliNode starts the node one client suite shares. Its group coordinator
// waits only briefly for the first members of a new group (Kafka's 3 s
// default would slow every join).
func cliNode(t *testing.T, b kafkatest.Backend) *kafkatest.Node {
	t.Helper()
	var groups *actors.Groups
	n := kafkatest.Start(t, kafkatest.Options{Backend: b, Server: func(c *kafka.Config) {
		groups = actors.NewGroups(c.Broker, actors.GroupOptions{InitialRebalanceDelay: 100 * time.Millisecond})
		c.Groups = groups
	}})
	// Registered after the node's cleanup, so it runs first: the
	// coordinator stops while the broker still runs.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := groups.Close(ctx); err != nil {
			t.Errorf("close groups: %v", err)
		}
	})
	return n
}

// cliTool returns the path of an external client program. Missing, it
// skips the test, or fails it when integration tests are required (CI).
func cliTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv(itest.EnvRequireServer) == "1" {
		t.Fatalf("%s not found but %s=1: %v", name, itest.EnvRequireServer, err)
	}
	t.Skipf("%s not found: %v", name, err)
	return ""
}

// cliRecord is a record as a client consumed it.
type cliRecord struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	// Header is the value of the record's "codec" header, where the
	// suite sets one.
	Header string
}

// cliKey and cliValue are the key and value of record i of a batch named
// prefix. Values repeat a pattern so every codec really compresses.
func cliKey(i int) string { return "key-" + strconv.Itoa(i%cliKeys) }

func cliValue(prefix string, i int) string {
	return fmt.Sprintf("%s-%03d-%s", prefix, i, strings.Repeat("abc", 10+i%20))
}

// cliBatch returns the values of count records named prefix, in the order
// they are produced.
func cliBatch(prefix string, count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = cliValue(prefix, i)
	}
	return out
}

// cliKeyOf recovers the key a value was produced with.
func cliKeyOf(value string) string {
	parts := strings.SplitN(value, "-", 3)
	i, _ := strconv.Atoi(parts[1])
	return cliKey(i)
}

// cliCheckConsumed checks what one consumer received, in the order it
// received it, against the values produced, in the order they were
// produced: every value exactly once, with its key; each key in one
// partition; in each partition the offsets dense from from[p] (0 if
// absent) and the records in the order they were produced. at, when not
// nil, holds the partition and offset the producer reported per value.
func cliCheckConsumed(t *testing.T, produced []string, got []cliRecord, from map[int32]int64, at map[string]cliRecord) {
	t.Helper()
	order := make(map[string]int, len(produced))
	for i, v := range produced {
		order[v] = i
	}
	if len(got) != len(produced) {
		t.Errorf("consumed %d records, produced %d", len(got), len(produced))
	}
	seen := map[string]bool{}
	next := map[int32]int64{}
	lastIndex := map[int32]int{}
	keyPartition := map[string]int32{}
	for _, r := range got {
		i, ok := order[r.Value]
		switch {
		case !ok:
			t.Fatalf("consumed %d/%d %q, which was not produced", r.Partition, r.Offset, r.Value)
		case seen[r.Value]:
			t.Fatalf("consumed %q twice (again at %d/%d)", r.Value, r.Partition, r.Offset)
		case r.Key != cliKeyOf(r.Value):
			t.Fatalf("record %q has key %q, want %q", r.Value, r.Key, cliKeyOf(r.Value))
		}
		seen[r.Value] = true
		if p, ok := keyPartition[r.Key]; ok && p != r.Partition {
			t.Fatalf("key %s is in partitions %d and %d", r.Key, p, r.Partition)
		}
		keyPartition[r.Key] = r.Partition
		want, ok := next[r.Partition]
		if !ok {
			want = from[r.Partition]
		}
		if r.Offset != want {
			t.Fatalf("partition %d: consumed offset %d (%q), want %d", r.Partition, r.Offset, r.Value, want)
		}
		next[r.Partition] = r.Offset + 1
		if last, ok := lastIndex[r.Partition]; ok && i < last {
			t.Fatalf("partition %d: %q consumed after %q, produced before it", r.Partition, r.Value, produced[last])
		}
		lastIndex[r.Partition] = i
		if at != nil {
			if a, ok := at[r.Value]; ok && (a.Partition != r.Partition || (a.Offset >= 0 && a.Offset != r.Offset)) {
				t.Fatalf("%q: produced to %d/%d, consumed at %d/%d", r.Value, a.Partition, a.Offset, r.Partition, r.Offset)
			}
		}
	}
	for _, v := range produced {
		if !seen[v] {
			t.Fatalf("produced %q, never consumed", v)
		}
	}
}

// cliCheckHeaders checks every record carries the "codec" header wanted
// for its value.
func cliCheckHeaders(t *testing.T, got []cliRecord, want func(value string) string) {
	t.Helper()
	for _, r := range got {
		if w := want(r.Value); r.Header != w {
			t.Fatalf("%q: header codec=%q, want %q", r.Value, r.Header, w)
		}
	}
}

// cliCodecOf is the codec a codec-test value was produced with (its prefix).
func cliCodecOf(value string) string { return strings.SplitN(value, "-", 2)[0] }

// cliCodecBatches returns the values the codec scenario produces, codec by
// codec.
func cliCodecBatches() []string {
	var all []string
	for _, c := range cliCodecs {
		all = append(all, cliBatch(c, cliPerCodec)...)
	}
	return all
}

// cliCreateTopic creates a topic through franz-go, for clients that have
// no admin API.
func cliCreateTopic(t *testing.T, n *kafkatest.Node, topic string, partitions int32) {
	t.Helper()
	createTopic(t, newClient(t, n), topic, partitions, nil)
}

// cliEndOffsets returns the high watermark of every partition of topic.
func cliEndOffsets(t *testing.T, n *kafkatest.Node, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	cl := newClient(t, n)
	out := map[int32]int64{}
	for p := range partitions {
		lo := listOffset(t, cl, topic, p, -1)
		if lo.ErrorCode != 0 {
			t.Fatalf("list offsets %s/%d: %v", topic, p, kerr.ErrorForCode(lo.ErrorCode))
		}
		out[p] = lo.Offset
	}
	return out
}

// cliCommitted returns what group committed for each partition of topic
// (-1: nothing), asked through franz-go.
func cliCommitted(t *testing.T, n *kafkatest.Node, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic = topic
	for p := range partitions {
		rt.Partitions = append(rt.Partitions, p)
	}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctxT(t), newClient(t, n))
	if err != nil {
		t.Fatalf("offset fetch %s: %v", group, err)
	}
	out := map[int32]int64{}
	for _, g := range resp.Groups {
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			t.Fatalf("offset fetch %s: %v", group, err)
		}
		for _, gt := range g.Topics {
			for _, p := range gt.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					t.Fatalf("offset fetch %s %s/%d: %v", group, topic, p.Partition, err)
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	return out
}

// cliCheckCommitted checks group committed exactly the end of every
// partition of topic (or nothing, for an empty partition), and returns the
// end offsets.
func cliCheckCommitted(t *testing.T, n *kafkatest.Node, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	end := cliEndOffsets(t, n, topic, partitions)
	got := cliCommitted(t, n, group, topic, partitions)
	for p := range partitions {
		if got[p] != end[p] && (end[p] != 0 || got[p] != -1) {
			t.Fatalf("group %s committed %v, want the end offsets %v", group, got, end)
		}
	}
	return end
}

// cliCheckIdempotent checks each partition of topic that holds records has
// exactly one active producer, with a producer id, whose last sequence
// numbers the partition's records from 0.
func cliCheckIdempotent(t *testing.T, n *kafkatest.Node, topic string, partitions int32) {
	t.Helper()
	end := cliEndOffsets(t, n, topic, partitions)
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), newClient(t, n))
	if err != nil {
		t.Fatalf("describe producers: %v", err)
	}
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			t.Fatalf("describe producers %s/%d: %v", topic, p.Partition, err)
		}
		if end[p.Partition] == 0 {
			continue
		}
		if len(p.ActiveProducers) != 1 {
			t.Fatalf("partition %d: active producers %+v, want one idempotent producer", p.Partition, p.ActiveProducers)
		}
		ap := p.ActiveProducers[0]
		if ap.ProducerID < 0 || int64(ap.LastSequence) != end[p.Partition]-1 {
			t.Fatalf("partition %d (%d records): active producer %+v", p.Partition, end[p.Partition], ap)
		}
	}
}

// cliEventually polls cond until it holds, failing the test after a
// deadline.
func cliEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// cliCheckSplit waits until two members of a group hold disjoint, non-empty
// sets of partitions that cover all of them; then stops the second and
// waits until the first holds every partition.
func cliCheckSplit(t *testing.T, partitions int32, a, b func() []int32, stopB func()) {
	t.Helper()
	var pa, pb []int32
	cliEventually(t, "two members to split the partitions", func() bool {
		pa, pb = a(), b()
		if len(pa) == 0 || len(pb) == 0 || len(pa)+len(pb) != int(partitions) {
			return false
		}
		all := slices.Concat(pa, pb)
		slices.Sort(all)
		return len(slices.Compact(all)) == int(partitions)
	})
	t.Logf("split: %v and %v", pa, pb)
	stopB()
	cliEventually(t, "the remaining member to take every partition", func() bool {
		return len(a()) == int(partitions)
	})
}

// cliWaitRecords waits until topic holds total records. After an acks=0
// produce it orders what comes next after what was sent unanswered.
func cliWaitRecords(t *testing.T, n *kafkatest.Node, topic string, partitions int32, total int64) {
	t.Helper()
	cliEventually(t, "the records to arrive", func() bool {
		var sum int64
		for _, o := range cliEndOffsets(t, n, topic, partitions) {
			sum += o
		}
		return sum >= total
	})
}

// cliCheckStoredCodecs reads every batch of topic back raw and checks the
// compression codecs they are stored with are exactly want: the client
// really compressed with each, and the broker kept the batches as sent.
func cliCheckStoredCodecs(t *testing.T, n *kafkatest.Node, topic string, partitions int32, want []string) {
	t.Helper()
	cl := newClient(t, n)
	end := cliEndOffsets(t, n, topic, partitions)
	seen := map[string]bool{}
	for p := range partitions {
		for off := int64(0); off < end[p]; {
			f := fetchRaw(t, cl, topic, p, off, 0)
			if err := kerr.ErrorForCode(f.ErrorCode); err != nil {
				t.Fatalf("fetch %s/%d at %d: %v", topic, p, off, err)
			}
			b := f.RecordBatches
			if len(b) == 0 {
				t.Fatalf("fetch %s/%d at %d: no batches below the end %d", topic, p, off, end[p])
			}
			for len(b) >= 12 {
				size := 12 + int(int32(binary.BigEndian.Uint32(b[8:12])))
				if size > len(b) {
					break // a partial batch at the end of the response
				}
				var batch kmsg.RecordBatch
				if err := batch.ReadFrom(b[:size]); err != nil {
					t.Fatalf("batch of %s/%d: %v", topic, p, err)
				}
				seen[cliCodecs[batch.Attributes&7]] = true
				off = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
				b = b[size:]
			}
		}
	}
	if got := slices.Sorted(maps.Keys(seen)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("%s is stored with codecs %v, want %v", topic, got, want)
	}
}
