package actors_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
)

// BenchmarkAppend measures append-to-acknowledge throughput and latency of
// 16 KiB batches of 1 KiB records on 1 and 16 partitions, embedded and on
// PostgreSQL + MinIO, at moderate load (64 appends in flight: latency) and
// at saturation (1024 in flight, 16 MiB: throughput). Every
// acknowledgement waited for its object PUT and its metadata commit.
//
//	go test -run '^$' -bench BenchmarkAppend -benchtime 2000x ./actors
func BenchmarkAppend(b *testing.B) {
	for _, be := range allBackends {
		for _, c := range []struct{ parts, inflight int32 }{{1, 64}, {1, 1024}, {16, 64}, {16, 1024}} {
			parts, inflight := c.parts, c.inflight
			b.Run(fmt.Sprintf("%s/partitions=%d/inflight=%d", be.name, parts, inflight), func(b *testing.B) {
				bk := be.open(b)
				opts := testOptions("bench")
				opts.FlushBytes = 4 << 20
				opts.Linger = 5 * time.Millisecond
				opts.MaxBufferBytes = 64 << 20
				opts.NodeBufferBytes = 512 << 20
				br := startBroker(b, bk, opts)
				tp := createTopic(b, br, "bench", parts, nil)
				recs := make([]segment.Record, 16)
				for i := range recs {
					recs[i] = segment.Record{Timestamp: time.Now().UnixMilli(), Value: make([]byte, 1000)}
				}
				batch, _ := segment.BuildBatch(recs, segment.CodecNone)
				b.SetBytes(int64(len(batch)))
				lat := make([][]time.Duration, inflight)
				var n atomic.Int64
				var failed atomic.Int64
				b.ResetTimer()
				var wg sync.WaitGroup
				for w := range inflight {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := n.Add(1); i <= int64(b.N); i = n.Add(1) {
							start := time.Now()
							r, err := br.Append(context.Background(), tp, int32(i)%parts, slices.Clone(batch), -1)
							if err != nil || r.Err != nil {
								failed.Add(1)
								continue
							}
							lat[w] = append(lat[w], time.Since(start))
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				if len(all) > 0 {
					b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50_ms")
					b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99_ms")
				}
				if f := failed.Load(); f > 0 {
					b.Fatalf("%d appends failed", f)
				}
				if n, sum := histogram(b, opts, "morax_flush_bytes"); n > 0 {
					b.ReportMetric(sum/n/(1<<20), "MiB/object")
				}
			})
		}
	}
}

// BenchmarkRawPut measures the object store's raw bandwidth for 4 MiB PUTs
// with 8 concurrent uploads: the physical limit the append path is held to.
func BenchmarkRawPut(b *testing.B) {
	for _, be := range allBackends {
		b.Run(be.name, func(b *testing.B) {
			bk := be.open(b)
			data := make([]byte, 4<<20)
			b.SetBytes(int64(len(data)))
			var n atomic.Int64
			lat := make([][]time.Duration, 8)
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := n.Add(1); i <= int64(b.N); i = n.Add(1) {
						start := time.Now()
						if err := bk.objects.Put(context.Background(), fmt.Sprintf("raw/%d", i), data); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(start))
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99_ms")
			}
		})
	}
}

// histogram returns the sample count and sum of a histogram metric.
func histogram(b *testing.B, opts actors.Options, name string) (count, sum float64) {
	mfs, err := opts.Metrics.(prometheus.Gatherer).Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return float64(h.GetSampleCount()), h.GetSampleSum()
		}
	}
	return 0, 0
}
