package kafka_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/internal/itest"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/objstore"
	"github.com/morax-dev/morax/persistence/segment"
	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// fetchReq builds a fetch of the given partitions of one topic from offset 0.
func fetchReq(topic string, wait time.Duration, minBytes, maxBytes, partMax int32, partitions ...int32) *kmsg.FetchRequest {
	f := kmsg.NewPtrFetchRequest()
	f.Version, f.MaxWaitMillis, f.MinBytes, f.MaxBytes, f.SessionEpoch = 12, int32(wait/time.Millisecond), minBytes, maxBytes, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, partMax
		rt.Partitions = append(rt.Partitions, rp)
	}
	f.Topics = append(f.Topics, rt)
	return f
}

// produceBatches appends count one-record batches with values of size
// bytes to a partition, through a raw connection.
func produceBatches(t *testing.T, r *rawConn, topic string, p int32, count, size int) {
	t.Helper()
	for range count {
		b, err := segment.BuildBatch([]segment.Record{{Timestamp: time.Now().UnixMilli(), Value: make([]byte, size)}}, segment.CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		if code := produceCode(t, r, produceReq(9, topic, p, -1, b)); code != 0 {
			t.Fatalf("produce: code %d", code)
		}
	}
}

func batchCount(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	for _, err := range segment.Batches(b) {
		if err != nil {
			t.Fatalf("fetched bytes are not whole batches: %v", err)
		}
		n++
	}
	return n
}

// TestFetchLimits checks MaxBytes per partition and per response, MinBytes
// with MaxWait, and topic ids (Produce v13, Fetch v13+).
func TestFetchLimits(t *testing.T) {
	n := kafkatest.Start(t, kafkatest.Options{})
	const topic = "limits"
	cl := newClient(t, n)
	id := createTopic(t, cl, topic, 2, nil).TopicID
	r := dialRaw(t, n.Addr)
	produceBatches(t, r, topic, 0, 5, 1000)
	produceBatches(t, r, topic, 1, 5, 1000)

	t.Run("partition max bytes", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		resp := r.roundTrip(fetchReq(topic, 0, 1, 1<<20, 2500, 0, 1)).(*kmsg.FetchResponse)
		for _, p := range resp.Topics[0].Partitions {
			if got := batchCount(t, p.RecordBatches); got < 1 || got > 2 || len(p.RecordBatches) > 2500 {
				t.Fatalf("partition %d: %d batches, %d bytes within a 2500-byte limit", p.Partition, got, len(p.RecordBatches))
			}
		}
	})
	t.Run("first batch is whole even over the limit", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		resp := r.roundTrip(fetchReq(topic, 0, 1, 10, 10, 0)).(*kmsg.FetchResponse)
		if got := batchCount(t, resp.Topics[0].Partitions[0].RecordBatches); got != 1 {
			t.Fatalf("%d batches, want 1", got)
		}
	})
	t.Run("response max bytes", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		resp := r.roundTrip(fetchReq(topic, 0, 1, 3000, 1<<20, 0, 1)).(*kmsg.FetchResponse)
		ps := resp.Topics[0].Partitions
		total := len(ps[0].RecordBatches) + len(ps[1].RecordBatches)
		if total == 0 || total > 3000+1100 {
			t.Fatalf("%d bytes for a 3000-byte response", total)
		}
		if ps[1].HighWatermark != 5 {
			t.Fatalf("partition past the budget: high watermark %d, want 5", ps[1].HighWatermark)
		}
	})
	t.Run("budget left by an empty partition goes to the next", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		f := fetchReq(topic, 0, 1, 1500, 1<<20, 0, 1)
		f.Topics[0].Partitions[0].FetchOffset = 5 // at the end: no data
		resp := r.roundTrip(f).(*kmsg.FetchResponse)
		if ps := resp.Topics[0].Partitions; len(ps[0].RecordBatches) != 0 || batchCount(t, ps[1].RecordBatches) != 1 {
			t.Fatalf("got %d and %d bytes", len(ps[0].RecordBatches), len(ps[1].RecordBatches))
		}
	})
	t.Run("min bytes waits for max wait", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		start := time.Now()
		f := fetchReq(topic, 400*time.Millisecond, 1<<20, 1<<20, 1<<20, 0)
		resp := r.roundTrip(f).(*kmsg.FetchResponse)
		if d := time.Since(start); d < 350*time.Millisecond || d > 3*time.Second {
			t.Fatalf("answered after %v, want about 400ms", d)
		}
		if got := batchCount(t, resp.Topics[0].Partitions[0].RecordBatches); got != 5 {
			t.Fatalf("%d batches after waiting, want all 5", got)
		}
	})
	t.Run("min bytes accumulates across wakes", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		createTopic(t, cl, "accumulate", 1, nil)
		producer := dialRaw(t, n.Addr)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 2 {
				time.Sleep(300 * time.Millisecond)
				b, _ := segment.BuildBatch([]segment.Record{{Timestamp: time.Now().UnixMilli(), Value: make([]byte, 1000)}}, segment.CodecNone)
				producer.send(produceReq(9, "accumulate", 0, -1, b))
			}
		}()
		start := time.Now()
		resp := r.roundTrip(fetchReq("accumulate", 10*time.Second, 1500, 1<<20, 1<<20, 0)).(*kmsg.FetchResponse)
		d := time.Since(start)
		<-done
		if got := batchCount(t, resp.Topics[0].Partitions[0].RecordBatches); got != 2 {
			t.Fatalf("%d batches, want the 2 that made MinBytes", got)
		}
		if d < 500*time.Millisecond || d > 5*time.Second {
			t.Fatalf("answered after %v, want soon after the second produce", d)
		}
	})
	t.Run("offset out of range", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		f := fetchReq(topic, 0, 1, 1<<20, 1<<20, 0)
		f.Topics[0].Partitions[0].FetchOffset = 6
		resp := r.roundTrip(f).(*kmsg.FetchResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
			t.Fatalf("code %d", code)
		}
	})
	t.Run("fenced and unknown leader epochs", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		epoch := metadata(t, cl, topic).Topics[0].Partitions[0].LeaderEpoch
		f := fetchReq(topic, 0, 1, 1<<20, 1<<20, 0)
		for _, c := range []struct {
			epoch int32
			want  int16
		}{{epoch - 1, kerr.FencedLeaderEpoch.Code}, {epoch + 1, kerr.UnknownLeaderEpoch.Code}, {epoch, 0}, {-1, 0}} {
			f.Topics[0].Partitions[0].CurrentLeaderEpoch = c.epoch
			resp := r.roundTrip(f).(*kmsg.FetchResponse)
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != c.want {
				t.Fatalf("epoch %d (current %d): code %d, want %d", c.epoch, epoch, code, c.want)
			}
		}
	})
	t.Run("incremental fetch session", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		f := fetchReq(topic, 0, 1, 1<<20, 1<<20, 0)
		f.SessionEpoch = 0 // asks for a session: answered sessionless
		if resp := r.roundTrip(f).(*kmsg.FetchResponse); resp.ErrorCode != 0 || resp.SessionID != 0 {
			t.Fatalf("new session: code %d id %d", resp.ErrorCode, resp.SessionID)
		}
		f.SessionID, f.SessionEpoch = 12, 1
		if resp := r.roundTrip(f).(*kmsg.FetchResponse); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("unknown session: code %d", resp.ErrorCode)
		}
	})
	t.Run("topic ids", func(t *testing.T) {
		r := dialRaw(t, n.Addr) // own connection: a stalled answer must not cascade
		b := testBatch(t, segment.CodecSnappy)
		req := produceReq(13, "", 1, -1, b)
		req.Topics[0].TopicID = id
		resp := r.roundTrip(req).(*kmsg.ProduceResponse)
		if rt := resp.Topics[0]; rt.TopicID != id || rt.Partitions[0].ErrorCode != 0 || rt.Partitions[0].BaseOffset != 5 {
			t.Fatalf("produce v13: %+v", rt)
		}
		req.Topics[0].TopicID = [16]byte{1}
		if code := produceCode(t, r, req); code != kerr.UnknownTopicID.Code {
			t.Fatalf("produce v13 to an unknown id: code %d", code)
		}
		f := fetchReq("", 0, 1, 1<<20, 1<<20, 1)
		f.Version = 13
		f.Topics[0].TopicID = id
		f.Topics[0].Partitions[0].FetchOffset = 5
		fresp := r.roundTrip(f).(*kmsg.FetchResponse)
		if p := fresp.Topics[0].Partitions[0]; fresp.Topics[0].TopicID != id || p.ErrorCode != 0 || batchCount(t, p.RecordBatches) != 1 {
			t.Fatalf("fetch v13: %+v", fresp.Topics[0])
		}
	})
}

