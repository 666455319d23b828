package wal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
)

// maxFetchesPerRead bounds the fetches one read makes to fill its answer
// (a fetch may return less than asked: batch boundaries, control batches).
const maxFetchesPerRead = 16

// entryOverhead is what an entry counts against a read's max_bytes on top
// of its data, so a log of empty entries cannot make a read unbounded.
const entryOverhead = 16

// minFetchBytes is the least a read asks one fetch for. The reader's own
// limits count entry bytes and it stops at them itself; asking for a little
// more than the entries left saves a round trip when batch headers and
// record framing make batches larger than their entries.
const minFetchBytes = 64 << 10

// fetchFloor is the least a fetch of t asks for: the log's largest batch,
// which a fetch returns whole anyway, or minFetchBytes.
func (s *Server) fetchFloor(t actors.Topic) int {
	return max(minFetchBytes, s.maxBatch(t))
}

// handleRead serves POST /v1/read.
func (s *Server) handleRead(ctx *fasthttp.RequestCtx) {
	req, err := decodeRead(ctx.PostBody())
	if err != nil {
		s.fail(ctx, "read", err)
		return
	}
	wait := s.cfg.MaxWait
	if req.WaitMs < int64(wait/time.Millisecond) {
		wait = time.Duration(req.WaitMs) * time.Millisecond
	}
	rctx, cancel := s.requestContext(ctx, wait)
	defer cancel()
	t, err := s.topic(rctx, req.Name)
	if err != nil {
		s.fail(ctx, "read", err)
		return
	}
	// The wait counts from the request's arrival.
	wait = max(0, min(wait, time.Until(requestStart(ctx).Add(wait))))
	maxBytes := req.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultReadBytes
	}
	maxBytes = min(maxBytes, max(s.cfg.MaxBodyBytes, DefaultReadBytes))
	maxEntries := req.MaxEntries
	if maxEntries == 0 {
		maxEntries = 1<<31 - 1
	}
	body := make([]byte, 0, 256)
	body = append(body, `{"entries":[`...)
	r := reader{s: s, t: t, p: req.Partition, next: req.Offset, maxEntries: maxEntries, maxBytes: maxBytes, floor: s.fetchFloor(t), out: body}
	if err := r.read(rctx, wait); err != nil {
		s.fail(ctx, "read", s.withBounds(rctx, t, req.Partition, err))
		return
	}
	body = append(r.out, `],"end_offset":`...)
	body = strconv.AppendInt(body, r.end, 10)
	writeJSON(ctx, append(body, '}'))
}

// reader collects the entries of one read, encoded as JSON array elements.
type reader struct {
	s    *Server
	t    actors.Topic
	p    int32
	next int64 // offset of the next entry wanted
	// maxEntries and maxBytes bound the answer, except that the first entry
	// is returned whatever its size, so a reader can never get stuck.
	maxEntries, maxBytes int
	n, bytes             int
	stopped              bool  // the next entry did not fit
	floor                int   // the least a fetch asks for (fetchFloor)
	end                  int64 // the log's end (high watermark) as last fetched
	out                  []byte
}

// full reports whether the answer has reached a limit.
func (r *reader) full() bool { return r.stopped || r.n >= r.maxEntries || r.bytes >= r.maxBytes }

// read fetches until the limits are reached or the log's end. Only the
// first fetch may park (wait), and only if the read starts at the end.
func (r *reader) read(ctx context.Context, wait time.Duration) error {
	for i := range maxFetchesPerRead {
		f := actors.Fetch{Offset: r.next, MaxBytes: max(r.maxBytes-r.bytes, r.floor)}
		if i == 0 {
			f.MaxWait = wait
		}
		fr, err := r.s.b.Fetch(ctx, r.t, r.p, f)
		if err != nil {
			if i > 0 {
				return nil // answer with what the earlier fetches found
			}
			return err
		}
		r.end = fr.HighWatermark
		before := r.next
		if err := r.add(fr.Batches); err != nil {
			if r.n > 0 {
				return nil
			}
			return err
		}
		if r.full() || r.next >= r.end || len(fr.Batches) == 0 || r.next == before {
			return nil
		}
	}
	return nil
}

// add appends the records of batches at or after r.next, until full.
func (r *reader) add(batches []byte) error {
	return eachRecord(batches, r.next, r.s.b.Options().MaxDecompressedBatchBytes, func(rec *segment.Record) bool {
		size := len(rec.Value) + len(rec.Key) + entryOverhead
		if r.n >= r.maxEntries || (r.n > 0 && r.bytes+size > r.maxBytes) {
			r.stopped = true
			return false
		}
		if r.n > 0 {
			r.out = append(r.out, ',')
		}
		r.out = appendEntryJSON(r.out, rec)
		r.n++
		r.bytes += size
		r.next = rec.Offset + 1
		return true
	}, func(end int64) {
		// A batch with nothing for the reader (control batches, records
		// below the offset) still moves the read past it.
		if !r.full() {
			r.next = max(r.next, end)
		}
	})
}

// eachRecord calls fn for every data record of the concatenated batches
// whose offset is at least from, in order, until fn returns false. skipped
// is called with the end offset of every batch fn saw the end of, so the
// caller can move past batches without data records (Kafka transaction
// markers). A compressed batch is decompressed as a stream, never past
// limit bytes, and the record fn gets is valid only until it returns: a
// stored batch that expands past the bound (a compression bomb accepted
// before appends were checked) fails this read without costing more.
func eachRecord(batches []byte, from int64, limit int, fn func(*segment.Record) bool, skipped func(end int64)) error {
	for len(batches) > 0 {
		h, err := segment.ParseHeader(batches)
		if err != nil {
			return fmt.Errorf("stored batch: %w", err)
		}
		size := h.Size()
		if size > len(batches) || size < segment.HeaderSize {
			return fmt.Errorf("stored batch of %d bytes, %d left: %w", size, len(batches), segment.ErrTruncated)
		}
		batch := batches[:size]
		batches = batches[size:]
		end := h.LastOffset() + 1
		if h.Control() || end <= from {
			skipped(end)
			continue
		}
		stopped := false
		err = segment.EachRecord(batch, limit, func(rec *segment.Record) bool {
			if rec.Offset < from {
				return true
			}
			stopped = !fn(rec)
			return !stopped
		})
		if err != nil {
			return fmt.Errorf("stored batch at offset %d: %w", h.BaseOffset, err)
		}
		if stopped {
			return nil
		}
		skipped(end)
	}
	return nil
}

// withBounds adds the log's start and end to an OffsetOutOfRange error, so
// the client can tell where to read instead.
func (s *Server) withBounds(ctx context.Context, t actors.Topic, p int32, err error) error {
	if !errors.Is(err, actors.ErrOffsetOutOfRange) {
		return err
	}
	st, derr := s.b.Describe(ctx, t, p)
	if derr != nil {
		return err
	}
	return &rangeError{err: err, start: st.LogStartOffset, end: st.HighWatermark}
}

// rangeError is an OffsetOutOfRange with the log's bounds.
type rangeError struct {
	err        error
	start, end int64
}

func (e *rangeError) Error() string { return e.err.Error() }

// Unwrap keeps errors.Is(err, actors.ErrOffsetOutOfRange) true.
func (e *rangeError) Unwrap() error { return e.err }
