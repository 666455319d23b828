package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/morax-dev/morax/wire/wal/client"
)

// keySpace is how many distinct keys records cycle through with keys on:
// enough to spread over any partition count a benchmark uses.
const keySpace = 1024

// stats is what producers and consumers of one run count. Every field is
// atomic or guarded by its own lock: the producer and consumer goroutines
// and the progress reporter all touch it.
type stats struct {
	// base is the run's clock origin. Record timestamps are nanoseconds
	// since base, read from the monotonic clock, so end-to-end latency is
	// immune to wall-clock steps (producer and consumer share the process).
	base  time.Time
	runID uint64

	filler []byte   // the bytes every value is made of after its header
	keys   [][]byte // the key space, with keys on
	values sync.Pool

	sent          atomic.Int64 // records handed to the client
	produced      atomic.Int64 // records acknowledged
	producedBytes atomic.Int64
	consumed      atomic.Int64 // records of this run consumed
	consumedBytes atomic.Int64
	foreign       atomic.Int64 // records of other runs seen by consumers
	lastAck       atomic.Int64 // ns since base
	lastConsume   atomic.Int64

	produceLat *Histogram
	e2eLat     *Histogram
	// warmup: records stamped earlier (ns since base) stay out of the
	// latency histograms.
	warmup int64

	produceErrs errorCounter
	consumeErrs errorCounter
}

func newStats(recordSize int, warmup time.Duration) *stats {
	seed := rand.Uint64()
	s := &stats{
		base:       time.Now(),
		runID:      seed | 1, // never 0, so a zeroed value is never ours
		produceLat: NewHistogram(),
		e2eLat:     NewHistogram(),
		warmup:     int64(warmup),
	}
	// Pseudo-random filler: a codec cannot shrink it much, so compressed
	// runs are not flattered by a value made of zeros.
	r := rand.New(rand.NewPCG(seed, 0x6d6f726178))
	s.filler = make([]byte, recordSize)
	for i := range s.filler {
		s.filler[i] = byte(r.Uint32())
	}
	s.keys = make([][]byte, keySpace)
	for i := range s.keys {
		s.keys[i] = fmt.Appendf(nil, "key-%04d", i)
	}
	s.values.New = func() any {
		b := make([]byte, recordSize)
		copy(b, s.filler)
		return &b
	}
	return s
}

// now is the run clock: nanoseconds since base.
func (s *stats) now() int64 { return int64(time.Since(s.base)) }

// stamp writes the header into v and returns the timestamp written.
func (s *stats) stamp(v []byte) int64 {
	ts := s.now()
	binary.BigEndian.PutUint64(v[0:8], s.runID)
	binary.BigEndian.PutUint64(v[8:16], uint64(ts))
	return ts
}

// newValue returns a stamped value from the pool; give it back with
// putValue once the client is done with it.
func (s *stats) newValue() ([]byte, int64) {
	b := *s.values.Get().(*[]byte)
	return b, s.stamp(b)
}

func (s *stats) putValue(b []byte) {
	if cap(b) >= len(s.filler) {
		b = b[:len(s.filler)]
		s.values.Put(&b)
	}
}

// acked counts n records of size bytes each acknowledged, sent at ts.
func (s *stats) acked(ts int64, n int, bytes int64) {
	now := s.now()
	if ts >= s.warmup {
		s.produceLat.RecordN(time.Duration(now-ts), n)
	}
	s.produced.Add(int64(n))
	s.producedBytes.Add(bytes)
	storeMax(&s.lastAck, now)
}

// gotValue counts one consumed record, if it belongs to this run.
func (s *stats) gotValue(v []byte, keyLen int) {
	if len(v) < headerSize || binary.BigEndian.Uint64(v[0:8]) != s.runID {
		s.foreign.Add(1)
		return
	}
	now := s.now()
	ts := int64(binary.BigEndian.Uint64(v[8:16]))
	if ts >= s.warmup {
		s.e2eLat.Record(time.Duration(now - ts))
	}
	s.consumed.Add(1)
	s.consumedBytes.Add(int64(len(v) + keyLen))
	storeMax(&s.lastConsume, now)
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// errorCounter counts errors by kind and keeps the first message of each,
// so a summary can say what went wrong without logging every failure.
type errorCounter struct {
	mu     sync.Mutex
	counts map[string]int64 // guarded by mu
	sample map[string]string
	total  atomic.Int64
}

func (e *errorCounter) add(err error, n int) {
	kind := ErrorKind(err)
	e.total.Add(int64(n))
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts == nil {
		e.counts, e.sample = map[string]int64{}, map[string]string{}
	}
	if _, ok := e.sample[kind]; !ok {
		e.sample[kind] = err.Error()
	}
	e.counts[kind] += int64(n)
}

// list returns the counts in kind order, tagged with side.
func (e *errorCounter) list(side string) []ErrorCount {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]ErrorCount, 0, len(e.counts))
	for k, n := range e.counts {
		out = append(out, ErrorCount{Side: side, Kind: k, Count: n, Example: e.sample[k]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// ErrorKind names the kind of a produce or consume error, for the summary:
// the Kafka error code name, the WAL API error code, or a transport class.
func ErrorKind(err error) string {
	var ke *kerr.Error
	var se *client.StatusError
	var ne net.Error
	switch {
	case errors.As(err, &ke):
		return "kafka " + ke.Message
	case client.CodeOf(err) != "":
		return "wal " + client.CodeOf(err)
	case errors.As(err, &se):
		return fmt.Sprintf("http %d", se.Status)
	case errors.Is(err, kgo.ErrRecordTimeout):
		return "record delivery timeout"
	case errors.Is(err, kgo.ErrRecordRetries):
		return "record retries exhausted"
	case errors.Is(err, kgo.ErrClientClosed):
		return "client closed before acknowledgement"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne):
		return "network"
	}
	return "other"
}

// pacer spaces out records to a rate: the n-th record is due n/rate
// seconds after the start, so a producer that falls behind catches up
// without bursting past the average.
type pacer struct {
	start time.Time
	rate  float64 // records per second; 0 is unlimited
	n     int64
}

func newPacer(rate float64) *pacer { return &pacer{start: time.Now(), rate: rate} }

// wait blocks until n more records are due, or ctx ends.
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	due := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
	p.n += int64(n)
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sleepCtx pauses for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
