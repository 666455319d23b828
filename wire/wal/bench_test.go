package wal_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/morax-dev/morax/persistence/segment"
	"github.com/morax-dev/morax/wire/wal/client"
	"github.com/morax-dev/morax/wire/wal/waltest"
)

// Benchmarks of the WAL API end to end: a real node on each backend, the Go
// client over loopback HTTP. Run with
//
//	source dev/.env && go test -run '^$' -bench . -benchtime 20000x ./wire/wal/
//
// (-benchtime in entries for BenchmarkAppend, reads for BenchmarkRead,
// wake-ups for BenchmarkLongPollWakeup, where 200x is plenty).

const (
	benchEntrySize = 1 << 10
	benchClients   = 16
)

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkAppend measures appends of 1 KiB entries from 16 concurrent
// clients, one request carrying 1 or 100 entries. One op is one entry, so
// ns/op is the node's cost per entry and MB/s its entry throughput.
func BenchmarkAppend(b *testing.B) {
	for _, backend := range waltest.Backends() {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend, batch), func(b *testing.B) {
				n := waltest.Start(b, waltest.Options{Backend: backend})
				ctx := context.Background()
				if err := n.Client.Create(ctx, "bench", nil); err != nil {
					b.Fatal(err)
				}
				entry := bytes.Repeat([]byte("x"), benchEntrySize)
				entries := make([][]byte, batch)
				for i := range entries {
					entries[i] = entry
				}
				var left atomic.Int64
				left.Store(int64(b.N))
				var mu sync.Mutex
				var lat []time.Duration
				b.SetBytes(benchEntrySize)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for range benchClients {
					wg.Go(func() {
						var mine []time.Duration
						for {
							k := min(left.Add(-int64(batch))+int64(batch), int64(batch))
							if k <= 0 {
								break
							}
							t0 := time.Now()
							if _, err := n.Client.Append(ctx, "bench", entries[:k]); err != nil {
								b.Error(err)
								return
							}
							mine = append(mine, time.Since(t0))
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "requests/s")
				b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
				b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
			})
		}
	}
}

// BenchmarkRead measures reads of 1 MiB pages (about 1000 entries of 1 KiB)
// by 16 concurrent clients from a log of 32 MiB, larger than the
// partition's tail cache, so most pages come through the block cache. One
// op is one read request.
func BenchmarkRead(b *testing.B) {
	const logEntries = 32 << 10
	for _, backend := range waltest.Backends() {
		b.Run(backend, func(b *testing.B) {
			n := waltest.Start(b, waltest.Options{Backend: backend})
			ctx := context.Background()
			if err := n.Client.Create(ctx, "bench", nil); err != nil {
				b.Fatal(err)
			}
			entry := bytes.Repeat([]byte("y"), benchEntrySize)
			page := make([][]byte, 512)
			for i := range page {
				page[i] = entry
			}
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := w * len(page); i < logEntries; i += 8 * len(page) {
						if _, err := n.Client.Append(ctx, "bench", page); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			var left, bytesRead, entriesRead atomic.Int64
			left.Store(int64(b.N))
			b.ResetTimer()
			start := time.Now()
			for c := range benchClients {
				wg.Go(func() {
					off := int64(c) * logEntries / benchClients
					for left.Add(-1) >= 0 {
						res, err := n.Client.Read(ctx, "bench", off, &client.ReadOptions{MaxBytes: 1 << 20})
						if err != nil {
							b.Error(err)
							return
						}
						for _, e := range res.Entries {
							bytesRead.Add(int64(len(e.Data)))
						}
						entriesRead.Add(int64(len(res.Entries)))
						off = res.Next(off)
						if off >= logEntries {
							off = 0
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(bytesRead.Load())/elapsed.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(entriesRead.Load())/elapsed.Seconds(), "entries/s")
		})
	}
}

// BenchmarkLongPollWakeup measures how long after an append is sent a
// reader long-polling at the end of the log receives it: the append's
// commit (flush, object put, metadata commit: an entry is visible only once
// durable) plus the wake-up. ack-p50 is the append's own latency, for
// comparison. One op is one append and its delivery.
func BenchmarkLongPollWakeup(b *testing.B) {
	for _, backend := range waltest.Backends() {
		b.Run(backend, func(b *testing.B) {
			n := waltest.Start(b, waltest.Options{Backend: backend})
			ctx := context.Background()
			if err := n.Client.Create(ctx, "bench", nil); err != nil {
				b.Fatal(err)
			}
			entry := [][]byte{bytes.Repeat([]byte("z"), benchEntrySize)}
			wake := make([]time.Duration, 0, b.N)
			ack := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				got := make(chan time.Time, 1)
				go func() {
					res, err := n.Client.Read(ctx, "bench", int64(i), &client.ReadOptions{Wait: 10 * time.Second})
					if err != nil || len(res.Entries) != 1 {
						b.Errorf("long poll %d: %+v %v", i, res, err)
					}
					got <- time.Now()
				}()
				// Give the read time to park; not measured.
				time.Sleep(5 * time.Millisecond)
				t0 := time.Now()
				if _, err := n.Client.Append(ctx, "bench", entry); err != nil {
					b.Fatal(err)
				}
				ack = append(ack, time.Since(t0))
				wake = append(wake, (<-got).Sub(t0))
			}
			b.StopTimer()
			slices.Sort(wake)
			slices.Sort(ack)
			b.ReportMetric(ms(percentile(wake, 50)), "wake-p50-ms")
			b.ReportMetric(ms(percentile(wake, 99)), "wake-p99-ms")
			b.ReportMetric(ms(percentile(ack, 50)), "ack-p50-ms")
		})
	}
}

// BenchmarkAppendBrokerOnly is BenchmarkAppend without HTTP: the same
// batches straight to Broker.Append, to tell the WAL layer's cost from
// the write path's.
func BenchmarkAppendBrokerOnly(b *testing.B) {
	for _, backend := range waltest.Backends() {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend, batch), func(b *testing.B) {
				n := waltest.Start(b, waltest.Options{Backend: backend})
				ctx := context.Background()
				if err := n.Client.Create(ctx, "bench", nil); err != nil {
					b.Fatal(err)
				}
				topic, err := n.Broker.Topic(ctx, "bench")
				if err != nil {
					b.Fatal(err)
				}
				entry := bytes.Repeat([]byte("x"), benchEntrySize)
				recs := make([]segment.Record, batch)
				for i := range recs {
					recs[i].Value = entry
				}
				var left atomic.Int64
				left.Store(int64(b.N))
				b.SetBytes(benchEntrySize)
				b.ResetTimer()
				var wg sync.WaitGroup
				for range benchClients {
					wg.Go(func() {
						for {
							k := min(left.Add(-int64(batch))+int64(batch), int64(batch))
							if k <= 0 {
								return
							}
							// The actor takes ownership of the batch: one per append.
							data, err := segment.BuildBatch(recs[:k], segment.CodecNone)
							if err != nil {
								b.Error(err)
								return
							}
							_, err = n.Broker.Append(ctx, topic, 0, data, -1)
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}
