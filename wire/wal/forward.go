package wal

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/proto"

	"github.com/morax-dev/morax/actors"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/wire/wal/walpb"
)

// Request forwarding (DESIGN.md, Cluster): a request for a log whose
// partition another node owns is sent, as the client sent it, to the
// owner's ForwardActorName actor over protoactor remote, and the owner's
// answer is relayed. So a client configured with any one node's address
// works against the whole cluster.
//
// The node the client talks to decodes the request first, so bad input is
// refused the same way everywhere without a round trip, and looks the log
// up. Then it asks Broker.PartitionOwner. The owner runs the request through
// its own handler on a synthetic RequestCtx marked as forwarded: a forwarded
// request is always served where it lands, never forwarded again, so two
// nodes with different views of the cluster cannot bounce it between them.
// When the owner refuses without acting (it lost the partition, or is
// stopping: ForwardResponse.Moved) or cannot be reached, the request is
// sent again after looking the owner up afresh, until its deadline
// (retryMoved). An append whose answer is lost in flight is not: it may
// have been applied, so the client is told the outcome is unknown.

// ForwardActorName is the name of the actor that serves forwarded requests
// on every node (Config.ServeForwarded); other nodes address it as
// actor.NewPID(node.RemoteAddr, ForwardActorName).
const ForwardActorName = "wal-forward"

const (
	// forwardMargin is how long after the request's deadline the forwarding
	// node still waits for the owner's answer: the owner stops working at
	// the deadline and needs a moment to say so.
	forwardMargin = 2 * time.Second
	// ownerCheckInterval is how often a node waiting for a forwarded answer
	// checks that the owner it asked still owns the partition.
	ownerCheckInterval = 100 * time.Millisecond
	// appendMoveGrace is how long a forwarded append waits for its answer
	// after the partition changed hands: a node handing a partition over
	// commits and answers the appends it holds first, so the answer is
	// usually on its way.
	appendMoveGrace = 3 * time.Second
	// retryBackoffMin and retryBackoffMax bound the pause before a request
	// refused as moved is sent again; the ownership loop reads the cluster
	// every few hundred milliseconds, so retrying faster gains nothing.
	retryBackoffMin = 25 * time.Millisecond
	retryBackoffMax = 500 * time.Millisecond
	// maxForwardHops is how many forwards a request may have been through
	// when it arrives: one, since the owner never forwards again.
	maxForwardHops = 1
)

// forwardedKey marks a RequestCtx built from a ForwardRequest; its value is
// a forwardInfo.
type forwardedKey struct{}

// forwardInfo is what a forwarded request's handler knows of the client's
// request, translated to this node's clock.
type forwardInfo struct {
	// start is when the client's request reached the node it was sent to.
	start time.Time
	// deadline is when the forwarding node stops waiting for the answer.
	deadline time.Time
}

// isForwarded reports whether ctx is a request another node forwarded here.
func isForwarded(ctx *fasthttp.RequestCtx) bool {
	_, ok := forwarded(ctx)
	return ok
}

// forwarded returns what the forwarding node said of ctx, if it is a
// forwarded request.
func forwarded(ctx *fasthttp.RequestCtx) (forwardInfo, bool) {
	fi, ok := ctx.UserValue(forwardedKey{}).(forwardInfo)
	return fi, ok
}

// ForwardMessageLimit is the largest forwarding envelope, in bytes, that a
// node whose WAL server takes bodies of up to maxBodyBytes sends or
// accepts (0 means DefaultConfig's MaxBodyBytes). A request body is at most
// maxBodyBytes; a read answer holds that much entry data (or 1 MiB, the
// larger), plus its first entry whatever its size, base64-encoded (4/3)
// and framed in JSON, which for tiny entries can double it. StartRemote
// sizes the gRPC limits with it; an answer that would not fit is replaced
// by an error rather than breaking the connection it travels on.
func ForwardMessageLimit(maxBodyBytes int) int {
	if maxBodyBytes <= 0 {
		maxBodyBytes = DefaultConfig().MaxBodyBytes
	}
	return 4*max(maxBodyBytes, DefaultReadBytes) + 8<<20
}

