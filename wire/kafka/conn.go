package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/morax-dev/morax/actors"
)

// A connection runs as three parts:
//
//   - the read loop (a goroutine) reads frames, decodes them and calls each
//     request's handler, in request order, numbering requests as it goes;
//   - the connection actor owns the ordering and flow state: handlers'
//     responses arrive in its mailbox in any order, and it releases them to
//     the writer strictly by request number, parking early ones in a small
//     map; it counts the requests finished (written, or skipped for acks=0
//     produce) and publishes that count;
//   - the write loop (a goroutine) encodes and writes what the actor
//     released, flushing when it runs out of work, and tells the actor what
//     it wrote.
//
// The read loop dispatches a request only while fewer than MaxInflight
// requests (and maxInflightFetches fetches) are unfinished and fewer than
// MaxInflightResponseBytes of encoded responses are unwritten; when the
// published counts say it is at a bound, it asks the actor to wake it
// once a response is finished. So the actor's mailbox and the writer's
// queue are bounded by MaxInflight and never block a handler, the memory a
// client that does not read can pin is bounded in bytes (however large
// each response is: a Metadata over every topic grows with the topics),
// and a handler answering twice is caught by the actor (the request number
// is already past), not by a guard in every respond func.
//
// Responses are encoded by the respond func, on the handler's goroutine,
// so their size is known before they are queued and the Go values (many
// times the bytes, for a large Metadata) are garbage at once.
//
// An idle connection holds no buffers: the read loop waits for a request's
// first byte with a one-byte read of its own, borrows a read buffer from a
// pool only while bytes are buffered, and the writer gathers queued frames
// into one vectored write instead of copying them into a buffer.

// protocolErrorDrain bounds how long a connection that sent a bad frame
// keeps waiting for the responses it is still owed before it is closed.
const protocolErrorDrain = 30 * time.Second

// maxInflightFetches bounds the fetches one connection may have awaiting
// their responses, since each may hold up to maxFetchResponseBytes. Clients
// keep one fetch in flight per broker, so only abuse waits on this.
const maxInflightFetches = 4

// readBufferBytes sizes the read buffers connections borrow while they
// read requests; a frame body larger than what is buffered is read straight
// into the frame.
const readBufferBytes = 16 << 10

// readBuffers holds the read buffers of connections that are not reading.
var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferBytes) }}

// maxWriteBatch bounds the frames gathered into one vectored write.
const maxWriteBatch = 64

type conn struct {
	s   *Server
	nc  net.Conn
	id  string
	log *slog.Logger
	// owner is the connection actor's mailbox.
	owner *actors.Owner

	// ctx ends when the connection is finished or aborted; handlers get it
	// through requestContext.
	ctx    context.Context
	cancel context.CancelFunc

	// done and fetchesDone count the requests and fetches finished; only
	// the connection actor writes them, the read loop reads them.
	done        atomic.Uint64
	fetchesDone atomic.Uint64
	// answeredBytes counts the bytes of every response encoded so far; the
	// respond funcs add to it before they hand the frame to the actor, so
	// the read loop sees a response's size as soon as its handler answered
	// (a Metadata answered inside dispatch counts before the next read).
	// writtenBytes counts those written or dropped; only the actor writes
	// it. Their difference is what the connection holds unsent.
	answeredBytes atomic.Int64
	writtenBytes  atomic.Int64
	// reservedBytes is what the requests dispatched and not yet answered
	// are expected to answer with (see charge): a handler may answer long
	// after the read loop moved on, and without this a burst of pipelined
	// requests would all be dispatched before the first answer is counted.
	reservedBytes atomic.Int64
	// sizes holds, by API key, the largest response this connection was
	// sent, which is what the next request of that key is charged.
	sizesMu sync.Mutex
	sizes   map[int16]int64
	// first is the byte the read loop waited for, given back to the read
	// buffer ahead of the socket (see firstByte).
	first firstByte

	out      chan outFrame
	stopRead chan struct{} // closed by drain
	stopOnce sync.Once
}

