package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/morax-dev/morax/persistence/meta"
)

// Routing (DESIGN.md, "One pattern for state owners"): a partition is
// reached the same way wherever it lives. The Broker's call methods
// (Append, Fetch, ListOffsets, Trim, Describe) send their typed request to
// the local partition actor when this node owns the partition (or runs
// without a cluster), and otherwise, as a partitionpb message, to the
// owner's GatewayName actor over protoactor remote, which hands it to its
// own partition actor the same way. Broker.Send never routes: Kafka
// clients are told NOT_LEADER_OR_FOLLOWER and find the leader themselves.
//
// Who owns a partition is Broker.PartitionOwner's answer. The owner's
// gateway never sends a request on, so two nodes with different views of
// the cluster cannot bounce one between them; it refuses, without acting,
// a request for a partition it does not own. Such refusals (ErrNotOwner,
// ErrShuttingDown) and an owner that cannot be reached (ErrUnreachable)
// are retried after a short backoff, looking the owner up afresh each time,
// until ctx ends: the request follows the partition to its new node, remote
// or local. An append whose answer is lost in flight is not retried: it
// may have been applied, so it fails with ErrOutcomeUnknown.

// ErrUnreachable means the node that owns the partition could not be
// reached, or did not answer a request that is safe to send again.
// Retriable.
var ErrUnreachable = errors.New("the node that owns the partition did not answer")

const (
	// remoteMargin is how long after the request's deadline the sender
	// still waits for the owner's answer: the owner gives up at the
	// deadline and needs a moment to say so.
	remoteMargin = 2 * time.Second
	// ownerCheckInterval is how often a sender waiting for an owner's
	// answer checks that the owner it asked still owns the partition.
	ownerCheckInterval = 100 * time.Millisecond
	// appendMoveGrace is how long an append sent to another node waits for
	// its answer after the partition changed hands: a node handing a
	// partition over commits and answers the appends it holds first, so the
	// answer is usually on its way.
	appendMoveGrace = 3 * time.Second
	// retryBackoffMin and retryBackoffMax bound the pause before a refused
	// request is sent again; the ownership loop reads the cluster every few
	// hundred milliseconds, so retrying faster gains nothing.
	retryBackoffMin = 25 * time.Millisecond
	retryBackoffMax = 500 * time.Millisecond
	// defaultRemoteTimeout bounds a request sent to another node when its
	// context has no deadline.
	defaultRemoteTimeout = 30 * time.Second
)

// routed is one call as reach runs it. attempt counts from 0; elapsed is
// the time since the call began, which a long poll's wait counts from.
type routed[R Outcome] struct {
	what     string
	isAppend bool
	// local sends the request to this node's partition actor.
	local func(attempt int, elapsed time.Duration, reply func(R))
	// remote builds the request for another node, whose answer is awaited
	// for timeout; an error fails the call without sending.
	remote func(attempt int, elapsed, timeout time.Duration, cfg RemoteConfig) (proto.Message, error)
	// decode turns the owner's reply into the result; false when msg is
	// not the reply type.
	decode func(msg any, node string) (R, bool)
}