// forwardActor receives ForwardRequests. It never serves one itself: a
// long poll can take Config.MaxWait, and the actor must stay free to take
// the next request, so each runs on its own goroutine.
type forwardActor struct{ s *Server }

// Receive implements actor.Actor.
func (a *forwardActor) Receive(c actor.Context) {
	m, ok := c.Message().(*walpb.ForwardRequest)
	if !ok {
		return // lifecycle messages
	}
	sender := c.Sender()
	if sender == nil {
		return // nobody to answer: a plain Send, not a request
	}
	root := c.ActorSystem().Root
	s := a.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		root.Send(sender, refusal(errClosing))
		return
	}
	s.forwarded.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.forwarded.Done()
		root.Send(sender, s.serveForwarded(m))
	}()
}

// refusal is a moved answer: the request was not acted on, so the
// forwarding node may send it again elsewhere.
func refusal(err error) *walpb.ForwardResponse {
	e := classify(err)
	return &walpb.ForwardResponse{Status: int32(e.status), ContentType: contentTypeJSON, Body: appendErrorJSON(nil, e), Moved: true}
}

// spawnForwardActor starts the ForwardActorName actor on the broker's actor
// system.
func (s *Server) spawnForwardActor() (*actor.PID, error) {
	props := actor.PropsFromProducer(func() actor.Actor { return &forwardActor{s: s} })
	pid, err := s.b.ActorSystem().Root.SpawnNamed(props, ForwardActorName)
	if err != nil {
		return nil, fmt.Errorf("wal: start the %s actor (is another WAL server with ServeForwarded running on this broker?): %w", ForwardActorName, err)
	}
	return pid, nil
}

// forwardAddr is the remote address a forwarded request's handler sees: the
// node it came from.
type forwardAddr string

func (a forwardAddr) Network() string { return "protoactor" }
func (a forwardAddr) String() string  { return "node:" + string(a) }

var _ net.Addr = forwardAddr("")

// serveForwarded runs a forwarded request through this node's own handler
// and returns its answer.
func (s *Server) serveForwarded(m *walpb.ForwardRequest) *walpb.ForwardResponse {
	if m.GetHops() > maxForwardHops {
		// Not sent by this version of Morax: the owner never forwards.
		e := newAPIError(fasthttp.StatusLoopDetected, CodeInvalidArgument,
			fmt.Sprintf("request forwarded %d times; a forwarded request is served where it lands", m.GetHops()))
		return &walpb.ForwardResponse{Status: int32(e.status), ContentType: contentTypeJSON, Body: appendErrorJSON(nil, e)}
	}
	var req fasthttp.Request
	req.Header.SetMethod(m.GetMethod())
	req.SetRequestURI(m.GetRequestUri())
	if m.GetContentType() != "" {
		req.Header.SetContentType(m.GetContentType())
	}
	req.SetBodyRaw(m.GetBody())
	if _, ok := tailName(string(req.URI().Path())); ok {
		// A stream cannot travel in one envelope; a node tailing a log it
		// does not own polls the owner with reads instead (tail.go).
		e := newAPIError(fasthttp.StatusBadRequest, CodeInvalidArgument, "tail streams are not forwarded")
		return &walpb.ForwardResponse{Status: int32(e.status), ContentType: contentTypeJSON, Body: appendErrorJSON(nil, e)}
	}
	var rc fasthttp.RequestCtx
	rc.Init(&req, forwardAddr(m.GetOriginNode()), fasthttpLogger{s.log})
	now := time.Now()
	fi := forwardInfo{start: now.Add(-time.Duration(max(0, m.GetElapsedNanos()))), deadline: now.Add(s.cfg.RequestTimeout)}
	if m.GetTimeoutNanos() > 0 {
		fi.deadline = now.Add(time.Duration(m.GetTimeoutNanos()))
	}
	rc.SetUserValue(forwardedKey{}, fi)
	s.handle(&rc)
	moved, _ := rc.UserValue(movedKey{}).(bool)
	resp := &walpb.ForwardResponse{
		Status:      int32(rc.Response.StatusCode()),
		ContentType: string(rc.Response.Header.ContentType()),
		Body:        rc.Response.Body(),
		Moved:       moved,
	}
	if limit := ForwardMessageLimit(s.cfg.MaxBodyBytes); proto.Size(resp) > limit-64<<10 {
		e := newAPIError(fasthttp.StatusInternalServerError, CodeUnexpected,
			fmt.Sprintf("the answer (%d bytes) is too large to pass between nodes; read with a smaller max_bytes", len(resp.Body)))
		return &walpb.ForwardResponse{Status: int32(e.status), ContentType: contentTypeJSON, Body: appendErrorJSON(nil, e)}
	}
	return resp
}