// outFrame is a response released to the writer, in request order.
type outFrame struct {
	frame []byte
	fetch bool
}

// Messages to the connection actor.
type (
	// answered carries a handler's encoded response (nil: nothing to
	// write), already counted in conn.answeredBytes.
	answered struct {
		seq      uint64
		frame    []byte
		api      string
		received time.Time
		fetch    bool
	}
	// written says the writer finished n frames of bytes bytes, fetches of
	// them fetches (written, or dropped after a write error).
	written struct {
		n, fetches uint64
		bytes      int64
	}
	// awaitCredit asks to be woken (wake closed) once fewer than
	// MaxInflight requests are unfinished with seq dispatched, and, for a
	// fetch, fewer than maxInflightFetches fetches.
	awaitCredit struct {
		seq, fetches uint64
		fetch        bool
		wake         chan struct{}
	}
	// readerStopped says the read loop dispatched its last request: seq
	// numbers below total were handed out. err is the protocol error that
	// stopped it, if any.
	readerStopped struct {
		total uint64
		err   error
		// peerGone means the client hung up (or the socket failed): the
		// responses owed can no longer be delivered, so they are dropped
		// and the connection closes at once, as Kafka does.
		peerGone bool
	}
	// drainExpired says a bad connection took too long to drain.
	drainExpired struct{}
	// abortConn drops whatever is still owed and closes the connection.
	abortConn struct{}
	// connFinished says the writer is done: the actor closes its mailbox.
	connFinished struct{}
)

func newConn(s *Server, nc net.Conn, seq uint64) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	id := nc.RemoteAddr().String() + "#" + strconv.FormatUint(seq, 10)
	return &conn{
		s:        s,
		nc:       nc,
		id:       id,
		log:      s.log.With("conn", id),
		ctx:      ctx,
		cancel:   cancel,
		out:      make(chan outFrame, s.cfg.MaxInflight),
		stopRead: make(chan struct{}),
	}
}

// start spawns the actor and both loops.
func (c *conn) start() error {
	state := &connActor{c: c, parked: map[uint64]*answered{}}
	// The producer runs inside the spawn, before the actor handles a
	// message and before either loop starts, so c.owner is set for all.
	if _, err := c.s.broker.SpawnOwner(c.s.connKind, "kafka-conn-"+c.id, func(o *actors.Owner) actor.Actor {
		c.owner = o
		return state
	}); err != nil {
		return fmt.Errorf("kafka connection %s: %w", c.id, err)
	}
	go c.writeLoop()
	go c.readLoop()
	return nil
}

// send delivers msg to the connection actor; once the connection is
// finished (the actor closed its mailbox) it is dropped.
func (c *conn) send(msg any) { c.owner.Tell(msg) }

// drain stops reading new requests; the responses owed are still written
// before the connection closes.
func (c *conn) drain() {
	c.stopOnce.Do(func() { close(c.stopRead) })
	// Unblock a read in progress; the read loop sees stopRead.
	_ = c.nc.SetReadDeadline(time.Now())
}

// abort closes the connection at once.
func (c *conn) abort() {
	c.drain()
	c.cancel()
	_ = c.nc.Close()
	c.send(abortConn{})
}

// stopping reports whether drain was called.
func (c *conn) stopping() bool {
	select {
	case <-c.stopRead:
		return true
	default:
		return false
	}
}

