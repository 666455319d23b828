package actors

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/morax-dev/morax/persistence/meta"
)

// Messages to the registry actor.
type (
	// route delivers req to a partition actor, starting it if needed.
	route struct {
		topic     meta.Topic
		partition int32
		req       Request
	}
	// ensure starts the actor of a partition if it is not running; the
	// ownership loop sends it for partitions this node should own.
	ensure struct {
		topic     meta.Topic
		partition int32
	}
	// drainOne drains one partition (handing it over to another node).
	drainOne struct{ key meta.PartitionKey }
	// drainAll drains every partition and closes done when all stopped.
	drainAll struct{ done chan struct{} }
	// stopTopic stops the partition actors of a topic (it is being deleted).
	stopTopic struct {
		id   meta.TopicID
		done chan struct{}
	}
	// topicChanged carries a topic's new config to its partitions.
	topicChanged struct{ topic meta.Topic }
	// retentionTick asks every partition to apply retention.
	retentionTick struct{}
	// retire says a partition actor has stopped serving and closed its
	// mailbox: it is unregistered, and stops by itself once its mailbox
	// is empty.
	retire struct {
		key meta.PartitionKey
		mb  *mailbox
	}
	// startFailed reports a partition actor whose start failed, for the
	// registry to log in aggregate (see startFailures).
	startFailed struct {
		topic     string
		partition int32
		err       error
	}
	// startFailuresDue ends a window of start failure logging.
	startFailuresDue struct{}
)

// startFailureWindow is how often the registry sums up the partitions that
// failed to start: the first failure of a window is logged with its cause,
// the others in one line at its end, so a storm of failing starts (a store
// outage with thousands of partitions to start) logs a line or two per
// window rather than one per partition per retry.
const startFailureWindow = 10 * time.Second

// errNodeFull refuses starting a partition actor past
// Limits.MaxNodePartitions.
var errNodeFull = errors.New("node serves its limit of partitions (limits.max_node_partitions)")

// A route carries a request: refusing the route refuses the request, and
// the registry's mailbox bounds routes like any owner's requests.
func (m *route) fail(err error) { m.req.fail(err) }
func (m *route) size() int      { return m.req.size() }

// Waiting for partitions to stop is over once the registry itself has
// stopped: everything it supervised stopped before it.
func (m *stopTopic) fail(error) { close(m.done) }
func (m *stopTopic) size() int  { return 0 }
func (m *drainAll) fail(error)  { close(m.done) }
func (m *drainAll) size() int   { return 0 }

// registry is the node's partition supervisor. It owns the map of running
// partition actors; the Broker's pids cache mirrors it for readers.
type registry struct {
	b        *Broker
	mb       *mailbox // its own
	children map[meta.PartitionKey]*mailbox
	keys     map[string]meta.PartitionKey // by PID id
	seq      int
	draining chan struct{} // non-nil once drainAll arrived
	// waiting are stopTopic requests waiting for their partitions to stop.
	waiting []*stopTopic
	// fails sums up the start failures of the current window; inWindow
	// says a window is open (its startFailuresDue is armed).
	fails    startFailures
	inWindow bool
}

// startFailures are the partition start failures of one logging window.
type startFailures struct {
	count     int
	topic     string // the last one's
	partition int32
	err       error
}

func newRegistry(b *Broker, mb *mailbox) *registry {
	return &registry{b: b, mb: mb, children: map[meta.PartitionKey]*mailbox{}, keys: map[string]meta.PartitionKey{}}
}

// Receive implements actor.Actor.
func (r *registry) Receive(ctx actor.Context) {
	if !r.mb.receive(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case *route:
		r.route(ctx, m)
	case *retire:
		r.forget(ctx, m.key, m.mb.pid.Load())
	case *startFailed:
		r.startFailed(m)
	case *startFailuresDue:
		r.endFailureWindow()
	case *actor.Terminated:
		key, ok := r.keys[m.Who.Id]
		if !ok {
			return
		}
		delete(r.keys, m.Who.Id)
		r.forget(ctx, key, m.Who)
	case *ensure:
		key := meta.PartitionKey{TopicID: m.topic.ID, Partition: m.partition}
		if r.children[key] == nil && r.draining == nil && !r.b.closing.Load() && !r.deleting(m.topic.ID) {
			// Past the node's limit this fails; ownership, which sent it,
			// counts what the node refuses.
			_, _ = r.spawn(ctx, m.topic, m.partition)
		}
	case *drainOne:
		if mb := r.children[m.key]; mb != nil {
			mb.tell(&drain{})
		}
	case *drainAll:
		r.draining = m.done
		for _, mb := range r.children {
			mb.tell(&drain{})
		}
		r.maybeDrained(ctx)
	case *stopTopic:
		for key, mb := range r.children {
			if key.TopicID == m.id {
				r.b.pids.Delete(key)
				mb.tell(&stopNow{err: fmt.Errorf("%w: topic deleted", ErrUnknownTopic)})
			}
		}
		r.waiting = append(r.waiting, m)
		r.checkWaiting()
	case *topicChanged:
		for key, mb := range r.children {
			if key.TopicID == m.topic.ID {
				mb.tell(m)
			}
		}
	case *retentionTick:
		for _, mb := range r.children {
			mb.tell(m)
		}
	}
}

