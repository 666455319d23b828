package actors

import "github.com/asynkron/protoactor-go/actor"

// Owner is the mailbox of an owner of state that lives outside this
// package (a Kafka connection actor), so that it follows the same pattern
// as the node's own owners: it is reached only through Tell, its depth is
// counted in morax_mailbox_depth under its kind, and once it closes its
// mailbox what is still sent to it is dropped and it stops by itself when
// nothing is in flight. Its messages are its own business: they are never
// refused for depth (the owner bounds what it is sent).
type Owner struct{ mb *mailbox }

// OwnerKind is what the owners of one kind share: a name for the metrics.
type OwnerKind struct{ kind *mailboxKind }

// NewOwnerKind declares a kind of owner, named in metrics. Declare each
// kind once per broker.
func (b *Broker) NewOwnerKind(name string) *OwnerKind {
	return &OwnerKind{kind: newMailboxKind(b.metrics, name, 0, ErrShuttingDown)}
}

// SpawnOwner starts an actor on the broker's actor system, reached through
// the returned Owner; producer receives the Owner so the actor can call
// Receive and Close.
func (b *Broker) SpawnOwner(k *OwnerKind, name string, producer func(*Owner) actor.Actor) (*Owner, error) {
	// The producer runs inside the spawn, before the actor can handle a
	// message, so o.mb is set before anything reads it.
	o := &Owner{}
	// A process-unique suffix: names are for people reading logs, and two
	// owners may share one (a client reconnecting from the same port).
	name += "-" + b.system.ProcessRegistry.NextId()
	if _, err := spawnOwner(b.system.Root, b.system.Root, k.kind, name, func(mb *mailbox) actor.Actor {
		o.mb = mb
		return producer(o)
	}); err != nil {
		return nil, err
	}
	return o, nil
}

// Tell delivers msg to the owner from any goroutine; after Close it is
// dropped.
func (o *Owner) Tell(msg any) { o.mb.tell(msg) }

// Receive is the first thing the owner's actor does with a message: it
// reports whether the actor should handle it.
func (o *Owner) Receive(ctx actor.Context) bool { return o.mb.receive(ctx) }

// Close says the owner handles nothing more; the actor stops once nothing
// sent to it is in flight. Only the owner's actor calls it.
func (o *Owner) Close(ctx actor.Context) { o.mb.close(ctx) }