// readLoop reads and dispatches requests until the peer hangs up, a
// protocol error, the idle timeout, or drain.
func (c *conn) readLoop() {
	var seq, fetches uint64
	var stopErr error
	peerGone := false
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("kafka request handler panicked; closing connection", "panic", p)
			stopErr = fmt.Errorf("handler panic: %v", p)
			c.abort()
		}
		c.send(&readerStopped{total: seq, err: stopErr, peerGone: peerGone})
	}()
	// br is a pooled read buffer, held only while it holds bytes.
	var br *bufio.Reader
	defer func() {
		if br != nil {
			c.putReader(br)
		}
	}()
	idle := c.s.cfg.IdleTimeout
	for {
		// Wait for the next request's first byte under the idle timeout;
		// a connection is only idle when it is owed nothing. drain closes
		// stopRead before moving the deadline, so checking after setting
		// ours never misses it.
		_ = c.nc.SetReadDeadline(time.Now().Add(idle))
		if c.stopping() {
			return
		}
		if br != nil && br.Buffered() == 0 {
			// Nothing pipelined: give the buffer back before waiting, so
			// an idle connection holds none.
			c.putReader(br)
			br = nil
		}
		var err error
		if br == nil {
			err = c.waitFirstByte()
		} else {
			_, err = br.Peek(1)
		}
		if err != nil {
			if c.stopping() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if c.done.Load() < seq {
					continue // owed a response: not idle
				}
				c.log.Debug("closing idle kafka connection", "idle", idle)
				return
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("kafka connection read failed", "err", err)
			}
			peerGone = true
			return
		}
		if br == nil {
			br = c.getReader()
		}
		// The whole frame must arrive within one more idle period.
		_ = c.nc.SetReadDeadline(time.Now().Add(idle))
		if c.stopping() {
			return
		}
		frame, err := readFrame(br, c.s.cfg.MaxFrameBytes)
		if err != nil {
			if errors.Is(err, errFrameTooLarge) || errors.Is(err, errBadFrame) {
				stopErr = c.protocolError("frame", err)
			} else if !c.stopping() {
				if !errors.Is(err, net.ErrClosed) {
					c.log.Debug("kafka connection read failed mid-frame", "err", err)
				}
				peerGone = true
			}
			return
		}
		received := time.Now()
		hdr, req, err := decodeRequest(frame, c.s.served)
		if err != nil && !(errors.Is(err, errUnsupported) && hdr.key == int16(kmsg.ApiVersions)) {
			reason := "header"
			switch {
			case errors.Is(err, errUnsupported):
				reason = "unsupported"
			case errors.Is(err, errBadBody):
				reason = "body"
			}
			stopErr = c.protocolError(reason, err)
			return
		}
		// This is where a client that pipelines more than MaxInflight
		// requests waits for responses to be written.
		fetch := hdr.key == int16(kmsg.Fetch) && req != nil
		if !c.awaitCredit(seq, fetches, fetch) {
			return
		}
		cur := seq
		seq++
		if fetch {
			fetches++
		}
		if req == nil {
			// ApiVersions at a version we do not serve: answered here,
			// without parsing a body whose format we may not know.
			c.send(&answered{seq: cur, frame: c.encode(hdr.correlationID, unsupportedApiVersions(c.s)), api: kmsg.NameForKey(hdr.key), received: received})
			continue
		}
		charge := c.charge(hdr.key)
		c.reservedBytes.Add(charge)
		c.dispatch(cur, hdr, req, received, fetch, charge)
	}
}

// Bounds the read loop can wait on, the values of the read-paused
// metric's label.
const (
	boundRequests      = "requests"
	boundFetches       = "fetches"
	boundResponseBytes = "response_bytes"
)

// blockedBy says which bound keeps request seq (a fetch, with fetches
// fetches dispatched before it) from being dispatched now, or "" if none.
func (c *conn) blockedBy(seq, fetches uint64, fetch bool) string {
	if seq-c.done.Load() >= uint64(c.s.cfg.MaxInflight) {
		return boundRequests
	}
	if fetch && fetches-c.fetchesDone.Load() >= maxInflightFetches {
		return boundFetches
	}
	if c.unsentBytes() >= c.s.cfg.MaxInflightResponseBytes {
		return boundResponseBytes
	}
	return ""
}

// hasCredit reports whether request seq may be dispatched now.
func (c *conn) hasCredit(seq, fetches uint64, fetch bool) bool {
	return c.blockedBy(seq, fetches, fetch) == ""
}

