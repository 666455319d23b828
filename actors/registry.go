package actors

import (
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
	// retire says a partition actor has stopped serving (phaseStopped) and
	// should be unregistered now and stopped after retireGrace.
	retire struct {
		key meta.PartitionKey
		pid *actor.PID
	}
)

// retireGrace is how long a retired partition actor keeps answering
// requests that were sent to its PID before it left the registry's maps.
const retireGrace = 2 * time.Second

// registry is the node's partition supervisor. It owns the map of running
// partition actors; the Broker's pids cache mirrors it for readers.
type registry struct {
	b        *Broker
	children map[meta.PartitionKey]*actor.PID
	keys     map[string]meta.PartitionKey // by PID id
	seq      int
	draining chan struct{} // non-nil once drainAll arrived
	// waiting are stopTopic requests waiting for their partitions to stop.
	waiting []*stopTopic
}

func newRegistry(b *Broker) *registry {
	return &registry{b: b, children: map[meta.PartitionKey]*actor.PID{}, keys: map[string]meta.PartitionKey{}}
}

// Receive implements actor.Actor.
func (r *registry) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *route:
		r.route(ctx, m)
	case *retire:
		r.forget(m.key, m.pid)
		pid, system := m.pid, ctx.ActorSystem()
		time.AfterFunc(retireGrace, func() { system.Root.Stop(pid) })
	case *actor.Terminated:
		key, ok := r.keys[m.Who.Id]
		if !ok {
			return
		}
		delete(r.keys, m.Who.Id)
		r.forget(key, m.Who)
	case *ensure:
		key := meta.PartitionKey{TopicID: m.topic.ID, Partition: m.partition}
		if r.children[key] == nil && r.draining == nil && !r.b.closing.Load() && !r.deleting(m.topic.ID) {
			r.spawn(ctx, m.topic, m.partition)
		}
	case *drainOne:
		if pid := r.children[m.key]; pid != nil {
			ctx.Send(pid, &drain{})
		}
	case *drainAll:
		if len(r.children) == 0 {
			close(m.done)
			return
		}
		r.draining = m.done
		for _, pid := range r.children {
			ctx.Send(pid, &drain{})
		}
	case *stopTopic:
		for key, pid := range r.children {
			if key.TopicID == m.id {
				r.b.pids.Delete(key)
				ctx.Send(pid, &stopNow{err: fmt.Errorf("%w: topic deleted", ErrUnknownTopic)})
			}
		}
		r.waiting = append(r.waiting, m)
		r.checkWaiting()
	case *topicChanged:
		for key, pid := range r.children {
			if key.TopicID == m.topic.ID {
				ctx.Send(pid, m)
			}
		}
	case *retentionTick:
		for _, pid := range r.children {
			ctx.Send(pid, m)
		}
	}
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
	pid := r.children[key]
	if pid == nil {
		var err error
		if pid, err = r.spawn(ctx, m.topic, m.partition); err != nil {
			m.req.fail(fmt.Errorf("%w: start partition actor: %v", ErrNotOwner, err))
			return
		}
	}
	ctx.Send(pid, m.req)
}

// forget removes a partition actor from the maps, so no request is routed
// to it any more, and completes the drains and topic stops waiting for it.
func (r *registry) forget(key meta.PartitionKey, pid *actor.PID) {
	if cur := r.children[key]; cur != nil && cur.Id == pid.Id {
		delete(r.children, key)
		r.b.pids.Delete(key)
	}
	r.b.metrics.partitions.Set(float64(len(r.children)))
	r.checkWaiting()
	if r.draining != nil && len(r.children) == 0 {
		close(r.draining)
		r.draining = nil
	}
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
func (r *registry) spawn(ctx actor.Context, t meta.Topic, p int32) (*actor.PID, error) {
	r.seq++
	name := "p-" + t.ID.String() + "-" + strconv.Itoa(int(p)) + "-" + strconv.Itoa(r.seq)
	props := actor.PropsFromProducer(func() actor.Actor { return newPartition(r.b, t, p) },
		actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })))
	pid, err := ctx.SpawnNamed(props, name)
	if err != nil {
		return nil, err
	}
	key := meta.PartitionKey{TopicID: t.ID, Partition: p}
	r.children[key] = pid
	r.keys[pid.Id] = key
	r.b.pids.Store(key, pid)
	r.b.metrics.partitions.Set(float64(len(r.children)))
	return pid, nil
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