// forward answers ctx with the owner's answer when partition p of t is
// served by another node, and reports whether it did; false means this node
// serves the request itself (it owns the partition, there is no cluster,
// or the request was forwarded here). wait is the long poll the request
// asked for, which extends its deadline.
func (s *Server) forward(ctx *fasthttp.RequestCtx, op string, t meta.Topic, p int32, wait time.Duration) bool {
	if isForwarded(ctx) || p < 0 || p >= t.Partitions {
		return false // an unknown partition is answered locally
	}
	owner, self := s.b.PartitionOwner(t.ID, p)
	if self {
		return false
	}
	deadline := s.deadline(ctx, wait)
	env := &walpb.ForwardRequest{
		Method:       string(ctx.Method()),
		RequestUri:   string(ctx.URI().RequestURI()),
		ContentType:  string(ctx.Request.Header.ContentType()),
		Body:         bytes.Clone(ctx.PostBody()), // fasthttp reuses its buffer once the handler returns; the envelope may still be queued
		TimeoutNanos: int64(max(time.Until(deadline), 0)),
		ElapsedNanos: int64(time.Since(requestStart(ctx))),
		Hops:         1,
		OriginNode:   s.b.NodeID(),
	}
	res, err := s.send(owner, t, p, env, deadline, op == "append")
	if err != nil {
		s.fail(ctx, op, err)
		return true
	}
	writeRelayed(ctx, int(res.GetStatus()), res.GetContentType(), res.GetBody())
	return true
}

// writeRelayed answers ctx with another node's answer. Of its headers only
// the content type travels; Retry-After is what writeError would have set.
func writeRelayed(ctx *fasthttp.RequestCtx, status int, contentType string, body []byte) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	if contentType != "" {
		ctx.SetContentType(contentType)
	}
	if status == fasthttp.StatusTooManyRequests || status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	ctx.Response.SetBodyRaw(body)
}