// unsentBytes is the bytes of encoded responses not yet written plus those
// reserved for requests not yet answered. The loads are ordered so that
// concurrent updates can only overstate it: written only counts bytes
// already answered, and a respond func adds its answer before it gives
// back its reservation.
func (c *conn) unsentBytes() int64 {
	w := c.writtenBytes.Load()
	r := c.reservedBytes.Load()
	return c.answeredBytes.Load() + r - w
}

// charge is what a request of key is expected to answer with: the largest
// response of that key this connection was sent, or, for a key not
// answered yet, the whole response byte bound, so that a request of
// unknown size is dispatched only with nothing else unsent. Fetches are
// charged nothing: their responses are bounded by maxInflightFetches and
// the fetch size limits, and charging them would hold a client's other
// requests behind its long poll.
func (c *conn) charge(key int16) int64 {
	if key == int16(kmsg.Fetch) {
		return 0
	}
	c.sizesMu.Lock()
	defer c.sizesMu.Unlock()
	if n, ok := c.sizes[key]; ok {
		return n
	}
	return c.s.cfg.MaxInflightResponseBytes
}

// learn records the size of a response of key.
func (c *conn) learn(key int16, n int64) {
	c.sizesMu.Lock()
	defer c.sizesMu.Unlock()
	if c.sizes == nil {
		c.sizes = map[int16]int64{}
	}
	if n > c.sizes[key] {
		c.sizes[key] = n
	}
}

// awaitCredit waits until request seq may be dispatched: at once when the
// actor's published counts allow it, else by asking the actor to wake the
// loop. False means the connection is stopping.
func (c *conn) awaitCredit(seq, fetches uint64, fetch bool) bool {
	if bound := c.blockedBy(seq, fetches, fetch); bound != "" {
		c.s.metrics.readPaused.WithLabelValues(bound).Inc()
	}
	for !c.hasCredit(seq, fetches, fetch) {
		wake := make(chan struct{})
		c.send(&awaitCredit{seq: seq, fetches: fetches, fetch: fetch, wake: wake})
		select {
		case <-wake:
		case <-c.stopRead:
			return false
		case <-c.ctx.Done():
			return false
		}
	}
	return true
}

// protocolError logs and counts a protocol violation and returns err.
func (c *conn) protocolError(reason string, err error) error {
	c.s.metrics.protocolErrors.WithLabelValues(reason).Inc()
	c.log.Info("closing kafka connection on protocol error", "reason", reason, "err", err)
	return err
}

// dispatch calls the request's handler with a respond func that routes the
// response to the actor.
func (c *conn) dispatch(seq uint64, hdr requestHeader, req kmsg.Request, received time.Time, fetch bool, charge int64) {
	h := c.s.handlers[hdr.key]
	api := kmsg.NameForKey(hdr.key)
	c.s.metrics.requests.WithLabelValues(api).Inc()
	rc := &requestContext{
		ctx:           c.ctx,
		clientID:      hdr.clientID,
		correlationID: hdr.correlationID,
		version:       hdr.version,
		conn:          c.id,
		received:      received,
		log:           c.log,
		closing:       c.stopRead,
		drain:         c.drain,
		abort:         c.abort,
	}
	// refunded keeps a handler that answers twice (a bug the actor
	// reports) from giving the reservation back twice.
	var refunded atomic.Bool
	respond := func(resp kmsg.Response) {
		var frame []byte
		if resp != nil {
			resp.SetVersion(hdr.version)
			frame = c.encode(hdr.correlationID, resp)
			c.learn(hdr.key, int64(len(frame)))
		}
		// After encode counted the answer: see unsentBytes.
		if refunded.CompareAndSwap(false, true) {
			c.reservedBytes.Add(-charge)
		}
		c.send(&answered{seq: seq, frame: frame, api: api, received: received, fetch: fetch})
	}
	h.handle(c.s, rc, req, respond)
}

// encode encodes a response frame and counts its bytes as unsent.
func (c *conn) encode(correlationID int32, resp kmsg.Response) []byte {
	frame := appendResponse(nil, correlationID, resp)
	c.answeredBytes.Add(int64(len(frame)))
	return frame
}

