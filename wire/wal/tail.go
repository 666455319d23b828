package wal

import (
	"bufio"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/segment"
)

// tailFetchBytes bounds one fetch of a tail stream, and so the bytes a
// stream holds at once.
const tailFetchBytes = 1 << 20

// tailBackoffMin and tailBackoffMax bound the pause before a tail polls
// again a partition it found moving.
const (
	tailBackoffMin = 25 * time.Millisecond
	tailBackoffMax = 500 * time.Millisecond
)

// tailFlushBytes is how many encoded events a stream buffers before it
// flushes mid-fetch.
const tailFlushBytes = 64 << 10

// handleTail serves GET /v1/logs/{name}/tail?offset=N&partition=P as
// server-sent events:
//
//	id: 5
//	data: {"index":5,"data":"..."}
//
// one event per entry as it commits; a ": keep-alive" comment when idle; and
// a last "event: end" when the node shuts down or "event: error" (data
// {"code","message"}) when the log fails, e.g. is deleted. Without an
// offset the stream starts at the log's end, or after Last-Event-ID.
func (s *Server) handleTail(ctx *fasthttp.RequestCtx, name string) {
	if err := checkName(name); err != nil {
		s.fail(ctx, "tail", err)
		return
	}
	q, err := decodeTail(ctx.QueryArgs(), ctx.Request.Header.Peek("Last-Event-ID"))
	if err != nil {
		s.fail(ctx, "tail", err)
		return
	}
	rctx, cancel := s.requestContext(ctx, 0)
	defer cancel()
	t, err := s.topic(rctx, name)
	if err != nil {
		s.fail(ctx, "tail", err)
		return
	}
	ts := &tailStream{s: s, t: t, p: q.Partition, fetchBytes: max(tailFetchBytes, s.fetchFloor(t))}
	// The first fetch happens before the stream starts, so an unknown
	// partition or an offset out of range is an ordinary error response.
	first, err := ts.start(rctx, q.Offset)
	if err != nil {
		s.fail(ctx, "tail", s.withBounds(rctx, t, q.Partition, err))
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.fail(ctx, "tail", errClosing)
		return
	}
	s.streams.Add(1)
	s.mu.Unlock()
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	// Tell buffering proxies (nginx) to pass events through at once.
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	// The writer runs on its own goroutine after this handler returns; it
	// must not touch ctx.
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.streams.Done()
		ts.run(w, first)
	})
}

// tailStream is one tail's state, owned by its stream writer goroutine
// once the stream starts.
//
// A tail follows its partition around the cluster: each poll is a
// long-poll Broker.Fetch, which reaches the partition on this node or on
// the one that owns it and follows it while it moves, for up to a
// heartbeat per poll. A poll that still finds it moving is retried, with
// keep-alives going out meanwhile, until Config.RequestTimeout passes
// without success.
type tailStream struct {
	s          *Server
	t          actors.Topic
	p          int32
	next       int64
	fetchBytes int
	buf        []byte
}

// tailChunk is what one poll found: record batches, none when idle.
type tailChunk struct {
	batches []byte
}

func (c tailChunk) empty() bool { return len(c.batches) == 0 }

// start finds where the stream begins (offset, or the log's end when
// offset is negative) and makes the first poll, without waiting. In a
// cluster, the broker follows a moving partition until ctx ends.
func (ts *tailStream) start(ctx context.Context, offset int64) (tailChunk, error) {
	if offset < 0 {
		st, err := ts.s.b.Describe(ctx, ts.t, ts.p)
		if err != nil {
			return tailChunk{}, err
		}
		offset = st.HighWatermark
	}
	ts.next = offset
	return ts.poll(ctx, 0)
}

