package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/morax-dev/morax/internal/history"
	"github.com/morax-dev/morax/wire/wal/client"
)

// Workloads that record every operation into a history.Recorder, for the
// fault tests: the history checker, not the workload, judges the outcome.
// Each also keeps the errors a client should never see from a cluster
// whose backend is away (a non-retriable Kafka error, a WAL status other
// than 429/503/504): an outage must look like "try again", never like
// "your request is wrong".

// KafkaLog is the history log name of a Kafka partition.
func KafkaLog(topic string, partition int32) string { return fmt.Sprintf("%s/%d", topic, partition) }

// WALLogName is the history log name of a WAL log.
func WALLogName(name string) string { return "wal/" + name }

// Recorded is a running recorded workload.
type Recorded struct {
	what   string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	bad    []string // errors no outage may cause
}

func (w *Recorded) unexpected(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) < 20 {
		w.bad = append(w.bad, fmt.Sprintf(format, args...))
	}
}

// Stop ends the workload and waits for every operation's outcome (each
// is bounded by its client's timeouts). It returns the errors that no
// fault should have caused.
func (w *Recorded) Stop() []string {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.bad...)
}

// kafkaRetriable tells an error a producer may see during an outage (the
// broker's retriable codes, the client's own timeouts and retry limits
// over them, a lost connection) from one it may not.
func kafkaRetriable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	// Record timeouts, exhausted retries and connection errors are the
	// client giving up on retriable conditions.
	return true
}

// StartRecordedProducers starts producers idempotent producers (acks=all)
// writing one record every every to the partitions of topic in turn,
// recording each record as an append (acknowledged at its offset, refused
// by the full client buffer, or of unknown outcome).
func (c *Cluster) StartRecordedProducers(rec *history.Recorder, topic string, partitions int32, producers int, every time.Duration) *Recorded {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &Recorded{what: "producers", cancel: cancel}
	abort := make(chan struct{})
	c.t.Cleanup(func() { close(abort); cancel() })
	for i := range producers {
		client := 100 + i
		cl := c.kafkaClient(
			kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(5*time.Millisecond),
			kgo.ProduceRequestTimeout(5*time.Second),
			// A record waits for its partition at most this long, so an
			// outage gives the producer errors (whose outcome is unknown)
			// rather than only a long wait.
			kgo.RecordDeliveryTimeout(15*time.Second),
			kgo.MaxBufferedRecords(2000),
		)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer cl.Close()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-ctx.Done():
					fctx, fcancel := context.WithTimeout(context.Background(), 45*time.Second)
					go func() {
						select {
						case <-abort:
							fcancel()
						case <-fctx.Done():
						}
					}()
					_ = cl.Flush(fctx)
					fcancel()
					return
				case <-tick.C:
				}
				p := int32(seq % int(partitions))
				v := fmt.Sprintf("k%d-%09d", i, seq)
				h := rec.Begin(history.Op{Client: client, Kind: history.Append, Log: KafkaLog(topic, p), Values: []string{v}})
				cl.TryProduce(context.Background(), &kgo.Record{Partition: p, Value: []byte(v)}, func(r *kgo.Record, err error) {
					switch {
					case err == nil:
						h.OK(r.Offset)
					case errors.Is(err, kgo.ErrMaxBuffered):
						h.Fail(err) // never left the client
					default:
						h.Unknown(err)
						if !kafkaRetriable(err) {
							w.unexpected("produce %s/%d: non-retriable error %v", topic, p, err)
						}
					}
				})
			}
		}()
	}
	return w
}

// walRetriable tells a WAL error an outage may cause (429, 503, 504, the
// client's own timeout, a lost connection) from one it may not.
func walRetriable(err error) bool {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusGatewayTimeout
	}
	var se *client.StatusError
	if errors.As(err, &se) {
		return se.Status == http.StatusTooManyRequests || se.Status == http.StatusServiceUnavailable || se.Status == http.StatusGatewayTimeout
	}
	return true // transport errors and timeouts
}

// StartRecordedWAL starts one appender per node in via, each appending a
// batch of three entries to the WAL log name every every (after a failure,
// 100 ms later), each batch recorded as one append.
func (c *Cluster) StartRecordedWAL(rec *history.Recorder, name string, via []*Node, every time.Duration) *Recorded {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(cancel)
	w := &Recorded{what: "wal", cancel: cancel}
	for i, n := range via {
		cl, err := client.New("http://" + n.walAddr)
		if err != nil {
			c.t.Fatal(err)
		}
		id := 200 + i
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				entries := make([][]byte, 3)
				vals := make([]string, 3)
				for j := range entries {
					vals[j] = fmt.Sprintf("w%d-%07d-%d", i, seq, j)
					entries[j] = []byte(vals[j])
				}
				h := rec.Begin(history.Op{Client: id, Kind: history.Append, Log: WALLogName(name), Values: vals})
				// Not the workload's context: an append in flight when
				// the workload stops is waited for, so its outcome is
				// known.
				actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
				r, err := cl.Append(actx, name, entries)
				acancel()
				wait := every
				switch {
				case err == nil && r.Len() == 3:
					h.OK(r.Start)
				case err == nil:
					h.Unknown(fmt.Errorf("answered range %v for 3 entries", r))
					w.unexpected("WAL append to %s answered range %v for 3 entries", name, r)
				default:
					h.Unknown(err)
					if !walRetriable(err) {
						w.unexpected("WAL append to %s through %s: %v", name, n.id, err)
					}
					wait = 100 * time.Millisecond
				}
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
		}()
	}
	return w
}