// writeLoop writes the frames the actor releases until it closes out, and
// tells the actor what it finished each time it runs out of work. Frames
// already queued are gathered into one vectored write (at most
// maxWriteBatch), which batches pipelined responses into one syscall
// without a write buffer per connection. After a write error it keeps
// consuming without writing, so nothing upstream blocks while the
// connection winds down.
func (c *conn) writeLoop() {
	defer c.finish()
	var vec [][]byte
	failed := false
	var done written
	for f := range c.out {
		vec = append(vec[:0], f.frame)
		fetches := b2u(f.fetch)
		for len(vec) < maxWriteBatch && len(c.out) > 0 {
			g, ok := <-c.out
			if !ok {
				break
			}
			vec = append(vec, g.frame)
			fetches += b2u(g.fetch)
		}
		var n int64
		for _, b := range vec {
			n += int64(len(b))
		}
		if !failed {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
			bufs := net.Buffers(vec)
			if _, err := bufs.WriteTo(c.nc); err != nil {
				failed = true
				if !c.stopping() && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
					c.log.Debug("kafka connection write failed", "err", err)
				}
				// Stop the read loop too: nothing more can be answered.
				c.drain()
				_ = c.nc.Close()
			}
		}
		done.n += uint64(len(vec))
		done.fetches += fetches
		done.bytes += n
		clear(vec) // the frames are written: do not keep them reachable
		if len(c.out) == 0 {
			c.send(&written{n: done.n, fetches: done.fetches, bytes: done.bytes})
			done = written{}
		}
	}
}

// finish runs once the writer is done: everything owed was written (or the
// connection failed), so the socket, actor and context can go.
func (c *conn) finish() {
	_ = c.nc.Close()
	c.cancel()
	c.send(connFinished{})
	c.s.connDone(c)
}

// connActor is the connection actor: it owns the response ordering and
// flow state. Only its Receive touches these fields.
type connActor struct {
	c *conn
	// next is the request number whose response is released next.
	next uint64
	// parked holds responses that arrived before an earlier one.
	parked map[uint64]*answered
	// done and fetchesDone count the requests and fetches finished, and
	// writtenBytes the response bytes written or dropped; they are
	// published to the read loop through conn.done/fetchesDone/writtenBytes.
	done, fetchesDone uint64
	writtenBytes      int64
	// waiting is the read loop's request to be woken, if it waits.
	waiting *awaitCredit
	// total is the number of requests dispatched, known once the read loop
	// stopped (readerDone).
	total      uint64
	readerDone bool
	outClosed  bool
	drainTimer *time.Timer
}

// Receive implements actor.Actor.
func (a *connActor) Receive(ctx actor.Context) {
	if !a.c.owner.Receive(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case connFinished:
		a.c.owner.Close(ctx)
	case *answered:
		if _, dup := a.parked[m.seq]; dup || m.seq < a.next {
			a.c.log.Error("kafka handler responded twice; ignoring the second", "api", m.api)
			a.dropped(int64(len(m.frame))) // counted as answered, never written
			return
		}
		a.c.s.metrics.requestSeconds.WithLabelValues(m.api).Observe(time.Since(m.received).Seconds())
		if a.outClosed {
			a.dropped(int64(len(m.frame)))
			a.finished(1, b2u(m.fetch))
			return
		}
		a.parked[m.seq] = m
		for {
			next, ok := a.parked[a.next]
			if !ok {
				break
			}
			delete(a.parked, a.next)
			a.next++
			if next.frame == nil {
				a.finished(1, 0) // acks=0 produce: nothing to write
				continue
			}
			a.c.out <- outFrame{frame: next.frame, fetch: next.fetch}
		}
		// The answer gave back its reservation, which may be what the
		// read loop waits for.
		a.wake()
		a.maybeClose()
	case *written:
		a.dropped(m.bytes)
		a.finished(m.n, m.fetches)
	case *awaitCredit:
		a.waiting = m
		a.wake()
	case *readerStopped:
		a.readerDone, a.total = true, m.total
		if m.peerGone {
			a.closeOut()
			return
		}
		if m.err != nil && a.next < a.total {
			a.drainTimer = time.AfterFunc(protocolErrorDrain, func() { a.c.send(drainExpired{}) })
		}
		a.maybeClose()
	case drainExpired:
		a.c.log.Info("kafka connection still owed responses after a protocol error; closing", "owed", a.total-a.next)
		a.closeOut()
	case abortConn:
		a.closeOut()
	case *actor.Stopped:
		if a.drainTimer != nil {
			a.drainTimer.Stop()
		}
	}
}

