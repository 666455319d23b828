package actors

import (
	"fmt"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
)

// Every owner of state in this package (a partition, the registry) is a
// protoactor actor reached only through its mailbox, never through its
// bare PID. The mailbox adds to protoactor's what an owner of state needs:
//
//   - a name and a depth: the messages sent and not yet received, counted
//     node-wide per kind of owner in morax_mailbox_depth;
//   - a bound: past a kind's limit a request is refused with
//     ErrBackpressure at once instead of queueing (internal messages, such
//     as I/O completions, are never refused: refusing them would lose
//     state the owner holds);
//   - an answer for every request: once the owner closes its mailbox,
//     requests sent to it are answered with the kind's stopped error (or
//     handed back to be routed again, for a kind with handBack), by the
//     sender if it sees the mailbox closed, or by the mailbox on the
//     owner's goroutine if the request was already on its way. The actor
//     itself stops only when nothing sent to it is still in flight, so
//     protoactor never drops a request at a stopped actor, and no call
//     site needs dead-letter subscriptions or grace timers.
//
// The protocol: a sender counts a message in (queued+1) before it looks at
// closed; the owner sets closed, then stops once queued is zero. A sender
// that counted in before the owner read queued is waited for; one that
// counted in after it sees closed (the atomics are sequentially
// consistent) and backs out, waking the owner if it was the last.

// mailboxKind is what the mailboxes of one kind of owner share.
type mailboxKind struct {
	name string
	// limit is the depth past which requests are refused (0: no limit).
	limit int64
	// stopped is the error requests get once the owner closed its mailbox.
	stopped error
	// handBack, when set, takes the requests that reach a closed mailbox
	// instead of answering them with stopped: an owner that closes for
	// its own reasons (a group actor gone idle) must not make a client
	// see an error, so whoever routed the request routes it again.
	handBack func(Request)
	depth    prometheus.Gauge
	refused  prometheus.Counter
}

func newMailboxKind(m *metrics, name string, limit int64, stopped error) *mailboxKind {
	return &mailboxKind{
		name:    name,
		limit:   limit,
		stopped: stopped,
		depth:   m.mailboxDepth.WithLabelValues(name),
		refused: m.mailboxRefused.WithLabelValues(name),
	}
}

// mailbox is the way to one owner. Any goroutine may send through it; the
// owner alone calls receive and close.
type mailbox struct {
	kind *mailboxKind
	root *actor.RootContext
	// pid is set by spawnOwner and by the actor's first message, whichever
	// comes first: the actor may start I/O that sends to it before
	// SpawnNamed has returned.
	pid atomic.Pointer[actor.PID]
	// queued counts messages counted in by senders and not yet received.
	queued atomic.Int64
	closed atomic.Bool
	// stopping is set once the owner asked protoactor to stop the actor;
	// only the owner's goroutine touches it.
	stopping bool
}

// mailboxQuiet wakes a closed owner whose last in-flight sender backed out.
// It is not counted: it carries nothing to answer.
type mailboxQuiet struct{}

// spawnOwner starts an actor reached through a new mailbox of kind. spawn
// is the context spawning it (the root, or a parent actor's context for
// supervision); producer receives the mailbox so the actor can close it.
func spawnOwner(spawn actor.SpawnerContext, root *actor.RootContext, kind *mailboxKind, name string, producer func(*mailbox) actor.Actor) (*mailbox, error) {
	mb := &mailbox{kind: kind, root: root}
	props := actor.PropsFromProducer(func() actor.Actor { return producer(mb) },
		actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })))
	pid, err := spawn.SpawnNamed(props, name)
	if err != nil {
		return nil, fmt.Errorf("spawn %s %s: %w", kind.name, name, err)
	}
	mb.pid.Store(pid)
	return mb, nil
}

// request delivers r, or answers it at once: with the stopped error once
// the owner closed its mailbox, with ErrBackpressure when it is full.
func (m *mailbox) request(r Request) {
	if !m.offer(r) {
		m.kind.closedTo(r)
	}
}

// offer is request for a sender that routes requests again itself: once
// the owner closed its mailbox it leaves r unanswered and reports false,
// so the sender keeps r in its own order instead of having it handed back
// as a separate message.
func (m *mailbox) offer(r Request) bool {
	n := m.queued.Add(1)
	if m.closed.Load() {
		m.backOut()
		return false
	}
	if m.kind.limit > 0 && n > m.kind.limit {
		m.backOut()
		m.kind.refused.Inc()
		r.fail(fmt.Errorf("%w: %s mailbox holds %d messages", ErrBackpressure, m.kind.name, n-1))
		return true
	}
	m.kind.depth.Inc()
	m.root.Send(m.pid.Load(), r)
	return true
}

// closedTo disposes of a request that reached a closed mailbox.
func (k *mailboxKind) closedTo(r Request) {
	if k.handBack != nil {
		k.handBack(r)
		return
	}
	r.fail(k.stopped)
}

// tell delivers an internal message: an I/O completion, a timer, a control
// message. It is never refused for depth; once the owner closed its
// mailbox it is dropped, as the owner has answered everything it held.
func (m *mailbox) tell(msg any) {
	m.queued.Add(1)
	if m.closed.Load() {
		m.backOut()
		if r, ok := msg.(Request); ok {
			m.kind.closedTo(r)
		}
		return
	}
	m.kind.depth.Inc()
	m.root.Send(m.pid.Load(), msg)
}

func (m *mailbox) backOut() {
	if m.queued.Add(-1) == 0 && m.closed.Load() {
		m.root.Send(m.pid.Load(), mailboxQuiet{})
	}
}

// receive is the first thing the owner's Receive does with a message: it
// counts it out and reports whether the owner should handle it. After
// close, requests are answered here and everything else is dropped.
func (m *mailbox) receive(ctx actor.Context) bool {
	msg := ctx.Message()
	switch msg.(type) {
	case *actor.Started:
		m.pid.CompareAndSwap(nil, ctx.Self())
		return true
	case actor.SystemMessage, actor.AutoReceiveMessage:
		return true
	case mailboxQuiet:
		m.maybeStop(ctx)
		return false
	}
	m.queued.Add(-1)
	m.kind.depth.Dec()
	if !m.closed.Load() {
		return true
	}
	if r, ok := msg.(Request); ok {
		m.kind.closedTo(r)
	}
	m.maybeStop(ctx)
	return false
}

// close says the owner serves nothing more. The actor stops once every
// message sent to it has been received (and answered, if a request).
func (m *mailbox) close(ctx actor.Context) {
	m.closed.Store(true)
	m.maybeStop(ctx)
}

func (m *mailbox) maybeStop(ctx actor.Context) {
	if m.stopping || m.queued.Load() != 0 {
		return
	}
	m.stopping = true
	ctx.Stop(ctx.Self())
}
