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
)

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
	case *actor.Terminated:
		key, ok := r.keys[m.Who.Id]
		if !ok {
			return
		}
		delete(r.keys, m.Who.Id)
		if cur := r.children[key]; cur != nil && cur.Id == m.Who.Id {
			delete(r.children, key)
			r.b.pids.Delete(key)
		}
		r.b.metrics.partitions.Set(float64(len(r.children)))
		r.checkWaiting()
		if r.draining != nil && len(r.children) == 0 {
			close(r.draining)
			r.draining = nil
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
	for _, w := range r.waiting {
		if w.id == m.topic.ID {
			m.req.fail(fmt.Errorf("%w: topic is being deleted", ErrUnknownTopic))
			return
		}
	}
	key := meta.PartitionKey{TopicID: m.topic.ID, Partition: m.partition}
	pid := r.children[key]
	if pid == nil {
		r.seq++
		name := "p-" + m.topic.ID.String() + "-" + strconv.Itoa(int(m.partition)) + "-" + strconv.Itoa(r.seq)
		props := actor.PropsFromProducer(func() actor.Actor { return newPartition(r.b, m.topic, m.partition) },
			actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })))
		var err error
		pid, err = ctx.SpawnNamed(props, name)
		if err != nil {
			m.req.fail(fmt.Errorf("%w: start partition actor: %v", ErrNotOwner, err))
			return
		}
		r.children[key] = pid
		r.keys[pid.Id] = key
		r.b.pids.Store(key, pid)
		r.b.metrics.partitions.Set(float64(len(r.children)))
	}
	ctx.Send(pid, m.req)
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
