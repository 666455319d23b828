package actors

import (
	"fmt"
	"strconv"

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
)

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
			r.spawn(ctx, m.topic, m.partition)
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
			m.req.fail(fmt.Errorf("%w: start partition actor: %v", ErrNotOwner, err))
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
	r.b.metrics.partitions.Set(float64(len(r.children)))
	r.checkWaiting()
	r.maybeDrained(ctx)
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

// spawn starts the actor of a partition; its start takes the lease.
func (r *registry) spawn(ctx actor.Context, t meta.Topic, p int32) (*mailbox, error) {
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
	r.b.metrics.partitions.Set(float64(len(r.children)))
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