// StartRecordedGroup starts a consumer group member reading topic and
// committing what each poll returned, recording every record it reads and
// every offset commit (with the group generation it was made in). Without
// recordReads only the commits are recorded.
func (c *Cluster) StartRecordedGroup(rec *history.Recorder, group, topic string, member int, recordReads bool) *Recorded {
	c.t.Helper()
	cl := c.kafkaClient(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(10*time.Second),
	)
	ctx, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(cancel)
	w := &Recorded{what: "group", cancel: cancel}
	id := 300 + member
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer cl.Close()
		for ctx.Err() == nil {
			call := rec.Now()
			fs := cl.PollFetches(ctx)
			ret := rec.Now()
			if ctx.Err() != nil {
				return
			}
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			next := map[int32]int64{}
			for _, r := range recs {
				if recordReads {
					rec.Read(id, KafkaLog(r.Topic, r.Partition), r.Offset, string(r.Value), call, ret)
				}
				next[r.Partition] = max(next[r.Partition], r.Offset+1)
			}
			_, gen := cl.GroupMetadata()
			var hs []*history.Handle
			for p, off := range next {
				hs = append(hs, rec.Begin(history.Op{Client: id, Kind: history.Commit, Group: group, Gen: gen, Log: KafkaLog(topic, p), Offset: off}))
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cl.CommitRecords(cctx, recs...)
			ccancel()
			for _, h := range hs {
				if err != nil {
					h.Unknown(err)
				} else {
					h.OK(-1)
				}
			}
			if err != nil && !kafkaRetriable(err) && !isRebalanceErr(err) {
				w.unexpected("commit %s: %v", group, err)
			}
		}
	}()
	return w
}

// isRebalanceErr is a commit refused because the group moved on to a new
// generation: normal while members come and go, not an outage symptom.
func isRebalanceErr(err error) bool {
	return errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.RebalanceInProgress) ||
		errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.FencedInstanceID)
}

// RecordFinal reads every partition of topic and every WAL log in wals
// back to its committed end and records them as the history's final
// contents.
func (c *Cluster) RecordFinal(rec *history.Recorder, topic string, partitions int32, wals ...string) {
	c.t.Helper()
	for p, cp := range c.ReadAll(topic, partitions) {
		es := make([]history.Entry, len(cp.offsets))
		for i := range cp.offsets {
			es[i] = history.Entry{Offset: cp.offsets[i], Value: cp.values[i]}
		}
		rec.Final(KafkaLog(topic, p), es)
	}
	for _, name := range wals {
		rec.Final(WALLogName(name), c.readWAL(name))
	}
}

// readWAL reads a WAL log whole through a live node.
func (c *Cluster) readWAL(name string) []history.Entry {
	t := c.t
	t.Helper()
	live := c.live()
	if len(live) == 0 {
		t.Fatal("no live node to read the WAL through")
	}
	cl, err := client.New("http://" + live[len(live)-1].walAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var all []history.Entry
	for {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := cl.Read(rctx, name, int64(len(all)), &client.ReadOptions{MaxEntries: 5000})
		rcancel()
		if err != nil {
			if walRetriable(err) && ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			t.Fatalf("WAL read %s at %d through %s: %v", name, len(all), cl.Endpoint(), err)
		}
		for _, e := range res.Entries {
			all = append(all, history.Entry{Offset: e.Index, Value: string(e.Data)})
		}
		if len(res.Entries) == 0 || int64(len(all)) >= res.EndOffset {
			return all
		}
	}
}

// CreateWAL creates the WAL log name through the first live node, waiting
// while the cluster answers with a retriable error.
func (c *Cluster) CreateWAL(name string) {
	c.t.Helper()
	c.WaitFor("create WAL log "+name, 30*time.Second, func() (bool, string) {
		live := c.live()
		if len(live) == 0 {
			return false, "no live node"
		}
		cl, err := client.New("http://" + live[0].walAddr)
		if err != nil {
			c.t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = cl.Create(ctx, name, nil)
		if err == nil || client.CodeOf(err) == client.CodeAlreadyExists {
			return true, ""
		}
		return false, err.Error()
	})
	c.OwnerOf(name, 0)
}

// String describes the workload, for logs.
func (w *Recorded) String() string { return strings.TrimSpace(w.what) }

// MeasureProduceRate produces to topic's partitions as fast as one client
// with a bounded buffer can for d and returns the acknowledged records per
// second: what the cluster sustains, for a soak to load at a fraction of.
func (c *Cluster) MeasureProduceRate(topic string, partitions int32, d time.Duration) float64 {
	c.t.Helper()
	cl := c.kafkaClient(
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(10000),
	)
	defer cl.Close()
	var acked atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	began := time.Now()
	for seq := 0; ctx.Err() == nil; seq++ {
		// Produce blocks while the buffer is full: the pace is the
		// cluster's.
		cl.Produce(ctx, &kgo.Record{Partition: int32(seq % int(partitions)), Value: fmt.Appendf(nil, "probe-%09d", seq)}, func(_ *kgo.Record, err error) {
			if err == nil {
				acked.Add(1)
			}
		})
	}
	took := time.Since(began)
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	_ = cl.Flush(fctx)
	return float64(acked.Load()) / took.Seconds()
}