// follow reports whether a poll that failed with err should be retried:
// it ran out of time (a poll's time is short), or, in a cluster, the
// partition is moving and its new owner may answer the next one.
func (ts *tailStream) follow(err error) bool {
	if ts.s.baseCtx.Err() != nil || errors.Is(err, errClosing) {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || (ts.s.b.ClusterView() != nil && moved("tail", err))
}

// poll fetches what follows ts.next from the partition wherever it lives,
// waiting up to wait for it.
func (ts *tailStream) poll(ctx context.Context, wait time.Duration) (tailChunk, error) {
	fr, err := ts.s.b.Fetch(ctx, ts.t, ts.p, actors.Fetch{Offset: ts.next, MaxBytes: ts.fetchBytes, MaxWait: wait})
	return tailChunk{batches: fr.Batches}, err
}

// run writes events until the client goes away (a write fails), the
// server closes, or the log fails.
func (ts *tailStream) run(w *bufio.Writer, c tailChunk) {
	ctx := ts.s.baseCtx
	heartbeat := ts.s.cfg.TailHeartbeat
	lastWrite := time.Now()
	var failingSince time.Time
	backoff := tailBackoffMin
	for {
		if !c.empty() {
			if !ts.write(w, c) {
				return
			}
			lastWrite = time.Now()
		}
		if ctx.Err() != nil {
			ts.end(w)
			return
		}
		asked := time.Now()
		_, self := ts.s.b.PartitionOwner(ts.t.ID, ts.p)
		// A poll may spend a heartbeat beyond its wait following a moving
		// partition; then this loop sends a keep-alive and polls again.
		pctx, cancel := context.WithTimeout(ctx, 2*heartbeat)
		var err error
		c, err = ts.poll(pctx, heartbeat)
		cancel()
		switch {
		case err == nil:
			failingSince, backoff = time.Time{}, tailBackoffMin
			if !c.empty() {
				continue
			}
		case ctx.Err() != nil, errors.Is(err, actors.ErrShuttingDown) && self:
			ts.end(w) // this node is stopping
			return
		case ts.follow(err):
			if failingSince.IsZero() {
				failingSince = time.Now()
			} else if time.Since(failingSince) > ts.s.cfg.RequestTimeout {
				ts.fail(w, err)
				return
			}
			if time.Since(lastWrite) >= heartbeat {
				if !ts.keepAlive(w) {
					return
				}
				lastWrite = time.Now()
			}
			c = tailChunk{}
			if !ts.s.pause(backoff) {
				ts.end(w)
				return
			}
			backoff = min(2*backoff, tailBackoffMax)
			continue
		default:
			ts.fail(w, err)
			return
		}
		// Idle: a keep-alive comment, which is also how a stream whose
		// client left finds out (the write fails).
		if !ts.keepAlive(w) {
			return
		}
		lastWrite = time.Now()
		// A fetch that came back empty at once (rather than after its wait)
		// must not turn this loop into a spin.
		if time.Since(asked) < 10*time.Millisecond {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// keepAlive writes a keep-alive comment; it reports whether the client is
// still there.
func (ts *tailStream) keepAlive(w *bufio.Writer) bool {
	_, err := w.WriteString(": keep-alive\n\n")
	return err == nil && w.Flush() == nil
}

// write writes the entries of c; it reports whether the client is still
// there and the stream goes on.
func (ts *tailStream) write(w *bufio.Writer, c tailChunk) bool {
	return ts.writeEntries(w, c.batches)
}

// writeEntries writes the entries of batches from ts.next on, flushing as
// it goes. It reports whether the client is still there.
func (ts *tailStream) writeEntries(w *bufio.Writer, batches []byte) bool {
	ts.buf = ts.buf[:0]
	ok := true
	flush := func() {
		if _, err := w.Write(ts.buf); err != nil || w.Flush() != nil {
			ok = false
		}
		ts.buf = ts.buf[:0]
	}
	err := eachRecord(batches, ts.next, ts.s.b.Options().MaxDecompressedBatchBytes, func(r *segment.Record) bool {
		ts.buf = append(ts.buf, "id: "...)
		ts.buf = strconv.AppendInt(ts.buf, r.Offset, 10)
		ts.buf = append(ts.buf, "\ndata: "...)
		ts.buf = appendEntryJSON(ts.buf, r)
		ts.buf = append(ts.buf, "\n\n"...)
		ts.next = r.Offset + 1
		if len(ts.buf) >= tailFlushBytes {
			flush()
		}
		return ok
	}, func(end int64) { ts.next = max(ts.next, end) })
	if !ok {
		return false
	}
	flush()
	if !ok {
		return false
	}
	if err != nil {
		ts.fail(w, err)
		return false
	}
	return true
}

// end tells the client the stream ends on purpose (the node is stopping).
func (ts *tailStream) end(w *bufio.Writer) {
	_, _ = w.WriteString("event: end\ndata: {\"reason\":\"shutdown\"}\n\n")
	_ = w.Flush()
}

// fail ends the stream with an error event shaped like an error response.
func (ts *tailStream) fail(w *bufio.Writer, err error) {
	ctx, cancel := context.WithTimeout(ts.s.baseCtx, ts.s.cfg.RequestTimeout)
	defer cancel()
	e := classify(ts.s.withBounds(ctx, ts.t, ts.p, err))
	e.inStream = true
	if e.internal && e.status >= 500 {
		ts.s.log.Warn("WAL tail stream failed", "log", ts.t.Name, "err", err)
	}
	buf := append([]byte("event: error\ndata: "), appendErrorJSON(nil, e)...)
	_, _ = w.Write(append(buf, "\n\n"...))
	_ = w.Flush()
}