// slowStore delays every Put until released, to hold appends in flight.
type slowStore struct {
	objstore.Store
	mu      sync.Mutex
	release chan struct{}
}

func (s *slowStore) Put(ctx context.Context, key string, data []byte) error {
	s.mu.Lock()
	ch := s.release
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Put(ctx, key, data)
}

func (s *slowStore) unblock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// TestSlowStorage checks what producers see while uploads hang: the produce
// timeout answers REQUEST_TIMED_OUT, a full node buffer NOT_ENOUGH_REPLICAS
// with a throttle, and a graceful close still answers parked fetches.
func TestSlowStorage(t *testing.T) {
	slow := &slowStore{release: make(chan struct{})}
	backend := kafkatest.Backend{Name: "slow", Open: func(t testing.TB) (meta.Store, objstore.Store) {
		m, o := kafkatest.Embedded().Open(t)
		slow.Store = o
		return m, slow
	}}
	n := kafkatest.Start(t, kafkatest.Options{Backend: backend, Broker: func(o *actors.Options) {
		o.NodeBufferBytes = 100 // one small batch at a time
	}})
	t.Cleanup(slow.unblock) // let the broker drain when the test ends
	if _, err := n.Broker.CreateTopic(context.Background(), meta.Topic{Name: "slow", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, n.Addr)

	req := produceReq(9, "slow", 0, -1, testBatch(t, segment.CodecNone))
	req.TimeoutMillis = 200
	start := time.Now()
	if code := produceCode(t, r, req); code != kerr.RequestTimedOut.Code {
		t.Fatalf("produce while uploads hang: code %d, want REQUEST_TIMED_OUT", code)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Fatalf("timed out after %v, want about 200ms", d)
	}

	// The first append still holds the node's buffer: the next is refused.
	resp := r.roundTrip(produceReq(9, "slow", 0, -1, testBatch(t, segment.CodecNone))).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotEnoughReplicas.Code || resp.ThrottleMillis <= 0 {
		t.Fatalf("produce over the node buffer: code %d throttle %d, want NOT_ENOUGH_REPLICAS with a throttle", code, resp.ThrottleMillis)
	}

	// A fetch parked for long is answered when the server closes.
	fetcher := dialRaw(t, n.Addr)
	fcorr := fetcher.send(fetchReq("slow", 20*time.Second, 1, 1<<20, 1<<20, 0))
	itest.WaitForGauge(t, n.Registry, "morax_parked_readers", 1)
	slow.unblock()
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- n.Server.Close(ctx)
	}()
	fresp := kmsg.NewPtrFetchResponse()
	fresp.Version = 12
	start = time.Now()
	if corr := fetcher.recv(fresp); corr != fcorr {
		t.Fatalf("correlation id %d, want %d", corr, fcorr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("parked fetch answered %v after close began", d)
	}
	fetcher.expectClosed()
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
}
