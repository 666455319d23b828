package kafka_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/wire/kafka/kafkatest"
)

// BenchmarkFranzGoThroughput produces b.N 1 KiB records with acks=all to a
// three-partition topic, then consumes them, and reports each side's
// throughput. It runs on both deployments:
//
//	go test -run '^$' -bench FranzGoThroughput -benchtime 200000x ./wire/kafka/
func BenchmarkFranzGoThroughput(b *testing.B) {
	for _, backend := range kafkatest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			n := kafkatest.Start(b, kafkatest.Options{Backend: backend})
			const topic = "bench"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			admin, err := kgo.NewClient(kgo.SeedBrokers(n.Addr))
			if err != nil {
				b.Fatal(err)
			}
			defer admin.Close()
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 3, -1
			req.Topics = append(req.Topics, rt)
			if resp, err := req.RequestWith(ctx, admin); err != nil || resp.Topics[0].ErrorCode != 0 {
				b.Fatalf("create topic: %v %+v", err, resp)
			}
			// Distinct random values: kgo compresses batches with snappy
			// by default, and repeated values would measure the
			// compressor, not the broker. A batch (at most 1 MiB) never
			// wraps around the 8 MiB pool, so no value repeats within it.
			const size = 1024
			pool := make([]byte, 8<<20)
			_, _ = rand.Read(pool)
			prod, err := kgo.NewClient(kgo.SeedBrokers(n.Addr), kgo.DefaultProduceTopic(topic),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100000))
			if err != nil {
				b.Fatal(err)
			}
			defer prod.Close()
			b.SetBytes(size)
			b.ResetTimer()
			start := time.Now()
			errs := make(chan error, 1)
			for i := range b.N {
				off := i * size % len(pool)
				prod.Produce(ctx, &kgo.Record{Value: pool[off : off+size]}, func(_ *kgo.Record, err error) {
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				})
			}
			if err := prod.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			produced := time.Since(start)
			select {
			case err := <-errs:
				b.Fatalf("produce: %v", err)
			default:
			}

			cons, err := kgo.NewClient(kgo.SeedBrokers(n.Addr), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(50<<20))
			if err != nil {
				b.Fatal(err)
			}
			defer cons.Close()
			start = time.Now()
			for got := 0; got < b.N; {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					b.Fatalf("consume: %v", err)
				}
				got += fs.NumRecords()
			}
			consumed := time.Since(start)
			b.StopTimer()
			mb := float64(b.N) * size / (1 << 20)
			b.ReportMetric(mb/produced.Seconds(), "produce-MiB/s")
			b.ReportMetric(mb/consumed.Seconds(), "consume-MiB/s")
			b.ReportMetric(float64(b.N)/produced.Seconds(), "produce-rec/s")
		})
	}
}
