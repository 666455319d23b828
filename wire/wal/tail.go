package wal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/segment"
	"github.com/morax-dev/morax/wire/wal/walpb"
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
		var re *remoteError
		if errors.As(err, &re) {
			writeRelayed(ctx, re.status, re.contentType, re.body) // the owner's answer, as it gave it
			return
		}
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
// A tail follows its partition around the cluster: each poll asks who owns
// the partition now, fetches from the local partition actor when that is
// this node, and otherwise forwards a long-poll read to the owner and turns
// the entries it returns into the same events. A poll refused because the
// partition moved is retried, with keep-alives still going out, until
// Config.RequestTimeout passes without success.
type tailStream struct {
	s          *Server
	t          meta.Topic
	p          int32
	next       int64
	fetchBytes int
	recs       []segment.Record
	buf        []byte
}

// tailChunk is what one poll found: record batches from the local
// partition actor, or entries read from the owner, or neither when idle.
type tailChunk struct {
	batches []byte
	entries []remoteEntry
}

func (c tailChunk) empty() bool { return len(c.batches) == 0 && len(c.entries) == 0 }

// start finds where the stream begins (offset, or the log's end when
// offset is negative) and makes the first poll, without waiting. In a
// cluster, a moved refusal is retried until ctx ends.
func (ts *tailStream) start(ctx context.Context, offset int64) (tailChunk, error) {
	backoff := retryBackoffMin
	for {
		c, err := ts.first(ctx, offset)
		if err == nil || !ts.follow(err) {
			return c, err
		}
		if d, ok := ctx.Deadline(); ok && time.Now().Add(backoff).After(d) {
			return c, err
		}
		if !ts.s.pause(backoff) {
			return c, errClosing
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

// first makes start's one attempt.
func (ts *tailStream) first(ctx context.Context, offset int64) (tailChunk, error) {
	owner, self := ts.s.b.PartitionOwner(ts.t.ID, ts.p)
	if offset < 0 {
		var err error
		if offset, err = ts.logEnd(ctx, owner, self); err != nil {
			return tailChunk{}, err
		}
	}
	ts.next = offset
	return ts.poll(ctx, owner, self, 0)
}

// follow reports whether a poll that failed with err should be retried in
// the hope that the partition's new owner answers: only in a cluster, since
// a single node has nowhere else to look.
func (ts *tailStream) follow(err error) bool {
	return ts.s.b.ClusterView() != nil && moved("tail", err) && !errors.Is(err, errClosing) && ts.s.baseCtx.Err() == nil
}

// logEnd is the partition's end offset (high watermark), asked of its
// owner.
func (ts *tailStream) logEnd(ctx context.Context, owner meta.Node, self bool) (int64, error) {
	if self {
		st, err := ts.s.b.Describe(ctx, ts.t, ts.p)
		return st.HighWatermark, err
	}
	uri := logsPrefix + url.PathEscape(ts.t.Name) + "?partition=" + strconv.FormatInt(int64(ts.p), 10)
	res, err := ts.forward(ctx, owner, fasthttp.MethodGet, uri, nil, 0)
	if err != nil {
		return 0, err
	}
	end, err := decodeEndOffset(res.GetBody())
	if err != nil {
		return 0, fmt.Errorf("describe %s/%d on node %s: %w", ts.t.Name, ts.p, owner.ID, err)
	}
	return end, nil
}

// poll fetches what follows ts.next, waiting up to wait for it: from the
// local partition actor when this node owns the partition, else by a read
// forwarded to the owner.
func (ts *tailStream) poll(ctx context.Context, owner meta.Node, self bool, wait time.Duration) (tailChunk, error) {
	if self {
		fr, err := ts.s.b.Fetch(ctx, ts.t, ts.p, actors.Fetch{Offset: ts.next, MaxBytes: ts.fetchBytes, MaxWait: wait})
		return tailChunk{batches: fr.Batches}, err
	}
	body, err := json.Marshal(struct {
		Name      string `json:"name"`
		Offset    int64  `json:"offset"`
		MaxBytes  int    `json:"max_bytes"`
		WaitMs    int64  `json:"wait_ms"`
		Partition int32  `json:"partition"`
	}{ts.t.Name, ts.next, ts.fetchBytes, wait.Milliseconds(), ts.p})
	if err != nil {
		return tailChunk{}, fmt.Errorf("encode read: %w", err)
	}
	res, err := ts.forward(ctx, owner, fasthttp.MethodPost, "/v1/read", body, wait)
	if err != nil {
		return tailChunk{}, err
	}
	rr, err := decodeReadResponse(res.GetBody())
	if err != nil {
		return tailChunk{}, fmt.Errorf("read %s/%d on node %s: %w", ts.t.Name, ts.p, owner.ID, err)
	}
	return tailChunk{entries: rr.Entries}, nil
}

// forward sends one request for the tail's partition to owner and returns
// its successful answer; an error answer becomes a *remoteError.
func (ts *tailStream) forward(ctx context.Context, owner meta.Node, method, uri string, body []byte, wait time.Duration) (*walpb.ForwardResponse, error) {
	deadline := time.Now().Add(ts.s.cfg.RequestTimeout + wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	env := &walpb.ForwardRequest{Method: method, RequestUri: uri, Body: body, TimeoutNanos: int64(max(time.Until(deadline), 0)), Hops: 1, OriginNode: ts.s.b.NodeID()}
	if body != nil {
		env.ContentType = contentTypeJSON
	}
	res, err := ts.s.send(owner, ts.t, ts.p, env, deadline, false)
	if err != nil {
		return nil, err
	}
	if res.GetStatus() != fasthttp.StatusOK {
		return nil, &remoteError{status: int(res.GetStatus()), contentType: res.GetContentType(), body: res.GetBody()}
	}
	return res, nil
}

// run writes events until the client goes away (a write fails), the
// server closes, or the log fails.
func (ts *tailStream) run(w *bufio.Writer, c tailChunk) {
	ctx := ts.s.baseCtx
	heartbeat := ts.s.cfg.TailHeartbeat
	lastWrite := time.Now()
	var failingSince time.Time
	backoff := retryBackoffMin
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
		owner, self := ts.s.b.PartitionOwner(ts.t.ID, ts.p)
		var err error
		c, err = ts.poll(ctx, owner, self, heartbeat)
		switch {
		case err == nil:
			failingSince, backoff = time.Time{}, retryBackoffMin
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
			backoff = min(2*backoff, retryBackoffMax)
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
	if len(c.batches) > 0 {
		return ts.writeEntries(w, c.batches)
	}
	return ts.writeRemote(w, c.entries)
}

// writeRemote writes entries read from the owner as the events
// writeEntries would have made of them, flushing as it goes. Entries before
// ts.next (there should be none) are skipped, so an owner's answer can
// never make the stream go back.
func (ts *tailStream) writeRemote(w *bufio.Writer, entries []remoteEntry) bool {
	ts.buf = ts.buf[:0]
	for _, e := range entries {
		if e.Index < ts.next {
			continue
		}
		ts.buf = append(ts.buf, "id: "...)
		ts.buf = strconv.AppendInt(ts.buf, e.Index, 10)
		ts.buf = append(ts.buf, "\ndata: "...)
		ts.buf = append(ts.buf, e.JSON...)
		ts.buf = append(ts.buf, "\n\n"...)
		ts.next = e.Index + 1
		if len(ts.buf) >= tailFlushBytes {
			if _, err := w.Write(ts.buf); err != nil || w.Flush() != nil {
				return false
			}
			ts.buf = ts.buf[:0]
		}
	}
	if _, err := w.Write(ts.buf); err != nil || w.Flush() != nil {
		return false
	}
	return true
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
	if re := (*remoteError)(nil); !errors.As(err, &re) {
		err = ts.s.withBounds(ctx, ts.t, ts.p, err) // the owner's error has them already
	}
	e := classify(err)
	e.inStream = true
	if e.internal && e.status >= 500 {
		ts.s.log.Warn("WAL tail stream failed", "log", ts.t.Name, "err", err)
	}
	buf := append([]byte("event: error\ndata: "), appendErrorJSON(nil, e)...)
	_, _ = w.Write(append(buf, "\n\n"...))
	_ = w.Flush()
}