// reach runs op against partition p of t wherever it lives, retrying
// refusals that left the partition untouched until ctx ends. The error is
// the owner's, ctx's, or ErrUnreachable/ErrOutcomeUnknown for a remote
// owner that did not answer.
func reach[R Outcome](ctx context.Context, b *Broker, t meta.Topic, p int32, op routed[R]) (R, error) {
	start := time.Now()
	backoff := retryBackoffMin
	for attempt := 0; ; attempt++ {
		r, err := routeOnce(ctx, b, t, p, op, attempt, time.Since(start))
		if err == nil || !b.retriable(err) {
			return r, err
		}
		if d, ok := ctx.Deadline(); ok && time.Now().Add(backoff).After(d) {
			return r, err
		}
		if !pause(ctx, backoff) {
			return r, err
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

// routeOnce makes one attempt, local or remote. A broker without a remote
// (StartRemote) cannot reach other nodes, so it sends everything to its
// own partitions, which refuse the ones it does not own with ErrNotOwner.
func routeOnce[R Outcome](ctx context.Context, b *Broker, t meta.Topic, p int32, op routed[R], attempt int, elapsed time.Duration) (R, error) {
	// An unknown partition is refused locally, like any other.
	if p >= 0 && p < t.Partitions && b.ClusterView() != nil && b.remote.Load() != nil {
		if owner, self := b.PartitionOwner(t.ID, p); !self {
			return remoteCall(ctx, b, owner, t, p, op, attempt, elapsed)
		}
	}
	return Call(ctx, op.what, func(reply func(R)) { op.local(attempt, elapsed, reply) })
}

// retriable reports whether a call that failed with err may be sent again,
// after the owner is looked up afresh: the owner refused it without acting,
// or could not be reached with it. Only in a cluster whose nodes this one
// can reach, since otherwise there is nowhere else to look, and not once
// this node is stopping.
func (b *Broker) retriable(err error) bool {
	if b.ClusterView() == nil || b.remote.Load() == nil || b.closing.Load() {
		return false
	}
	return errors.Is(err, ErrNotOwner) || errors.Is(err, ErrShuttingDown) || errors.Is(err, ErrUnreachable)
}

// pause waits d or until ctx ends; it reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// remoteCall makes one attempt to have owner serve op, waiting for its
// answer until ctx's deadline plus remoteMargin. Besides the owner's own
// error, it fails with ErrUnreachable when the request reached no actor
// there (a dead letter: not acted on) or, for anything but an append, was
// not answered; an append not answered fails with ErrOutcomeUnknown. While
// it waits it watches the partition's owner: once another node (or
// another run of the same node) owns it, a read stops waiting for an
// answer that may never come, and an append waits appendMoveGrace more.
func remoteCall[R Outcome](ctx context.Context, b *Broker, owner meta.Node, t meta.Topic, p int32, op routed[R], attempt int, elapsed time.Duration) (R, error) {
	var zero R
	where := fmt.Sprintf("%s/%d", t.Name, p)
	rem := b.remote.Load()
	if owner.RemoteAddr == "" {
		return zero, fmt.Errorf("%w: %s: no live node to send to (node %q has no remote address)", ErrUnreachable, where, owner.ID)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultRemoteTimeout)
	}
	timeout := time.Until(deadline)
	if timeout <= 0 {
		return zero, fmt.Errorf("%s %s: %w", op.what, where, context.DeadlineExceeded)
	}
	msg, err := op.remote(attempt, elapsed, timeout, rem.cfg)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", op.what, where, err)
	}
	wait := timeout + remoteMargin
	fut := b.system.Root.RequestFuture(actor.NewPID(owner.RemoteAddr, GatewayName), msg, wait)
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
	lost := func(why string) error {
		if op.isAppend {
			return fmt.Errorf("%w: append to %s sent to node %s: %s", ErrOutcomeUnknown, where, owner.ID, why)
		}
		return fmt.Errorf("%w: %s %s sent to node %s: %s", ErrUnreachable, op.what, where, owner.ID, why)
	}
	ctxDone := ctx.Done()
	var movedAt time.Time
	for {
		select {
		case r := <-done:
			switch {
			case r.err == nil:
				res, ok := op.decode(r.msg, owner.ID)
				if !ok {
					return zero, lost(fmt.Sprintf("unexpected answer %T", r.msg))
				}
				return res, res.outcome()
			case errors.Is(r.err, actor.ErrDeadLetter):
				// Delivered to no actor, so not acted on: the owner runs no
				// gateway (yet, or any more).
				return zero, fmt.Errorf("%w: %s: node %s at %s takes no requests from other nodes", ErrUnreachable, where, owner.ID, owner.RemoteAddr)
			default:
				return zero, lost(fmt.Sprintf("no answer within %s: %v", wait.Round(time.Millisecond), r.err))
			}
		case <-tick.C:
			now, _ := b.PartitionOwner(t.ID, p)
			if sameProcess(now, owner) {
				movedAt = time.Time{}
				continue
			}
			if !op.isAppend {
				return zero, lost("the partition moved to node " + now.ID + " meanwhile")
			}
			if movedAt.IsZero() {
				movedAt = time.Now()
			} else if time.Since(movedAt) > appendMoveGrace {
				return zero, lost("the partition moved to node " + now.ID + " meanwhile and no answer came")
			}
		case <-ctxDone:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				ctxDone = nil // the owner answers by then too; the future times out after the margin
				continue
			}
			if op.isAppend {
				return zero, lost("the call was canceled: " + ctx.Err().Error())
			}
			return zero, fmt.Errorf("wait for %s: %w", op.what, ctx.Err())
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

// replyDecoder makes a routed.decode for reply type M.
func replyDecoder[M proto.Message, R Outcome](decode func(M, string) R) func(any, string) (R, bool) {
	return func(msg any, node string) (R, bool) {
		m, ok := msg.(M)
		if !ok {
			var zero R
			return zero, false
		}
		return decode(m, node), true
	}
}

// handedOver turns the empty answer a draining partition gives a parked
// fetch into ErrNotOwner, so that a long poll follows the partition to its
// next owner instead of ending before its wait: the fetch did not act, so
// sending it again is safe. asked is when the fetch was sent with wait.
func (b *Broker) handedOver(t meta.Topic, p int32, wait time.Duration, asked time.Time, r FetchResult) FetchResult {
	if r.Err != nil || len(r.Batches) > 0 || wait <= 0 || time.Since(asked) >= wait || b.ClusterView() == nil {
		return r
	}
	// The partition says so itself when it drains; the lease owner's view
	// stops showing the lease a moment later, which covers an actor that
	// stopped without draining.
	if _, ok := b.LocalLeader(t.ID, p); ok && !r.Moving {
		return r
	}
	return failedFetch(fmt.Errorf("%w: %s/%d was handed over while the fetch waited", ErrNotOwner, t.Name, p))
}