// maybeDrained completes a drainAll once no partition runs, and closes
// the registry's mailbox: the node is stopping, and whatever reaches it
// from now on is refused with ErrShuttingDown.
func (r *registry) maybeDrained(ctx actor.Context) {
	if r.draining == nil || len(r.children) > 0 {
		return
	}
	close(r.draining)
	r.draining = nil
	r.mb.close(ctx)
}

func (r *registry) route(ctx actor.Context, m *route) {
	if r.draining != nil || r.b.closing.Load() {
		m.req.fail(ErrShuttingDown)
		return
	}
	if r.deleting(m.topic.ID) {
		m.req.fail(fmt.Errorf("%w: topic is being deleted", ErrUnknownTopic))
		return
	}
	key := meta.PartitionKey{TopicID: m.topic.ID, Partition: m.partition}
	mb := r.children[key]
	if mb == nil {
		var err error
		if mb, err = r.spawn(ctx, m.topic, m.partition); err != nil {
			full := errors.Is(err, errNodeFull)
			err = fmt.Errorf("%w: start partition actor: %v", ErrNotOwner, err)
			if full {
				err = r.b.refuseLimit(LimitNodePartitions, err)
			}
			m.req.fail(err)
			return
		}
	}
	mb.request(m.req)
}

// forget removes a partition actor from the maps, so no request is routed
// to it any more, and completes the drains and topic stops waiting for it.
func (r *registry) forget(ctx actor.Context, key meta.PartitionKey, pid *actor.PID) {
	if cur := r.children[key]; cur != nil && cur.pid.Load().Id == pid.Id {
		delete(r.children, key)
		r.b.pids.Delete(key)
	}
	r.published()
	r.checkWaiting()
	r.maybeDrained(ctx)
}

// published publishes how many partition actors run.
func (r *registry) published() {
	r.b.metrics.partitions.Set(float64(len(r.children)))
	r.b.running.Store(int64(len(r.children)))
}

// startFailed logs the first start failure of a window with its cause and
// counts the others for the window's end. A lease another process holds is
// routine (a partition moving here before its old owner let go) and is
// logged at debug only.
func (r *registry) startFailed(m *startFailed) {
	reason := "other"
	switch {
	case errors.Is(m.err, meta.ErrLeaseHeld), errors.Is(m.err, meta.ErrFenced):
		r.b.metrics.startFailures.WithLabelValues("lease_held").Inc()
		r.b.opts.Logger.Debug("partition failed to start: lease held elsewhere", "topic", m.topic, "partition", m.partition, "err", m.err)
		return
	case errors.Is(m.err, ErrNotOwner), errors.Is(m.err, ErrShuttingDown):
		reason = "stopped"
	}
	r.b.metrics.startFailures.WithLabelValues(reason).Inc()
	if !r.inWindow {
		r.inWindow = true
		r.b.opts.Logger.Warn("partition failed to start", "topic", m.topic, "partition", m.partition, "err", m.err)
		time.AfterFunc(startFailureWindow, func() { r.mb.tell(&startFailuresDue{}) })
		return
	}
	r.fails = startFailures{count: r.fails.count + 1, topic: m.topic, partition: m.partition, err: m.err}
}

// endFailureWindow logs the failures counted since the window's first one,
// in one line, and opens the next window only if there were any.
func (r *registry) endFailureWindow() {
	f := r.fails
	r.fails = startFailures{}
	if f.count == 0 {
		r.inWindow = false
		return
	}
	r.b.opts.Logger.Warn("more partitions failed to start", "count", f.count, "within", startFailureWindow,
		"last_topic", f.topic, "last_partition", f.partition, "last_err", f.err)
	time.AfterFunc(startFailureWindow, func() { r.mb.tell(&startFailuresDue{}) })
}

// deleting reports whether a topic's partitions are being stopped for its
// deletion.
func (r *registry) deleting(id meta.TopicID) bool {
	for _, w := range r.waiting {
		if w.id == id {
			return true
		}
	}
	return false
}

// spawn starts the actor of a partition; its start takes the lease. It
// refuses with errNodeFull once the node runs its limit of partitions.
func (r *registry) spawn(ctx actor.Context, t meta.Topic, p int32) (*mailbox, error) {
	if n := r.b.opts.Limits.MaxNodePartitions; len(r.children) >= n {
		return nil, fmt.Errorf("%w: %d running", errNodeFull, n)
	}
	r.seq++
	name := "p-" + t.ID.String() + "-" + strconv.Itoa(int(p)) + "-" + strconv.Itoa(r.seq)
	mb, err := spawnOwner(ctx, r.b.system.Root, r.b.partitionKind, name, func(mb *mailbox) actor.Actor { return newPartition(r.b, t, p, mb) })
	if err != nil {
		return nil, err
	}
	key := meta.PartitionKey{TopicID: t.ID, Partition: p}
	r.children[key] = mb
	r.keys[mb.pid.Load().Id] = key
	r.b.pids.Store(key, mb)
	r.published()
	return mb, nil
}

// checkWaiting closes the done channel of every stopTopic whose partitions
// have all terminated.
func (r *registry) checkWaiting() {
	kept := r.waiting[:0]
	for _, w := range r.waiting {
		alive := false
		for key := range r.children {
			if key.TopicID == w.id {
				alive = true
				break
			}
		}
		if alive {
			kept = append(kept, w)
		} else {
			close(w.done)
		}
	}
	r.waiting = kept
}
