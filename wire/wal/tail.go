package wal

import (
	"bufio"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
)

// tailFetchBytes bounds one fetch of a tail stream, and so the bytes a
// stream holds at once.
const tailFetchBytes = 1 << 20

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
	rctx, cancel := s.requestContext(0)
	defer cancel()
	t, err := s.topic(rctx, name)
	if err != nil {
		s.fail(ctx, "tail", err)
		return
	}
	offset := q.Offset
	if offset < 0 {
		st, err := s.b.DescribeWait(rctx, t, q.Partition)
		if err == nil {
			err = st.Err
		}
		if err != nil {
			s.fail(ctx, "tail", err)
			return
		}
		offset = st.HighWatermark
	}
	// The first fetch happens before the stream starts, so an unknown
	// partition or an offset out of range is an ordinary error response.
	fr, err := s.b.FetchWait(rctx, t, q.Partition, actors.Fetch{Offset: offset, MaxBytes: max(tailFetchBytes, s.fetchFloor(t))})
	if err == nil {
		err = fr.Err
	}
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
	ts := &tailStream{s: s, t: t, p: q.Partition, next: offset, fetchBytes: max(tailFetchBytes, s.fetchFloor(t))}
	first := fr.Batches
	// The writer runs on its own goroutine after this handler returns; it
	// must not touch ctx.
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.streams.Done()
		ts.run(w, first)
	})
}

// tailStream is one tail's state, owned by its stream writer goroutine.
type tailStream struct {
	s          *Server
	t          meta.Topic
	p          int32
	next       int64
	fetchBytes int
	recs       []segment.Record
	buf        []byte
}

// run writes events until the client goes away (a write fails), the
// server closes, or the log fails.
func (ts *tailStream) run(w *bufio.Writer, batches []byte) {
	ctx := ts.s.baseCtx
	for {
		if len(batches) > 0 {
			if !ts.writeEntries(w, batches) {
				return
			}
		}
		if ctx.Err() != nil {
			ts.end(w)
			return
		}
		asked := time.Now()
		fr, err := ts.s.b.FetchWait(ctx, ts.t, ts.p, actors.Fetch{Offset: ts.next, MaxBytes: ts.fetchBytes, MaxWait: ts.s.cfg.TailHeartbeat})
		if err != nil { // only ctx ends FetchWait: the server is closing
			ts.end(w)
			return
		}
		if fr.Err != nil {
			if errors.Is(fr.Err, actors.ErrShuttingDown) {
				ts.end(w)
				return
			}
			ts.fail(w, fr.Err)
			return
		}
		batches = fr.Batches
		if len(batches) > 0 {
			continue
		}
		// Idle: a keep-alive comment, which is also how a stream whose
		// client left finds out (the write fails).
		if _, err := w.WriteString(": keep-alive\n\n"); err != nil || w.Flush() != nil {
			return
		}
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
	err := eachRecord(batches, ts.next, &ts.recs, func(r *segment.Record) bool {
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