// send makes one attempt to have owner serve env and returns its answer.
// The errors are: a moved refusal (wraps actors.ErrNotOwner), the owner
// unreachable or its answer lost for a request that is safe to repeat
// (errOwnerUnreachable), both of which retryMoved retries; the answer to an
// append lost (errOutcomeUnknown); and errClosing when this server closes
// meanwhile. While waiting it watches the partition's owner: once another
// node (or another run of the same node) owns it, a read stops waiting for
// an answer that may never come, and an append waits appendMoveGrace more.
func (s *Server) send(owner meta.Node, t meta.Topic, p int32, env *walpb.ForwardRequest, deadline time.Time, isAppend bool) (*walpb.ForwardResponse, error) {
	if owner.RemoteAddr == "" {
		return nil, fmt.Errorf("%w: %s/%d: no live node to forward to (node %q has no remote address)", errOwnerUnreachable, t.Name, p, owner.ID)
	}
	timeout := max(time.Until(deadline), 0) + forwardMargin
	fut := s.b.ActorSystem().Root.RequestFuture(actor.NewPID(owner.RemoteAddr, ForwardActorName), env, timeout)
	type result struct {
		msg any
		err error
	}
	done := make(chan result, 1)
	go func() {
		msg, err := fut.Result() // returns by the future's timeout at the latest
		done <- result{msg, err}
	}()
	tick := time.NewTicker(ownerCheckInterval)
	defer tick.Stop()
	var movedAt time.Time
	lost := func(why string) error {
		if isAppend {
			return fmt.Errorf("%w: append to %s/%d forwarded to node %s: %s", errOutcomeUnknown, t.Name, p, owner.ID, why)
		}
		return fmt.Errorf("%w: %s/%d forwarded to node %s: %s", errOwnerUnreachable, t.Name, p, owner.ID, why)
	}
	for {
		select {
		case r := <-done:
			switch {
			case r.err == nil:
				res, ok := r.msg.(*walpb.ForwardResponse)
				if !ok {
					return nil, fmt.Errorf("forward %s/%d to node %s: unexpected answer %T", t.Name, p, owner.ID, r.msg)
				}
				if res.GetMoved() {
					return nil, fmt.Errorf("%w: node %s refused %s/%d (HTTP %d)", actors.ErrNotOwner, owner.ID, t.Name, p, res.GetStatus())
				}
				return res, nil
			case errors.Is(r.err, actor.ErrDeadLetter):
				// Delivered to no actor, so not acted on: the owner's WAL
				// server is not running (yet, or any more).
				return nil, fmt.Errorf("%w: %s/%d: node %s at %s takes no forwarded requests", errOwnerUnreachable, t.Name, p, owner.ID, owner.RemoteAddr)
			default:
				return nil, lost(fmt.Sprintf("no answer within %s: %v", timeout.Round(time.Millisecond), r.err))
			}
		case <-tick.C:
			now, _ := s.b.PartitionOwner(t.ID, p)
			if sameProcess(now, owner) {
				movedAt = time.Time{}
				continue
			}
			if !isAppend {
				return nil, lost("the partition moved to node " + now.ID + " meanwhile")
			}
			if movedAt.IsZero() {
				movedAt = time.Now()
			} else if time.Since(movedAt) > appendMoveGrace {
				return nil, lost("the partition moved to node " + now.ID + " meanwhile and no answer came")
			}
		case <-s.baseCtx.Done():
			if isAppend {
				return nil, lost("this node is shutting down")
			}
			return nil, errClosing
		}
	}
}

// sameProcess reports whether a and b are the same run of the same node. A
// node restarted under its id has a new StartedAt (and perhaps a new remote
// address), and never answers what was sent to its previous run: the
// message died with the connection.
func sameProcess(a, b meta.Node) bool {
	return a.ID == b.ID && a.StartedAt.Equal(b.StartedAt) && a.RemoteAddr == b.RemoteAddr
}

// retryMoved runs h, and runs it again while its answer is a moved refusal
// (the partition changed hands, or its owner could not be reached for a
// request that is safe to repeat), after a short backoff and until the
// request's deadline. h looks the owner up each time, so the request
// follows the log to its new node, forwarded or served here. Without a
// cluster, and for requests forwarded here, h runs once: the node that
// forwarded the request does the retrying.
func (s *Server) retryMoved(ctx *fasthttp.RequestCtx, h fasthttp.RequestHandler) {
	if isForwarded(ctx) || s.b.ClusterView() == nil {
		h(ctx)
		return
	}
	backoff := retryBackoffMin
	for {
		h(ctx)
		wait, _ := ctx.UserValue(waitKey{}).(time.Duration)
		if !takeMoved(ctx) || s.baseCtx.Err() != nil || time.Now().Add(backoff).After(s.deadline(ctx, wait)) {
			return
		}
		if !s.pause(backoff) {
			return
		}
		backoff = min(2*backoff, retryBackoffMax)
		ctx.Response.Reset()
	}
}

// waitKey records, as a RequestCtx user value, the long poll a read asked
// for (time.Duration), which extends the time retryMoved may retry it.
type waitKey struct{}

// pause waits d, or less if the server closes; it reports whether the
// server is still open.
func (s *Server) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.baseCtx.Done():
		return false
	}
}