// finished counts n requests finished, fetches of them fetches,
// publishes the counts and wakes the read loop if it waits for them.
func (a *connActor) finished(n, fetches uint64) {
	a.done += n
	a.fetchesDone += fetches
	a.c.done.Store(a.done)
	a.c.fetchesDone.Store(a.fetchesDone)
	a.wake()
}

// dropped counts n response bytes as no longer held (written, or dropped
// with the connection); the finished call that follows publishes it.
func (a *connActor) dropped(n int64) {
	a.writtenBytes += n
	a.c.writtenBytes.Store(a.writtenBytes)
}

// wake lets a waiting read loop go on once it has credit.
func (a *connActor) wake() {
	if w := a.waiting; w != nil && a.c.hasCredit(w.seq, w.fetches, w.fetch) {
		a.waiting = nil
		close(w.wake)
	}
}

// maybeClose closes the writer's queue once every dispatched request is
// answered and no more will come.
func (a *connActor) maybeClose() {
	if a.readerDone && a.next >= a.total {
		a.closeOut()
	}
}

// closeOut ends the writer. Responses still parked, or arriving later, are
// dropped with their slots returned, so a read loop waiting for a slot
// wakes and sees the connection is going.
func (a *connActor) closeOut() {
	if a.outClosed {
		return
	}
	a.outClosed = true
	close(a.c.out)
	for seq, m := range a.parked {
		delete(a.parked, seq)
		a.dropped(int64(len(m.frame)))
		a.finished(1, b2u(m.fetch))
	}
	if a.drainTimer != nil {
		a.drainTimer.Stop()
	}
}

// unsupportedApiVersions answers an ApiVersions request at a version we do
// not serve the way Kafka does (KIP-511): a v0 response with
// UNSUPPORTED_VERSION and the table of what is served, so the client can
// retry at a version both sides know.
func unsupportedApiVersions(s *Server) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = append([]kmsg.ApiVersionsResponseApiKey(nil), s.versions...)
	return resp
}

// served reports whether a key is served at a version.
func (s *Server) served(key, version int16) bool {
	h, ok := s.handlers[key]
	return ok && version >= h.minVersion && version <= h.maxVersion
}

// b2u is 1 for true: a request that is a fetch counts one fetch.
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// firstByte reads the byte the read loop waited for, then the socket: it
// is what a pooled read buffer reads from.
type firstByte struct {
	b   [1]byte
	has bool
	nc  net.Conn
}

// Read implements io.Reader.
func (f *firstByte) Read(p []byte) (int, error) {
	if f.has && len(p) > 0 {
		p[0] = f.b[0]
		f.has = false
		return 1, nil
	}
	return f.nc.Read(p)
}

// waitFirstByte waits for the next request's first byte without a buffer:
// an idle connection spends its idle time here.
func (c *conn) waitFirstByte() error {
	for {
		n, err := c.nc.Read(c.first.b[:])
		if n == 1 {
			c.first.has = true
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// getReader borrows a read buffer that reads the waited-for byte first.
func (c *conn) getReader() *bufio.Reader {
	c.first.nc = c.nc
	br := readBuffers.Get().(*bufio.Reader)
	br.Reset(&c.first)
	return br
}

// putReader returns a read buffer that holds no unread bytes.
func (c *conn) putReader(br *bufio.Reader) {
	br.Reset(nil)
	readBuffers.Put(br)
}
